#!/usr/bin/env python3
"""h3get: a small HTTP/3 client on aioquic (the test peer for Berth's HTTP/3).

    h3get [-v] [--cafile PEM | -k] [--sni NAME] [--connect ADDR] [--keylog FILE] [--timeout S] [-X METHOD]
          [--data BYTES | --data-file FILE] [-H 'Name: value']... [-n N] [--peer-serial]
          [--session-ticket FILE [--early]] [-T 'Name: value']... [--no-content-length]
          [--path TARGET] [--expect-continue [--continue-wait S]] https://HOST:PORT/PATH

The body goes to stdout; `ALPN=h3 status=NNN` (plus the headers with -v) to stderr. With -n N
the request is sent N times as N concurrent streams on one connection (bodies concatenated).
With --session-ticket FILE, a ticket saved there by an earlier run is offered (TLS session
resumption, RFC 8446 §2.2) and the ticket the server sends is saved there; `resumed=0|1` goes
to stderr; with --early the requests are sent at once, as 0-RTT data when the ticket allows
it, and `early_data_accepted=0|1` goes to stderr too. -T sends request trailers (a HEADERS frame
after the body); response trailers print as `<T name: value` with -v. With --peer-serial, `peer_serial=HEX` (the server certificate's serial, as Pebble prints it)
goes to stderr too. --path sends that `:path` instead of the URL's (`*` for `OPTIONS *`). With
--expect-continue the request carries `expect: 100-continue` and its body is held back until an
interim `100` arrives, a final response arrives, or --continue-wait seconds pass (RFC 9110 §10.1.1);
`continue=interim|final|timeout` goes to stderr. Every interim (1xx) response prints as
`interim=NNN` to stderr (its fields with -v, as `<I name: value`). Exit status: 0 for 2xx/3xx, 1 for any other status, 2 for a connect/TLS error or timeout.
"""
import argparse
import asyncio
import os
import pickle
import ssl
import sys
from urllib.parse import urlsplit

from aioquic.asyncio.client import connect
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.h3.connection import H3_ALPN, H3Connection
from aioquic.h3.events import DataReceived, HeadersReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import QuicEvent, StreamReset


class H3Client(QuicConnectionProtocol):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.h3 = H3Connection(self._quic)
        self.waiters = {}
        self.responses = {}
        self.gates = {}
        self.continue_results = []

    def quic_event_received(self, event: QuicEvent):
        if isinstance(event, StreamReset) and event.stream_id in self.waiters:
            # The server reset the request stream: fail at once (exit status 2).
            w = self.waiters.pop(event.stream_id)
            if not w.done():
                w.set_exception(ConnectionError(
                    f"stream {event.stream_id} reset by the server (error 0x{event.error_code:x})"))
        for ev in self.h3.handle_event(event):
            if not isinstance(ev, (HeadersReceived, DataReceived)):
                continue
            r = self.responses.setdefault(ev.stream_id, {"headers": [], "body": bytearray(), "trailers": [],
                                                         "interim": []})
            if isinstance(ev, HeadersReceived):
                status = next((v for k, v in ev.headers if k == b":status"), None)
                if not r["headers"] and status is not None and status.startswith(b"1"):
                    # An interim response (RFC 9114 §4.1); the final head follows.
                    r["interim"].append(ev.headers)
                elif r["headers"]:
                    # A second field section after the final head is the trailer section.
                    r["trailers"].extend(ev.headers)
                else:
                    r["headers"].extend(ev.headers)
                gate = self.gates.get(ev.stream_id)
                if gate is not None and not gate.done():
                    gate.set_result("interim" if r["interim"] and not r["headers"] else "final")
            else:
                r["body"] += ev.data
            if ev.stream_ended and ev.stream_id in self.waiters:
                w = self.waiters.pop(ev.stream_id)
                if not w.done():
                    w.set_result(r)

    async def request(self, method, authority, path, headers, body, trailers=(), content_length=True,
                      expect_wait=None):
        sid = self._quic.get_next_available_stream_id()
        hs = [(b":method", method.encode()), (b":scheme", b"https"), (b":authority", authority.encode()),
              (b":path", path.encode())] + headers
        if body is not None and content_length:
            hs.append((b"content-length", str(len(body)).encode()))
        if expect_wait is not None:
            hs.append((b"expect", b"100-continue"))
        fut = asyncio.get_running_loop().create_future()
        self.waiters[sid] = fut
        self.h3.send_headers(sid, hs, end_stream=not body and not trailers)
        if expect_wait is not None and (body or trailers):
            gate = asyncio.get_running_loop().create_future()
            self.gates[sid] = gate
            self.transmit()
            try:
                why = await asyncio.wait_for(asyncio.shield(gate), expect_wait)
            except asyncio.TimeoutError:
                why = "timeout"
            self.continue_results.append(why)
            if why == "final" or fut.done():
                # Answered (or reset) before the body: it is not sent (RFC 9110 §10.1.1).
                return await fut
        if body:
            self.h3.send_data(sid, body, end_stream=not trailers)
        if trailers:
            self.h3.send_headers(sid, list(trailers), end_stream=True)
        self.transmit()
        return await fut


