#!/usr/bin/env python3
"""Turns a quadlet .container (+ its .socket) into the commands systemd and quadlet would run.

Podman 4.3 (Debian 12) has no quadlet generator (it arrived in Podman 4.4), and running the
seed's examples without systemd needs the same thing anyway: the socket unit's sockets handed to
`podman run` with the options the .container asks for. This prints that:

    quadlet2cmd.py examples/example1/caddy.container            # a shell script on stdout
    quadlet2cmd.py --format json examples/example3/caddy.container
    quadlet2cmd.py --run examples/example1/caddy.container      # set up, then exec it

The .socket defaults to the .container's name with .socket beside it (caddy.container ->
caddy.socket), as systemd pairs caddy.socket with caddy.service. Network=NAME.network and
Volume=NAME.volume are read from beside the .container too.

What quadlet does, and what this prints for it:

  [Container]            podman run option
  ContainerName=X        --name X                (quadlet's default: systemd-%N)
  Image=I                the image               (--image overrides it)
  Exec=ARGS              the command after the image (CMD is replaced, as in quadlet)
  Network=none|host|...  --network=none ...
  Network=N.network      --network=NAME; NAME is NetworkName= in N.network, else systemd-N;
                         plus a setup step `podman network create ...` (Internal=, Options=,
                         Subnet=, Gateway=, IPv6=, Driver=, Label=, DNS=)
  NetworkAlias=A         --network-alias A
  NoNewPrivileges=true   --security-opt no-new-privileges
  Notify=true            --sdnotify=container    (else --sdnotify=conmon, quadlet's default)
  ReadOnly=true          --read-only
  Volume=S:D[:O]         -v S:D[:O]; %h, %t, %u, %U, %N, %n, %% expanded; S=N.volume -> the
                         named volume (VolumeName= in N.volume, else systemd-N) plus a setup
                         step `podman volume create`; S=./x relative to the .container
  Environment=, EnvironmentFile=, PublishPort=, User=, Group=, AddCapability=,
  DropCapability=, Label=, Annotation=, Tmpfs=, HostName=, RunInit=, PodmanArgs=
                         their podman run options
  [Socket] ListenStream=, ListenDatagram=, BindIPv6Only=, FileDescriptorName=, Backlog=
                         the launcher's sockets, in order: fd 3, 4, 5, ...
  [Unit] AssertPathExists=, AssertPathIsDirectory= (and Condition*)  checks before the run
  [Service] ExecReload=  printed as the reload command

Always added: --replace --rm (as quadlet). Added for a container with a .socket: --cap-drop=ALL
(it needs no privilege to bind, and Berth needs no capability at all; --keep-caps leaves Podman's
default set, --cap-drop-all adds it to any container), and then, unless Network= is none or
host, --sysctl net.ipv4.ip_unprivileged_port_start=0 so it can still bind 80/443 in its own
network namespace (Example 4's custom-network listener). Not added: quadlet's --cidfile, -d and
--cgroups=split, which only make sense under systemd, and --log-driver passthrough (it would
break `podman logs` outside systemd).

The launcher: `systemd-socket-activate` when every socket is a stream (it waits for the first
connection, like a socket unit); its --datagram makes *every* socket a datagram socket, so a
unit mixing ListenStream= and ListenDatagram= (Examples 3 and 4), or one with
BindIPv6Only=ipv6-only, is launched with container/sockact.py instead (--launcher forces one).
systemd-socket-activate cannot set IPV6_V6ONLY: its `[::]` sockets are dual-stack when
net.ipv6.bindv6only is 0, the kernel default, which is what BindIPv6Only=both asks for.

Podman passes the inherited fds on into the container (LISTEN_FDS, LISTEN_FDNAMES, and
LISTEN_PID=1 for the container's first process), so `bind fd/3` inside works unchanged.

Standard library only.
"""
import argparse
import json
import os
import pwd
import shlex
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOCKACT = HERE / "sockact.py"


class QuadletError(Exception):
    pass


# ---------------------------------------------------------------------------------------------
# systemd unit files

