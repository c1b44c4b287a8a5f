#!/usr/bin/env python3
"""A small socket-activation launcher for any mix of stream and datagram sockets.

    sockact.py [--on-demand] [--bind-ipv6-only default|both|ipv6-only] [--backlog N]
               [--fdname NAME] -l ADDR [-l ADDR ...] [-d ADDR ...] [--fdname NAME2 -l ...]
               [-E VAR[=VALUE] ...] [--clean-env] -- COMMAND [ARG ...]

It opens the sockets the way systemd opens a .socket unit's ListenStream=/ListenDatagram=
lines, in the order given, then execs COMMAND (same pid) with them as fds 3, 4, 5, ... and
LISTEN_FDS, LISTEN_PID and LISTEN_FDNAMES set, exactly as systemd does for the service.

Why not systemd-socket-activate: its --datagram applies to every -l, so it cannot hand over
Example 3/4's `ListenStream=[::]:80`, `ListenStream=[::]:443`, `ListenDatagram=[::]:443` together.

  -l, --listen ADDR     a stream socket (ListenStream=); -d, --datagram ADDR a datagram socket
                        (ListenDatagram=). ADDR as in systemd.socket(5): PORT (IPv6 wildcard,
                        dual-stack unless --bind-ipv6-only=ipv6-only; IPv4 if there is no IPv6),
                        IPV4:PORT, [IPV6]:PORT, /path (AF_UNIX), @name (abstract AF_UNIX).
  --fdname NAME         FileDescriptorName= for the sockets that follow (like a .socket unit;
                        default "unknown", as systemd-socket-activate). Repeat it to model
                        several socket units.
  --bind-ipv6-only M    BindIPv6Only= for the [::] sockets: default (kernel's
                        net.ipv6.bindv6only), both, ipv6-only.
  --backlog N           listen(2) backlog (systemd's Backlog=, default SOMAXCONN).
  --on-demand           like systemd (and systemd-socket-activate): exec only when the first
                        connection or datagram arrives; the default is to exec at once.
  -E VAR[=VALUE]        set VAR (VALUE, or this process's value) for COMMAND.
  --clean-env           pass only PATH, HOME, TERM, LANG, XDG_RUNTIME_DIR, NOTIFY_SOCKET and -E
                        variables (as a systemd service would see), instead of everything.
  --print-fds           print "fd N NAME KIND ADDRESS" lines to stderr before exec.

Standard library only; Linux only.
"""
import os
import select
import socket
import stat
import sys

HELP = __doc__


def parse_address(text):
    """Returns (family, sockaddr) for a systemd ListenStream=/ListenDatagram= address."""
    t = text.strip()
    if t.startswith("/"):
        return socket.AF_UNIX, t
    if t.startswith("@"):
        return socket.AF_UNIX, "\0" + t[1:]
    if t.isdigit():
        port = int(t)
        if not 0 < port < 65536:
            raise ValueError(f"invalid port in {text!r}")
        if socket.has_ipv6:
            return socket.AF_INET6, ("::", port)
        return socket.AF_INET, ("0.0.0.0", port)
    if t.startswith("["):
        host, sep, rest = t[1:].partition("]")
        if not sep or not rest.startswith(":") or not rest[1:].isdigit():
            raise ValueError(f"invalid address {text!r}")
        return socket.AF_INET6, (host, int(rest[1:]))
    host, sep, port = t.rpartition(":")
    if not sep or not port.isdigit() or ":" in host:
        raise ValueError(f"invalid address {text!r} (IPv6 addresses need brackets: [::1]:80)")
    return socket.AF_INET, (host, int(port))


def open_socket(kind, address, ipv6_only="default", backlog=None):
    family, sockaddr = parse_address(address)
    s = socket.socket(family, kind)
    try:
        if family != socket.AF_UNIX:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6 and ipv6_only != "default":
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1 if ipv6_only == "ipv6-only" else 0)
        if family == socket.AF_UNIX and not sockaddr.startswith("\0"):
            try:
                if stat.S_ISSOCK(os.lstat(sockaddr).st_mode):
                    os.unlink(sockaddr)
            except FileNotFoundError:
                pass
        s.bind(sockaddr)
        if kind == socket.SOCK_STREAM:
            s.listen(backlog if backlog is not None else socket.SOMAXCONN)
    except Exception:
        s.close()
        raise
    return s


