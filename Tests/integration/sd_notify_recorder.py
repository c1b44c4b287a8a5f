#!/usr/bin/env python3
"""Stand-in for systemd's notify socket: records every sd_notify(3) datagram as one JSON line.

Usage:
    sd_notify_recorder.py SOCKET [--output FILE] [--timeout SECONDS] [--until FIELD=VALUE]
                                 [--ready-file FILE]

SOCKET is a filesystem path (created; an existing socket file there is replaced, and the file is
removed on exit) or an abstract name written @name, exactly as NOTIFY_SOCKET would be set for
the process under test.

Each datagram becomes one line of JSON on stdout (or appended to --output, flushed at once):

    {"seq": 1, "time": 1767000000.123, "monotonic_usec": 123456789,
     "pid": 4242, "uid": 1000, "gid": 1000,
     "raw": "READY=1\\nSTATUS=serving", "fields": {"READY": "1", "STATUS": "serving"}}

"pid"/"uid"/"gid" are the sender's credentials (SO_PASSCRED), null if unavailable. "fields"
keeps the last value of a repeated key; "raw" is the datagram as sent (invalid UTF-8 is
replaced). Lines that are not KEY=VALUE are listed in "invalid". Descriptors passed along
(FDSTORE=1, BARRIER=1) are counted in "fds" and closed.

Exits 0 on SIGTERM/SIGINT, after --timeout seconds (default 60), or after a datagram that
contains the line --until (e.g. --until READY=1 or --until STOPPING=1); --until may repeat,
then every one must have been seen. --ready-file is created once the socket is bound, so a
test can wait for it before starting the process under test.

Python 3 standard library only.
"""

import argparse
import json
import os
import select
import signal
import socket
import stat
import struct
import sys
import time

SO_PASSCRED = getattr(socket, "SO_PASSCRED", 16)
SCM_CREDENTIALS = getattr(socket, "SCM_CREDENTIALS", 2)
CRED = struct.Struct("iII")  # struct ucred: pid, uid, gid
MAX_FDS = 253  # SCM_MAX_FD


def parse_args(argv):
    p = argparse.ArgumentParser(description="Record sd_notify datagrams as JSON lines.")
    p.add_argument("socket", help="socket path, or @name for an abstract socket")
    p.add_argument("--output", "-o", help="append JSON lines to this file instead of stdout")
    p.add_argument("--timeout", "-t", type=float, default=60.0,
                   help="exit after this many seconds (default 60; 0 = never)")
    p.add_argument("--until", action="append", default=[], metavar="FIELD=VALUE",
                   help="exit after a datagram containing this line (may repeat)")
    p.add_argument("--ready-file", help="create this file once the socket is bound")
    return p.parse_args(argv)


def bind(address):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, SO_PASSCRED, 1)
    if address.startswith("@"):
        sock.bind("\0" + address[1:])
        return sock, None
    try:
        if stat.S_ISSOCK(os.lstat(address).st_mode):
            os.unlink(address)
    except FileNotFoundError:
        pass
    sock.bind(address)
    return sock, address


def record(seq, data, ancdata):
    pid = uid = gid = None
    fds = 0
    for level, kind, payload in ancdata:
        if level == socket.SOL_SOCKET and kind == SCM_CREDENTIALS and len(payload) >= CRED.size:
            pid, uid, gid = CRED.unpack(payload[:CRED.size])
        elif level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            # FDSTORE=1 / BARRIER=1 pass descriptors: count them and close them at once
            # (closing answers a BARRIER=1).
            for i in range(len(payload) // 4):
                fds += 1
                os.close(struct.unpack_from("i", payload, i * 4)[0])
    raw = data.decode("utf-8", errors="replace")
    fields, invalid = {}, []
    for line in raw.split("\n"):
        if not line:
            continue
        key, sep, value = line.partition("=")
        if sep and key:
            fields[key] = value
        else:
            invalid.append(line)
    entry = {
        "seq": seq,
        "time": time.time(),
        "monotonic_usec": time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000,
        "pid": pid,
        "uid": uid,
        "gid": gid,
        "raw": raw,
        "fields": fields,
    }
    if invalid:
        entry["invalid"] = invalid
    if fds:
        entry["fds"] = fds
    return entry, set(line for line in raw.split("\n") if line)


def main(argv):
    args = parse_args(argv)
    stopping = False

    def on_signal(signum, frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    sock, path = bind(args.socket)
    out = open(args.output, "a", encoding="utf-8") if args.output else sys.stdout
    if args.ready_file:
        with open(args.ready_file, "w", encoding="utf-8") as f:
            f.write(args.socket + "\n")

    pending = set(args.until)
    deadline = time.monotonic() + args.timeout if args.timeout > 0 else None
    seq = 0
    try:
        while not stopping:
            wait = 0.2
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                wait = min(wait, left)
            try:
                ready, _, _ = select.select([sock], [], [], wait)
            except InterruptedError:
                continue
            if not ready:
                continue
            data, ancdata, _, _ = sock.recvmsg(
                65536, socket.CMSG_SPACE(CRED.size) + socket.CMSG_SPACE(MAX_FDS * 4))
            seq += 1
            entry, lines = record(seq, data, ancdata)
            out.write(json.dumps(entry, sort_keys=True) + "\n")
            out.flush()
            if args.until:
                pending -= lines
                if not pending:
                    break
    finally:
        sock.close()
        if path:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
        if out is not sys.stdout:
            out.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