def parse_unit(text, name="unit"):
    """Parses a systemd unit file into {section: [(key, value), ...]} keeping order and repeats.
    Handles comments (# ;), backslash line continuation and surrounding whitespace."""
    sections = {}
    current = None
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        i += 1
        if not line or line[0] in "#;":
            continue
        while line.endswith("\\") and i <= len(lines):
            line = line[:-1]
            if i < len(lines):
                nxt = lines[i].strip()
                i += 1
                if nxt and nxt[0] in "#;":
                    continue
                line += " " + nxt
            else:
                break
        if line.startswith("[") and line.endswith("]"):
            current = line[1:-1]
            sections.setdefault(current, [])
            continue
        if current is None:
            raise QuadletError(f"{name}: line outside a section: {line!r}")
        key, sep, value = line.partition("=")
        if not sep:
            raise QuadletError(f"{name}: not KEY=VALUE: {line!r}")
        sections[current].append((key.strip(), value.strip()))
    return sections


def values(sections, section, key):
    """All values of KEY in SECTION; an empty assignment resets the list, as in systemd."""
    out = []
    for k, v in sections.get(section, []):
        if k == key:
            if v == "":
                out = []
            else:
                out.append(v)
    return out


def value(sections, section, key, default=None):
    v = values(sections, section, key)
    return v[-1] if v else default


def boolean(text, what):
    t = text.strip().lower()
    if t in ("1", "yes", "y", "true", "t", "on"):
        return True
    if t in ("0", "no", "n", "false", "f", "off"):
        return False
    raise QuadletError(f"{what}: not a boolean: {text!r}")


def split_words(text):
    """systemd-style word splitting (quotes, backslash escapes); good enough for Exec= lines."""
    return shlex.split(text, posix=True)


class Specifiers:
    """systemd specifiers for a user or system unit named UNIT (e.g. caddy.service)."""

    def __init__(self, unit, home=None, runtime_dir=None, user=None, uid=None, keep=False):
        self.unit = unit
        self.keep = keep  # validate but leave specifiers for systemd to expand (--format service)
        uid = os.getuid() if uid is None else uid
        try:
            pw = pwd.getpwuid(uid)
            pw_name, pw_dir = pw.pw_name, pw.pw_dir
        except KeyError:
            pw_name, pw_dir = str(uid), "/"
        self.map = {
            "h": home or os.environ.get("HOME") or pw_dir,
            "t": runtime_dir or os.environ.get("XDG_RUNTIME_DIR") or ("/run" if uid == 0 else f"/run/user/{uid}"),
            "u": user or pw_name,
            "U": str(uid),
            "n": unit,
            "N": unit.rsplit(".", 1)[0],
            "p": unit.rsplit(".", 1)[0].split("@", 1)[0],
            "%": "%",
        }

    def expand(self, text, what="value"):
        out = []
        i = 0
        while i < len(text):
            c = text[i]
            if c == "%":
                if i + 1 >= len(text):
                    raise QuadletError(f"{what}: lone % at the end of {text!r}")
                spec = text[i + 1]
                if spec not in self.map:
                    raise QuadletError(f"{what}: specifier %{spec} is not supported by quadlet2cmd in {text!r}")
                out.append("%" + spec if self.keep else self.map[spec])
                i += 2
            else:
                out.append(c)
                i += 1
        return "".join(out)


# ---------------------------------------------------------------------------------------------
# The conversion

SUPPORTED_CONTAINER_KEYS = {
    "ContainerName", "Exec", "Image", "Network", "NetworkAlias", "NoNewPrivileges", "Notify",
    "ReadOnly", "Volume", "Environment", "EnvironmentFile", "PublishPort", "User", "Group",
    "AddCapability", "DropCapability", "Label", "Annotation", "Tmpfs", "HostName", "RunInit",
    "PodmanArgs",
}
SUPPORTED_SOCKET_KEYS = {"ListenStream", "ListenDatagram", "BindIPv6Only", "FileDescriptorName", "Backlog",
                         "Service"}
PATH_CHECKS = {
    "AssertPathExists": ("-e", "exists"), "AssertPathIsDirectory": ("-d", "is a directory"),
    "ConditionPathExists": ("-e", "exists"), "ConditionPathIsDirectory": ("-d", "is a directory"),
    "AssertFileNotEmpty": ("-s", "is a non-empty file"), "ConditionFileNotEmpty": ("-s", "is a non-empty file"),
}


def _read_unit(path):
    p = Path(path)
    if not p.is_file():
        raise QuadletError(f"{p}: no such file")
    return parse_unit(p.read_text(), p.name)