async def run(args):
    u = urlsplit(args.url)
    host, port = u.hostname, u.port or 443
    authority = u.netloc
    path = args.path or (u.path or "/") + ("?" + u.query if u.query else "")
    cfg = QuicConfiguration(is_client=True, alpn_protocols=H3_ALPN, server_name=args.sni or host)
    if args.insecure:
        cfg.verify_mode = ssl.CERT_NONE
    elif args.cafile:
        cfg.load_verify_locations(args.cafile)
    if args.cert:
        cfg.load_cert_chain(args.cert, args.key)
    if args.keylog:
        cfg.secrets_log_file = open(args.keylog, "a")
    body = None
    if args.data is not None:
        body = args.data.encode()
    elif args.data_file:
        body = open(args.data_file, "rb").read()
    headers = []
    for h in args.header:
        k, v = h.split(":", 1)
        headers.append((k.strip().lower().encode(), v.strip().encode()))
    trailers = []
    for h in args.trailer:
        k, v = h.split(":", 1)
        trailers.append((k.strip().lower().encode(), v.strip().encode()))
    saver = None
    if args.session_ticket:
        try:
            with open(args.session_ticket, "rb") as f:
                cfg.session_ticket = pickle.load(f)
        except FileNotFoundError:
            pass

        def saver(ticket):
            with open(args.session_ticket, "wb") as f:
                pickle.dump(ticket, f)
    async with connect(args.connect or host, port, configuration=cfg, create_protocol=H3Client,
                       session_ticket_handler=saver, wait_connected=not args.early) as client:
        wait = args.continue_wait if args.expect_continue else None
        rs = await asyncio.gather(*[client.request(args.method, authority, path, headers, body, trailers,
                                                      not args.no_content_length, wait) for _ in range(args.n)])
        for why in client.continue_results:
            print(f"continue={why}", file=sys.stderr)
        if args.session_ticket:
            # The ticket follows the handshake; give it a moment if the responses came first.
            for _ in range(50):
                if cfg.session_ticket is not None or os.path.exists(args.session_ticket):
                    break
                await asyncio.sleep(0.01)
            print(f"resumed={int(client._quic.tls.session_resumed)}", file=sys.stderr)
            if args.early:
                print(f"early_data_accepted={int(client._quic.tls.early_data_accepted)}", file=sys.stderr)
        if args.peer_serial:
            cert = client._quic.tls._peer_certificate
            print(f"peer_serial={format(cert.serial_number, 'x') if cert is not None else '-'}", file=sys.stderr)
    status = 0
    for r in rs:
        st = next((v for k, v in r["headers"] if k == b":status"), b"0")
        status = int(st)
        for ih in r["interim"]:
            print(f"interim={next((v for k, v in ih if k == b':status'), b'').decode()}", file=sys.stderr)
            if args.verbose:
                for k, v in ih:
                    print(f"<I {k.decode()}: {v.decode()}", file=sys.stderr)
        print(f"ALPN=h3 status={status}", file=sys.stderr)
        if args.verbose:
            for k, v in r["headers"]:
                print(f"< {k.decode()}: {v.decode()}", file=sys.stderr)
            for k, v in r["trailers"]:
                print(f"<T {k.decode()}: {v.decode()}", file=sys.stderr)
        sys.stdout.buffer.write(bytes(r["body"]))
    sys.stdout.flush()
    bad = [r for r in rs if not 200 <= int(next((v for k, v in r["headers"] if k == b":status"), b"0")) < 400]
    return 1 if bad else 0


def main():
    p = argparse.ArgumentParser(description="HTTP/3 GET client (aioquic)")
    p.add_argument("url")
    p.add_argument("-v", "--verbose", action="store_true")
    p.add_argument("-k", "--insecure", action="store_true")
    p.add_argument("--cafile")
    p.add_argument("--sni")
    p.add_argument("--connect", help="connect to this address instead of the URL's host (like curl --resolve)")
    p.add_argument("--keylog")
    p.add_argument("--cert", help="client certificate (PEM)")
    p.add_argument("--key", help="client certificate's key (PEM)")
    p.add_argument("--timeout", type=float, default=10.0)
    p.add_argument("-X", "--method", default="GET")
    p.add_argument("--data")
    p.add_argument("--data-file")
    p.add_argument("-H", "--header", action="append", default=[])
    p.add_argument("-n", type=int, default=1)
    p.add_argument("-T", "--trailer", action="append", default=[], help="a request trailer field, after the body")
    p.add_argument("--no-content-length", action="store_true", help="send the body without content-length")
    p.add_argument("--session-ticket", help="offer the ticket saved in FILE; save the one received")
    p.add_argument("--early", action="store_true", help="send the requests as 0-RTT data (with --session-ticket)")
    p.add_argument("--peer-serial", action="store_true", help="print the server certificate's serial number")
    p.add_argument("--path", help="send this :path instead of the URL's (e.g. '*' with -X OPTIONS)")
    p.add_argument("--expect-continue", action="store_true",
                   help="send expect: 100-continue and hold the body until 100, a final response or --continue-wait")
    p.add_argument("--continue-wait", type=float, default=1.0, help="seconds to wait for 100 (default 1, as curl)")
    args = p.parse_args()
    try:
        code = asyncio.run(asyncio.wait_for(run(args), args.timeout))
    except (asyncio.TimeoutError, ConnectionError, OSError) as e:
        print(f"h3get: {type(e).__name__}: {e}", file=sys.stderr)
        code = 2
    except Exception as e:  # TLS and QUIC errors surface as assorted exception types
        print(f"h3get: {type(e).__name__}: {e}", file=sys.stderr)
        code = 2
    sys.exit(code)


if __name__ == "__main__":
    main()