def parse_args(argv):
    opts = {"on_demand": False, "ipv6_only": "default", "backlog": None, "env": [], "clean_env": False,
            "print_fds": False, "sockets": [], "command": []}
    name = "unknown"
    i = 0

    def value():
        nonlocal i
        if i + 1 >= len(argv):
            raise SystemExit(f"sockact: {argv[i]} needs a value")
        i += 1
        return argv[i]

    while i < len(argv):
        a = argv[i]
        if a == "--":
            opts["command"] = argv[i + 1:]
            break
        if a in ("-h", "--help"):
            print(HELP)
            raise SystemExit(0)
        if "=" in a and a.startswith("--"):
            a, v = a.split("=", 1)
            argv = argv[:i] + [a, v] + argv[i + 1:]
        if a in ("-l", "--listen"):
            opts["sockets"].append(("stream", value(), name))
        elif a in ("-d", "--datagram"):
            opts["sockets"].append(("datagram", value(), name))
        elif a == "--fdname":
            name = value()
            if ":" in name or not name:
                raise SystemExit("sockact: --fdname must be non-empty and contain no ':'")
        elif a == "--bind-ipv6-only":
            opts["ipv6_only"] = value()
            if opts["ipv6_only"] not in ("default", "both", "ipv6-only"):
                raise SystemExit("sockact: --bind-ipv6-only is default, both or ipv6-only")
        elif a == "--backlog":
            opts["backlog"] = int(value())
        elif a == "--on-demand":
            opts["on_demand"] = True
        elif a in ("-E", "--setenv"):
            opts["env"].append(value())
        elif a == "--clean-env":
            opts["clean_env"] = True
        elif a == "--print-fds":
            opts["print_fds"] = True
        elif not a.startswith("-"):
            opts["command"] = argv[i:]
            break
        else:
            raise SystemExit(f"sockact: unknown option {a} (see --help)")
        i += 1
    if not opts["command"]:
        raise SystemExit("sockact: no command given (sockact.py -l ADDR -- COMMAND ...)")
    if not opts["sockets"]:
        raise SystemExit("sockact: no socket given (-l ADDR or -d ADDR)")
    return opts


def main(argv):
    o = parse_args(argv)
    opened = []
    for kind, address, name in o["sockets"]:
        k = socket.SOCK_STREAM if kind == "stream" else socket.SOCK_DGRAM
        try:
            opened.append((open_socket(k, address, o["ipv6_only"], o["backlog"]), name, kind, address))
        except (OSError, ValueError) as e:
            print(f"sockact: {kind} {address}: {e}", file=sys.stderr)
            return 1
    if o["print_fds"]:
        for n, (s, name, kind, address) in enumerate(opened):
            print(f"sockact: fd {3 + n} {name} {kind} {address}", file=sys.stderr)
    if o["on_demand"]:
        select.select([s for s, *_ in opened], [], [])

    # Move the sockets to 3, 4, ...: park them high first so the dup2s cannot clobber each other.
    parked = [os.dup2(s.fileno(), 1000 + n, inheritable=False) for n, (s, *_) in enumerate(opened)]
    for s, *_ in opened:
        s.detach()
    for n, fd in enumerate(parked):
        os.dup2(fd, 3 + n, inheritable=True)
        os.close(fd)

    if o["clean_env"]:
        keep = ("PATH", "HOME", "TERM", "LANG", "XDG_RUNTIME_DIR", "NOTIFY_SOCKET")
        env = {k: os.environ[k] for k in keep if k in os.environ}
    else:
        env = dict(os.environ)
    for e in o["env"]:
        k, sep, v = e.partition("=")
        env[k] = v if sep else os.environ.get(k, "")
    env["LISTEN_FDS"] = str(len(opened))
    env["LISTEN_PID"] = str(os.getpid())  # exec keeps the pid
    env["LISTEN_FDNAMES"] = ":".join(name for _, name, *_ in opened)
    try:
        os.execvpe(o["command"][0], o["command"], env)
    except OSError as e:
        print(f"sockact: exec {o['command'][0]}: {e}", file=sys.stderr)
        return 127


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