def _network(ref, unit_dir, notes):
    """Network= value -> (podman --network value, setup argv or None)."""
    if not ref.endswith(".network"):
        return ref, None
    path = unit_dir / ref
    sec = _read_unit(path)
    base = ref[: -len(".network")]
    name = value(sec, "Network", "NetworkName", f"systemd-{base}")
    create = ["network", "create"]
    if boolean(value(sec, "Network", "Internal", "false"), f"{ref} Internal="):
        create.append("--internal")
    if boolean(value(sec, "Network", "DisableDNS", "false"), f"{ref} DisableDNS="):
        create.append("--disable-dns")
    if boolean(value(sec, "Network", "IPv6", "false"), f"{ref} IPv6="):
        create.append("--ipv6")
    drv = value(sec, "Network", "Driver")
    if drv:
        create += ["--driver", drv]
    for opt in values(sec, "Network", "Options"):
        for o in opt.split(","):
            create += ["--opt", o.strip()]
    for s in values(sec, "Network", "Subnet"):
        create += ["--subnet", s]
    for g in values(sec, "Network", "Gateway"):
        create += ["--gateway", g]
    for d in values(sec, "Network", "DNS"):
        create += ["--dns", d]
    for lbl in values(sec, "Network", "Label"):
        for w in split_words(lbl):
            create += ["--label", w]
    known = {"NetworkName", "Internal", "DisableDNS", "IPv6", "Driver", "Options", "Subnet", "Gateway", "DNS",
             "Label"}
    for k, _ in sec.get("Network", []):
        if k not in known:
            notes.append(f"{ref}: {k}= is not translated")
    # Podman 4.3 has no `network create --ignore`: check first.
    return name, {"exists": ["network", "exists", name], "create": create + [name], "what": f"network {name}"}


def _volume(src, unit_dir, spec, notes):
    """Volume= source -> (podman source, setup or None)."""
    if src.endswith(".volume"):
        sec = _read_unit(unit_dir / src)
        base = src[: -len(".volume")]
        name = value(sec, "Volume", "VolumeName", f"systemd-{base}")
        create = ["volume", "create"]
        for k, opt in (("User", "uid"), ("Group", "gid")):
            v = value(sec, "Volume", k)
            if v:
                create += ["--opt", f"o={opt}={v}"]
        for lbl in values(sec, "Volume", "Label"):
            for w in split_words(lbl):
                create += ["--label", w]
        for k, _ in sec.get("Volume", []):
            if k not in ("VolumeName", "User", "Group", "Label"):
                notes.append(f"{src}: {k}= is not translated")
        return name, {"exists": ["volume", "exists", name], "create": create + [name], "what": f"volume {name}"}
    if src.startswith("./") or src.startswith("../"):
        return str((unit_dir / src).resolve()), None
    return src, None


