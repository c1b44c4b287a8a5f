#!/usr/bin/env python3
"""h3load: a multi-connection HTTP/3 load generator.

aioquic is far too slow to load a native server (its client would be the bottleneck), so each
connection is one `gtlsclient` process (ngtcp2 + nghttp3 + GnuTLS, Debian's ngtcp2-client)
sending N requests as N streams on one QUIC connection; C such processes run at once, and a
finished one is replaced at once until the duration is over.

    h3load.py [-c CONNECTIONS] [-n REQUESTS_PER_CONNECTION] [-d SECONDS] [--size BYTES]
              [--verify] HOST PORT URL

Prints one JSON object: requests, seconds, req_per_s, mb_per_s (with --size), connections, and
client_cpu_s / client_cpu_us_per_req: the CPU the gtlsclient processes used (user + system,
from getrusage(RUSAGE_CHILDREN)) — when server CPU + client CPU fill the machine, the client is
part of the limit and req/s compares the pair, not the servers alone.
`--verify` first downloads the URL once and checks the body size (gtlsclient exits 0 even on
failure, so the load runs themselves cannot be checked per request).
"""
import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

GTLS = shutil.which("gtlsclient")


def client_cmd(host, port, url, n, extra=()):
    return [GTLS, "-q", "--no-quic-dump", "--no-http-dump", "--exit-on-all-streams-close",
            "--max-streams-bidi=100", "-n", str(n), *extra, host, str(port), url]


def verify(host, port, url, size):
    d = tempfile.mkdtemp(prefix="h3load-")
    try:
        subprocess.run(client_cmd(host, port, url, 1, [f"--download={d}"]), capture_output=True, timeout=30)
        files = os.listdir(d)
        got = os.path.getsize(os.path.join(d, files[0])) if files else -1
        if size is not None and got != size:
            sys.exit(f"h3load: verification failed: got {got} bytes, want {size}")
        return got
    finally:
        shutil.rmtree(d, ignore_errors=True)


def run(host, port, url, c, n, duration):
    procs = []
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = 0
    failed = 0
    start = time.monotonic()
    end = start + duration
    while True:
        now = time.monotonic()
        while len(procs) < c and now < end:
            procs.append(subprocess.Popen(client_cmd(host, port, url, n), stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL))
        if not procs:
            break
        still = []
        for p in procs:
            rc = p.poll()
            if rc is None:
                still.append(p)
            elif rc == 0:
                done += n
            else:
                failed += 1
        procs = still
        if len(procs) == c or time.monotonic() >= end:
            time.sleep(0.002)
    secs = time.monotonic() - start
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    ccpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    return {"client_cpu_s": round(ccpu, 2), "client_cpu_us_per_req": round(ccpu / max(1, done) * 1e6, 1),"requests": done, "failed_connections": failed, "seconds": round(secs, 3),
            "req_per_s": round(done / secs, 1), "connections": c, "streams_per_connection": n}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    ap.add_argument("url")
    ap.add_argument("-c", type=int, default=8)
    ap.add_argument("-n", type=int, default=100)
    ap.add_argument("-d", "--duration", type=float, default=8.0)
    ap.add_argument("--size", type=int)
    ap.add_argument("--verify", action="store_true")
    a = ap.parse_args()
    if GTLS is None:
        sys.exit("h3load: gtlsclient not found (apt-get install ngtcp2-client)")
    if a.verify:
        verify(a.host, a.port, a.url, a.size)
    r = run(a.host, a.port, a.url, a.c, a.n, a.duration)
    if a.size:
        r["mb_per_s"] = round(r["requests"] * a.size / r["seconds"] / 1e6, 1)
    print(json.dumps(r))


if __name__ == "__main__":
    main()