def convert(container_path, socket_path=None, *, home=None, runtime_dir=None, image=None, name=None,
            runtime=None, podman="podman", podman_args=(), ports=(), host=None, launcher="auto",
            cap_drop_all=None, python="python3", passenv=None, service=False):
    """Returns a dict describing the commands (see --format json). service=True: for a systemd
    .service unit (specifiers left to systemd, quadlet's --cidfile/--cgroups=split/-d added)."""
    container_path = Path(container_path)
    unit_dir = container_path.parent
    base = container_path.name
    if not base.endswith(".container"):
        raise QuadletError(f"{base}: not a .container file")
    stem = base[: -len(".container")]
    spec = Specifiers(f"{stem}.service", home=home, runtime_dir=runtime_dir, keep=service)
    c = _read_unit(container_path)
    notes = []
    for k, _ in c.get("Container", []):
        if k not in SUPPORTED_CONTAINER_KEYS:
            notes.append(f"{base}: [Container] {k}= is not translated")

    # Socket unit.
    if socket_path is None:
        cand = unit_dir / f"{stem}.socket"
        socket_path = cand if cand.is_file() else None
    sockets = []
    ipv6_only = "default"
    backlog = None
    if socket_path is not None:
        socket_path = Path(socket_path)
        s = _read_unit(socket_path)
        fdname = value(s, "Socket", "FileDescriptorName", socket_path.name)
        ipv6_only = value(s, "Socket", "BindIPv6Only", "default")
        if ipv6_only not in ("default", "both", "ipv6-only"):
            raise QuadletError(f"{socket_path.name}: BindIPv6Only={ipv6_only} is not default, both or ipv6-only")
        bl = value(s, "Socket", "Backlog")
        backlog = int(bl) if bl else None
        if boolean(value(s, "Socket", "Accept", "no"), "Accept="):
            raise QuadletError(f"{socket_path.name}: Accept=yes (a container per connection) is not supported")
        for k, v in s.get("Socket", []):
            if k in ("ListenStream", "ListenDatagram") and v:
                sockets.append({"kind": "stream" if k == "ListenStream" else "datagram",
                                "address": _rewrite_address(spec.expand(v, k), ports, host), "name": fdname,
                                "unit_address": v})
            elif k not in SUPPORTED_SOCKET_KEYS and k != "Accept":
                notes.append(f"{socket_path.name}: [Socket] {k}= is not translated")

    # podman run.
    checks = []
    for sect in ("Unit",):
        for k, v in c.get(sect, []):
            if k in PATH_CHECKS:
                flag, what = PATH_CHECKS[k]
                neg = v.startswith("!")
                p = spec.expand(v.lstrip("!"), k)
                checks.append({"test": ["test", "!", flag, p] if neg else ["test", flag, p],
                               "message": f"{base}: {k}={v} failed: {p} {'must not' if neg else 'must'} "
                                          f"{'exist' if what == 'exists' else 'be ' + what.split(' ', 1)[1]}",
                               "fatal": k.startswith("Assert")})
            elif sect == "Unit" and k not in ("Description", "Documentation", "After", "Before", "Requires",
                                               "Wants", "BindsTo", "PartOf"):
                notes.append(f"{base}: [Unit] {k}= is not translated")

    setup = []
    run = [podman, "run"]
    if runtime:
        run += ["--runtime", runtime]
    cname = name or value(c, "Container", "ContainerName") or f"systemd-{stem}"
    run += ["--name", spec.expand(cname, "ContainerName")]
    if service:
        run += ["--cidfile=%t/%N.cid", "--replace", "--rm", "--cgroups=split", "-d"]
    else:
        run += ["--replace", "--rm"]
    notify = boolean(value(c, "Container", "Notify", "false"), "Notify=")
    run += ["--sdnotify=container" if notify else "--sdnotify=conmon"]
    net = value(c, "Container", "Network")
    if net:
        netname, netsetup = _network(spec.expand(net, "Network"), unit_dir, notes)
        run += [f"--network={netname}"]
        if netsetup:
            setup.append(netsetup)
    for alias in values(c, "Container", "NetworkAlias"):
        run += ["--network-alias", spec.expand(alias, "NetworkAlias")]
    if boolean(value(c, "Container", "ReadOnly", "false"), "ReadOnly="):
        run += ["--read-only"]
    # A socket-activated container needs no privilege to bind: drop every capability unless told
    # otherwise (other containers, e.g. nginx or whoami, keep Podman's default set, as in quadlet).
    drop_all = cap_drop_all if cap_drop_all is not None else bool(sockets)
    if drop_all:
        run += ["--cap-drop=ALL"]
    # Without capabilities a process may still bind ports < 1024 inside its own network
    # namespace once the namespace's ip_unprivileged_port_start allows it (as Docker sets by
    # default): Example 4's Caddyfile binds 80/443 on the custom network itself.
    if drop_all and (net or "").split(":")[0] not in ("none", "host", "container", "ns"):
        run += ["--sysctl", "net.ipv4.ip_unprivileged_port_start=0"]
    for cap in values(c, "Container", "DropCapability"):
        for w in cap.split():
            if not drop_all or w.lower() != "all":
                run += ["--cap-drop", w]
    for cap in values(c, "Container", "AddCapability"):
        for w in cap.split():
            run += ["--cap-add", w]
    if boolean(value(c, "Container", "NoNewPrivileges", "false"), "NoNewPrivileges="):
        run += ["--security-opt", "no-new-privileges"]
    if boolean(value(c, "Container", "RunInit", "false"), "RunInit="):
        run += ["--init"]
    user = value(c, "Container", "User")
    if user:
        grp = value(c, "Container", "Group")
        run += ["--user", spec.expand(f"{user}:{grp}" if grp else user, "User")]
    hn = value(c, "Container", "HostName")
    if hn:
        run += ["--hostname", spec.expand(hn, "HostName")]
    for env in values(c, "Container", "Environment"):
        for w in split_words(env):
            run += ["--env", spec.expand(w, "Environment")]
    for ef in values(c, "Container", "EnvironmentFile"):
        run += ["--env-file", spec.expand(ef, "EnvironmentFile")]
    for lbl in values(c, "Container", "Label"):
        for w in split_words(lbl):
            run += ["--label", spec.expand(w, "Label")]
    for ann in values(c, "Container", "Annotation"):
        for w in split_words(ann):
            run += ["--annotation", spec.expand(w, "Annotation")]
    for pp in values(c, "Container", "PublishPort"):
        run += ["--publish", spec.expand(pp, "PublishPort")]
    for t in values(c, "Container", "Tmpfs"):
        run += ["--tmpfs", spec.expand(t, "Tmpfs")]
    for vol in values(c, "Container", "Volume"):
        v = spec.expand(vol, "Volume")
        parts = v.split(":")
        src, vsetup = _volume(parts[0], unit_dir, spec, notes)
        if vsetup and vsetup not in setup:
            setup.append(vsetup)
        run += ["-v", ":".join([src] + parts[1:])]
    for pa in values(c, "Container", "PodmanArgs"):
        run += [spec.expand(w, "PodmanArgs") for w in split_words(pa)]
    run += list(podman_args)
    img = image or value(c, "Container", "Image")
    if not img:
        raise QuadletError(f"{base}: no Image=")
    run.append(img)
    exe = value(c, "Container", "Exec")
    if exe:
        run += [spec.expand(w, "Exec") for w in split_words(exe)]

    # The launcher.
    mode = launcher
    if mode == "auto":
        datagrams = any(s["kind"] == "datagram" for s in sockets)
        mode = "sockact" if (datagrams or ipv6_only == "ipv6-only" or backlog) else "systemd-socket-activate"
    # systemd-socket-activate passes only PATH, HOME, TERM and LISTEN_* on; rootless Podman needs
    # XDG_RUNTIME_DIR and Notify= needs NOTIFY_SOCKET (forwarded when set here, or as told).
    env_pass = list(passenv) if passenv is not None else [k for k in ("XDG_RUNTIME_DIR", "NOTIFY_SOCKET")
                                                          if os.environ.get(k)]
    launch = []
    if sockets and mode == "systemd-socket-activate":
        if any(s["kind"] == "datagram" for s in sockets):
            raise QuadletError("systemd-socket-activate cannot mix stream and datagram sockets "
                               "(its --datagram applies to every -l); use --launcher sockact")
        launch = ["systemd-socket-activate"]
        for s in sockets:
            launch += ["-l", s["address"]]
        launch += ["--fdname=" + ":".join(s["name"] for s in sockets)]
        for k in env_pass:
            launch += ["-E", k]
        if ipv6_only == "both":
            notes.append("BindIPv6Only=both: systemd-socket-activate's [::] sockets are dual-stack because "
                         "net.ipv6.bindv6only is 0 (the default)")
    elif sockets:
        launch = [python, str(SOCKACT)]
        if ipv6_only != "default":
            launch += ["--bind-ipv6-only", ipv6_only]
        if backlog:
            launch += ["--backlog", str(backlog)]
        name = None
        for s in sockets:
            if s["name"] != name:
                launch += ["--fdname", s["name"]]
                name = s["name"]
            launch += ["-l" if s["kind"] == "stream" else "-d", s["address"]]
        launch += ["--"]
    reload_cmd = None
    for k, v in c.get("Service", []):
        if k == "ExecReload":
            reload_cmd = [spec.expand(w, "ExecReload") for w in split_words(v.lstrip("-@+!:"))]
        elif k not in ("Restart", "TimeoutStartSec", "TimeoutStopSec", "RestartSec"):
            notes.append(f"{base}: [Service] {k}= is not translated")
    setup_cmds = []
    for s in setup:
        setup_cmds.append({"exists": [podman] + s["exists"], "create": [podman] + s["create"], "what": s["what"]})
    return {
        "container": str(container_path),
        "socket": str(socket_path) if socket_path else None,
        "container_name": run[run.index("--name") + 1],
        "image": img,
        "launcher": mode if sockets else None,
        "sockets": sockets,
        "checks": checks,
        "setup": setup_cmds,
        "launch": launch,
        "run": run,
        "argv": launch + run,
        "reload": reload_cmd,
        "notes": notes,
    }


def _rewrite_address(address, ports, host):
    """Applies --port OLD=NEW and --host H to a Listen address."""
    a = address
    if a.startswith(("/", "@")):
        return a
    if a.isdigit():
        h, p = None, a
    elif a.startswith("["):
        h, p = a[1:].split("]", 1)[0], a.rsplit(":", 1)[1]
    else:
        h, p = a.rsplit(":", 1)
    for old, new in ports:
        if p == str(old):
            p = str(new)
            break
    if host is not None:
        h = host
    if h is None:
        return p
    return f"[{h}]:{p}" if ":" in h else f"{h}:{p}"


def to_shell(d):
    q = shlex.join
    out = ["#!/bin/sh",
           f"# Generated by container/quadlet2cmd.py from {d['container']}"
           + (f" + {d['socket']}" if d["socket"] else "") + ".",
           "# What systemd + quadlet would run (Podman 4.3 has no quadlet generator).",
           "set -e"]
    for n in d["notes"]:
        out.append(f"# note: {n}")
    for c in d["checks"]:
        fail = f"{{ echo {shlex.quote(c['message'])} >&2; exit 1; }}" if c["fatal"] else "exit 0"
        out.append(f"{q(c['test'])} || {fail}")
    for s in d["setup"]:
        out.append(f"{q(s['exists'])} || {q(s['create'])}")
    if d["sockets"]:
        out.append("# fd " + ", ".join(f"{3 + i}: {s['kind']} {s['address']} ({s['name']})"
                                       for i, s in enumerate(d["sockets"])))
    out.append("exec " + q(d["argv"]))
    if d["reload"]:
        out.append(f"# reload (ExecReload=): {q(d['reload'])}")
    out.append(f"# stop: podman stop {shlex.quote(d['container_name'])}")
    return "\n".join(out) + "\n"


def _systemd_word(w):
    """Quotes one ExecStart= word: systemd unquotes like a shell but expands $VAR itself."""
    w = w.replace("$", "$$")
    if w and not any(ch in w for ch in " \t\"'\\;"):
        return w
    return '"' + w.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _systemd_line(argv):
    return " ".join(_systemd_word(w) for w in argv)


def to_service(d, container_path):
    """The .service unit quadlet (Podman >= 4.4) would generate from the .container, for Podman
    4.3 and for reading: install it beside the .socket unit and systemd does the activation."""
    container_path = Path(container_path)
    c = _read_unit(container_path)
    stem = container_path.name[: -len(".container")]
    podman = d["run"][0]
    if "/" not in podman:
        podman = shutil.which(podman) or f"/usr/bin/{podman}"
    run_ = [podman] + d["run"][1:]
    out = [f"# {stem}.service: generated by container/quadlet2cmd.py from {container_path.name}; what quadlet",
           "# (Podman >= 4.4) generates from it. For Podman 4.3: copy it and the .socket unit to",
           "# ~/.config/systemd/user/ (or /etc/systemd/system/), then `systemctl --user daemon-reload`",
           f"# and `systemctl --user start {stem}.socket`."]
    for n in d["notes"]:
        out.append(f"# note: {n}")
    out += ["", "[Unit]", f"SourcePath={container_path.resolve()}", "RequiresMountsFor=%t/containers"]
    out += [f"{k}={v}" for k, v in c.get("Unit", [])]
    out += ["", "[Service]"]
    out += [f"{k}={v}" for k, v in c.get("Service", [])]
    out += ["Environment=PODMAN_SYSTEMD_UNIT=%n", "KillMode=mixed",
            f"ExecStop={podman} rm -v -f -i --cidfile=%t/%N.cid",
            f"ExecStopPost=-{podman} rm -v -f -i --cidfile=%t/%N.cid", "ExecStopPost=-/bin/rm -f %t/%N.cid",
            "Delegate=yes", "Type=notify", "NotifyAccess=all", "SyslogIdentifier=%N"]
    for st in d["setup"]:
        # Podman 4.3 has no `network create --ignore` / `volume create --ignore`.
        script = f"{shlex.join([podman] + st['exists'][1:])} || {shlex.join([podman] + st['create'][1:])}"
        out.append(f"ExecStartPre=/bin/sh -c {_systemd_word(script)}")
    out.append(f"ExecStart={_systemd_line(run_)}")
    if c.get("Install"):
        out += ["", "[Install]"] + [f"{k}={v}" for k, v in c["Install"]]
    return "\n".join(out) + "\n"


def run_it(d):
    import subprocess
    for c in d["checks"]:
        if subprocess.run(c["test"]).returncode != 0:
            if c["fatal"]:
                print(c["message"], file=sys.stderr)
                return 1
            return 0
    for s in d["setup"]:
        if subprocess.run(s["exists"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode != 0:
            subprocess.run(s["create"], check=True, stdout=subprocess.DEVNULL)
    os.execvp(d["argv"][0], d["argv"])


def main(argv=None):
    ap = argparse.ArgumentParser(description="Turn a quadlet .container + .socket into podman commands "
                                             "(Podman 4.3 has no quadlet generator).")
    ap.add_argument("container", help="the .container file")
    ap.add_argument("socket", nargs="?", help="the .socket file (default: NAME.socket beside it, if any)")
    ap.add_argument("--format", choices=("sh", "json", "argv", "service"), default="sh",
                    help="sh: a script (default); json: every part; argv: the launch command, one word a line; "
                         "service: the systemd .service unit quadlet would generate (use it with the .socket)")
    ap.add_argument("--run", action="store_true", help="run the checks and setup, then exec the command")
    ap.add_argument("--home", help="%%h (default $HOME)")
    ap.add_argument("--runtime-dir", help="%%t (default $XDG_RUNTIME_DIR, or /run for root)")
    ap.add_argument("--image", help="use this image instead of Image=")
    ap.add_argument("--name", help="use this container name instead of ContainerName=")
    ap.add_argument("--runtime", help="podman --runtime (e.g. runc where crun cannot run)")
    ap.add_argument("--podman", default="podman", help="the podman command")
    ap.add_argument("--podman-arg", action="append", default=[], metavar="ARG",
                    help="extra podman run argument before the image (repeatable)")
    ap.add_argument("--port", action="append", default=[], metavar="OLD=NEW",
                    help="listen on port NEW where the .socket says OLD (repeatable)")
    ap.add_argument("--host", help="listen on this address instead of the .socket's (e.g. 127.0.0.1)")
    ap.add_argument("--launcher", choices=("auto", "systemd-socket-activate", "sockact"), default="auto")
    caps = ap.add_mutually_exclusive_group()
    caps.add_argument("--cap-drop-all", dest="cap_drop_all", action="store_const", const=True, default=None,
                      help="add --cap-drop=ALL (the default for a socket-activated container)")
    caps.add_argument("--keep-caps", dest="cap_drop_all", action="store_const", const=False,
                      help="do not add --cap-drop=ALL")
    ap.add_argument("--python", default="python3", help="the Python that runs sockact.py")
    a = ap.parse_args(argv)
    ports = []
    for p in a.port:
        old, sep, new = p.partition("=")
        if not sep or not old.isdigit() or not new.isdigit():
            ap.error(f"--port {p}: expected OLD=NEW")
        ports.append((int(old), int(new)))
    try:
        d = convert(a.container, a.socket, home=a.home, runtime_dir=a.runtime_dir, image=a.image, name=a.name,
                    runtime=a.runtime, podman=a.podman, podman_args=a.podman_arg, ports=ports, host=a.host,
                    launcher=a.launcher, cap_drop_all=a.cap_drop_all, python=a.python,
                    service=a.format == "service")
    except QuadletError as e:
        print(f"quadlet2cmd: {e}", file=sys.stderr)
        return 1
    if a.run:
        return run_it(d)
    if a.format == "service":
        sys.stdout.write(to_service(d, a.container))
    elif a.format == "json":
        print(json.dumps(d, indent=2))
    elif a.format == "argv":
        print("\n".join(d["argv"]))
    else:
        sys.stdout.write(to_shell(d))
    return 0


if __name__ == "__main__":
    sys.exit(main())
