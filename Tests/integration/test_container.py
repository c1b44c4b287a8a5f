"""The container image, the seed's quadlets (container/examples) and the quadlet converter.

Part 1 needs no Podman: container/quadlet2cmd.py on all four examples, container/sockact.py,
and the examples being the seed's files with only Image= changed.

Part 2 runs real containers (skipped, with the reason, only when Podman cannot run one here):
the image built once per session by container/build-image.sh, Example 1 exactly as its quadlet
says (--network=none --read-only --cap-drop=ALL no-new-privileges, the socket handed in by
systemd-socket-activate), as root and as a random UID, sd_notify through Podman, reload, fd
names through Podman, and the checks of Examples 2-4 that wait for reverse_proxy, TLS and the
admin API: they are written in full and skip only while `berth validate` rejects the example's
Caddyfile (or `caddy reload` does not exist), so they run — and can fail — once those land.

Bridge networks (Examples 2 and 4) are created by Podman running inside a private network
namespace (`nsenter --net=…`), so their 10.89.x traffic never leaves it; the socket-activated
sockets are still opened on the host's 127.0.0.1, which is the point of socket activation.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from container_helpers import (  # noqa: F401  (podman_env and cleanup are fixtures)
    CONTAINER_DIR, EXAMPLES, SEED_EXAMPLES, Recorder, berth_binary, berth_has_subcommand, berth_supports, cleanup,
    copy_example, curl, free_port, launch, netns, podman_env, quadlet2cmd, run, unique, wait_log, wait_running)

REVERSE_PROXY_ISSUE = "needs reverse_proxy (issue 6)"
TLS_ISSUE = "needs HTTPS/TLS (the HTTPS issue)"
ADMIN_ISSUE = "needs the admin API and `caddy reload` (the admin API issue)"
SOCKACT = CONTAINER_DIR / "sockact.py"


# =============================================================================================
# Part 1: no Podman needed
# =============================================================================================

@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_examples_are_the_seed_with_only_the_image_changed(n):
    seed = SEED_EXAMPLES / f"example{n}"
    if not seed.is_dir():
        pytest.skip(f"seed example {n} not found at {seed}")
    ours = EXAMPLES / f"example{n}"
    seed_files = sorted(p.name for p in seed.iterdir() if p.name != "README.md")
    our_files = sorted(p.name for p in ours.iterdir() if p.name != "README.md")
    assert our_files == seed_files
    assert (ours / "README.md").is_file()
    for f in seed_files:
        a = (seed / f).read_text().splitlines()
        b = (ours / f).read_text().splitlines()
        assert len(a) == len(b), f
        diff = [(x, y) for x, y in zip(a, b) if x != y]
        if f == "caddy.container":
            assert diff == [("Image=docker.io/library/caddy", "Image=localhost/berth:latest")], diff
        else:
            assert diff == [], f"{f} differs from the seed: {diff}"


def conv(n, unit="caddy.container", **kw):
    kw.setdefault("home", "/home/test")
    kw.setdefault("runtime_dir", "/run/user/1000")
    kw.setdefault("passenv", [])
    return quadlet2cmd.convert(EXAMPLES / f"example{n}" / unit, **kw)


def opt_values(argv, opt):
    return [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == opt]


def test_convert_example1():
    d = conv(1)
    assert d["launcher"] == "systemd-socket-activate"
    assert d["launch"] == ["systemd-socket-activate", "-l", "[::]:8080", "--fdname=caddy.socket"]
    run_ = d["run"]
    assert run_[:2] == ["podman", "run"]
    assert opt_values(run_, "--name") == ["caddy"]
    for flag in ("--replace", "--rm", "--sdnotify=container", "--network=none", "--read-only", "--cap-drop=ALL"):
        assert flag in run_, flag
    assert opt_values(run_, "--security-opt") == ["no-new-privileges"]
    assert opt_values(run_, "-v") == ["/home/test/caddy_etc:/etc/caddy:Z"]
    assert "--sysctl" not in run_  # Network=none: nothing to bind
    i = run_.index("localhost/berth:latest")
    assert run_[i + 1:] == ["/usr/bin/caddy", "run", "--config", "/etc/caddy/Caddyfile"]
    assert [c["test"] for c in d["checks"]] == [["test", "-d", "/home/test/caddy_etc"],
                                               ["test", "-e", "/home/test/caddy_etc/Caddyfile"]]
    assert d["reload"] == ["podman", "exec", "caddy", "/usr/bin/caddy", "reload", "--config",
                           "/etc/caddy/Caddyfile", "--address", "unix//run/admin.sock", "--force"]
    assert d["setup"] == []
    assert d["sockets"] == [{"kind": "stream", "address": "[::]:8080", "name": "caddy.socket",
                             "unit_address": "[::]:8080"}]


def test_convert_example2_network_and_backends():
    d = conv(2)
    assert "--network=mynet" in d["run"]
    assert d["setup"] == [{"exists": ["podman", "network", "exists", "mynet"],
                           "create": ["podman", "network", "create", "--internal", "--opt", "isolate=true", "mynet"],
                           "what": "network mynet"}]
    for backend, image in (("whoami.container", "docker.io/traefik/whoami"), ("nginx.container", "docker.io/library/nginx")):
        b = conv(2, backend)
        assert b["launch"] == [] and b["launcher"] is None and b["sockets"] == []
        assert b["run"][-1] == image
        assert "--cap-drop=ALL" not in b["run"], "a container without a socket keeps Podman's default capabilities"
        assert "--sdnotify=conmon" in b["run"] and "--network=mynet" in b["run"] and "--read-only" in b["run"]
        assert opt_values(b["run"], "--name") == [backend.split(".")[0]]


def test_convert_example3_mixed_sockets_use_sockact_and_volumes():
    d = conv(3)
    assert d["launcher"] == "sockact"
    assert d["launch"][1] == str(SOCKACT)
    assert d["launch"][2:] == ["--bind-ipv6-only", "both", "--fdname", "caddy.socket",
                               "-l", "[::]:80", "-l", "[::]:443", "-d", "[::]:443", "--"]
    assert not any(a.startswith("--network") for a in d["run"]), "Example 3 has no Network= (Podman's default)"
    assert opt_values(d["run"], "--sysctl") == ["net.ipv4.ip_unprivileged_port_start=0"]
    assert opt_values(d["run"], "-v") == ["/home/test/caddy_etc:/etc/caddy:Z", "caddy_config:/config", "caddy_data:/data"]
    assert [s["create"] for s in d["setup"]] == [["podman", "volume", "create", "caddy_config"],
                                                 ["podman", "volume", "create", "caddy_data"]]
    assert [s["exists"][:3] for s in d["setup"]] == [["podman", "volume", "exists"]] * 2
    with pytest.raises(quadlet2cmd.QuadletError, match="cannot mix stream and datagram"):
        conv(3, launcher="systemd-socket-activate")


def test_convert_example4_aliases_static_and_fd_order():
    d = conv(4)
    assert [(s["kind"], s["address"]) for s in d["sockets"]] == [("stream", "[::]:80"), ("stream", "[::]:443"),
                                                                  ("datagram", "[::]:443")]
    assert opt_values(d["run"], "--network-alias") == ["static.example.com", "whoami.example.com"]
    # Its own listener on mynet binds 80/443 without capabilities.
    assert "--cap-drop=ALL" in d["run"]
    assert opt_values(d["run"], "--sysctl") == ["net.ipv4.ip_unprivileged_port_start=0"]
    assert "/home/test/caddy_static:/static:Z,ro" in opt_values(d["run"], "-v")
    assert [c["test"][-1] for c in d["checks"]][-1] == "/home/test/caddy_static"
    net = [s for s in d["setup"] if s["what"].startswith("network")]
    assert net[0]["create"] == ["podman", "network", "create", "--opt", "isolate=true", "mynet"]  # not Internal


def test_convert_rewrites_ports_and_host_and_overrides():
    d = conv(3, ports=[(80, 18080), (443, 18443)], host="127.0.0.1", image="img:x", name="c1",
             runtime="runc", podman_args=["--ulimit", "nofile=4096:4096"], passenv=["NOTIFY_SOCKET"])
    assert [s["address"] for s in d["sockets"]] == ["127.0.0.1:18080", "127.0.0.1:18443", "127.0.0.1:18443"]
    assert d["run"][:4] == ["podman", "run", "--runtime", "runc"]
    assert opt_values(d["run"], "--name") == ["c1"]
    i = d["run"].index("img:x")
    assert d["run"][i - 2:i] == ["--ulimit", "nofile=4096:4096"]
    e = conv(1, ports=[(8080, 9999)], host="::1", passenv=["NOTIFY_SOCKET"])
    assert e["launch"] == ["systemd-socket-activate", "-l", "[::1]:9999", "--fdname=caddy.socket", "-E", "NOTIFY_SOCKET"]


def test_shell_output_is_valid_sh_for_every_example():
    for n in (1, 2, 3, 4):
        for unit in sorted(p.name for p in (EXAMPLES / f"example{n}").glob("*.container")):
            r = subprocess.run([sys.executable, str(CONTAINER_DIR / "quadlet2cmd.py"), "--home", "/home/test",
                                str(EXAMPLES / f"example{n}" / unit)], capture_output=True, text=True)
            assert r.returncode == 0, r.stderr
            assert r.stdout.startswith("#!/bin/sh\n") and "\nexec " in r.stdout
            chk = subprocess.run(["sh", "-n"], input=r.stdout, capture_output=True, text=True)
            assert chk.returncode == 0, chk.stderr + r.stdout
    j = subprocess.run([sys.executable, str(CONTAINER_DIR / "quadlet2cmd.py"), "--format", "json",
                        str(EXAMPLES / "example4" / "caddy.container")], capture_output=True, text=True)
    assert json.loads(j.stdout)["container_name"] == "caddy"


def test_service_format_is_what_quadlet_generates(tmp_path):
    """--format service: the .service unit for Podman 4.3 (no quadlet generator); systemd
    expands the specifiers and activates it from the seed's .socket unit."""
    for n in (1, 2, 3, 4):
        r = subprocess.run([sys.executable, str(CONTAINER_DIR / "quadlet2cmd.py"), "--format", "service",
                            str(EXAMPLES / f"example{n}" / "caddy.container")], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        unit = quadlet2cmd.parse_unit(r.stdout)
        svc = dict(unit["Service"])
        assert svc["Type"] == "notify" and svc["NotifyAccess"] == "all" and svc["KillMode"] == "mixed"
        start = svc["ExecStart"].split()
        assert start[0].endswith("/podman") and start[1] == "run"
        for w in ("--cidfile=%t/%N.cid", "--replace", "--rm", "--cgroups=split", "-d", "--sdnotify=container",
                  "--read-only", "--cap-drop=ALL", "%h/caddy_etc:/etc/caddy:Z", "localhost/berth:latest"):
            assert w in start, (n, w)
        assert start[-4:] == ["/usr/bin/caddy", "run", "--config", "/etc/caddy/Caddyfile"]
        assert ("AssertPathExists", "%h/caddy_etc/Caddyfile") in unit["Unit"]
        assert svc["ExecReload"].startswith("podman exec caddy /usr/bin/caddy reload")
        pre = [v for k, v in unit["Service"] if k == "ExecStartPre"]
        assert len(pre) == {1: 0, 2: 1, 3: 2, 4: 3}[n]
        if shutil.which("systemd-analyze"):
            (tmp_path / f"ex{n}").mkdir()
            f = tmp_path / f"ex{n}" / "caddy.service"
            f.write_text(r.stdout)
            shutil.copy(EXAMPLES / f"example{n}" / "caddy.socket", tmp_path / f"ex{n}")
            v = subprocess.run(["systemd-analyze", "verify", str(f)], capture_output=True, text=True)
            assert v.returncode == 0 and "caddy.service" not in v.stderr, v.stderr


def test_unit_parsing_specifiers_and_errors(tmp_path):
    (tmp_path / "web.container").write_text(
        "[Unit]\nAssertPathExists=!%h/stop\n# comment\n[Container]\nImage=img\n"
        "Volume=%h/a:/a\nVolume=\nVolume=%t/%N/b:/b:ro\nVolume=./rel:/rel\n"
        "Exec=/usr/bin/caddy run \\\n  --config \"/etc/caddy/My Caddyfile\"\nUser=1000\nGroup=1000\n"
        "Environment=A=1 \"B=two words\"\nPublishPort=127.0.0.1:8080:80\nFoo=bar\n"
        "AddCapability=NET_BIND_SERVICE\nDropCapability=all\n")
    (tmp_path / "web.socket").write_text("[Socket]\nListenStream=8080\nFileDescriptorName=http\nBacklog=64\nNoDelay=yes\n")
    d = quadlet2cmd.convert(tmp_path / "web.container", home="/h", runtime_dir="/rt", passenv=[])
    assert opt_values(d["run"], "--name") == ["systemd-web"]  # quadlet's default name
    assert opt_values(d["run"], "-v") == ["/rt/web/b:/b:ro", f"{tmp_path}/rel:/rel"]  # empty Volume= resets
    assert d["run"][-4:] == ["/usr/bin/caddy", "run", "--config", "/etc/caddy/My Caddyfile"]
    assert opt_values(d["run"], "--user") == ["1000:1000"]
    assert opt_values(d["run"], "--env") == ["A=1", "B=two words"]
    assert opt_values(d["run"], "--publish") == ["127.0.0.1:8080:80"]
    assert opt_values(d["run"], "--cap-add") == ["NET_BIND_SERVICE"]
    assert d["run"].count("--cap-drop=ALL") == 1 and "--cap-drop" not in d["run"]
    assert d["checks"][0]["test"] == ["test", "!", "-e", "/h/stop"]
    assert any("Foo=" in n for n in d["notes"]) and any("NoDelay=" in n for n in d["notes"])
    assert d["launcher"] == "sockact"  # Backlog= needs sockact
    assert d["launch"][2:] == ["--backlog", "64", "--fdname", "http", "-l", "8080", "--"]
    (tmp_path / "bad.container").write_text("[Container]\nImage=img\nVolume=%z:/x\n")
    with pytest.raises(quadlet2cmd.QuadletError, match="%z"):
        quadlet2cmd.convert(tmp_path / "bad.container")
    (tmp_path / "acc.container").write_text("[Container]\nImage=img\n")
    (tmp_path / "acc.socket").write_text("[Socket]\nListenStream=80\nAccept=yes\n")
    with pytest.raises(quadlet2cmd.QuadletError, match="Accept=yes"):
        quadlet2cmd.convert(tmp_path / "acc.container")
    (tmp_path / "n.network").write_text("[Network]\nInternal=yes\n")
    (tmp_path / "v.volume").write_text("[Volume]\nUser=1000\n")
    (tmp_path / "n.container").write_text("[Container]\nImage=img\nNetwork=n.network\nVolume=v.volume:/data\n")
    d = quadlet2cmd.convert(tmp_path / "n.container")
    assert "--network=systemd-n" in d["run"] and "systemd-v:/data" in opt_values(d["run"], "-v")
    assert d["setup"][0]["create"][-2:] == ["--internal", "systemd-n"]
    assert d["setup"][1]["create"] == ["podman", "volume", "create", "--opt", "o=uid=1000", "systemd-v"]


FD_REPORT = r"""
import json, os, socket, sys
out = {"env": {k: os.environ.get(k) for k in ("LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES")}, "pid": os.getpid(), "fds": []}
for fd in range(3, 3 + int(os.environ["LISTEN_FDS"])):
    s = socket.socket(fileno=os.dup(fd))
    out["fds"].append([s.type == socket.SOCK_STREAM and "stream" or "datagram", s.family == socket.AF_INET6,
                       s.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY) if s.family == socket.AF_INET6 else None,
                       s.getsockname()[1]])
    s.detach()
print(json.dumps(out))
"""


def test_sockact_hands_over_streams_and_datagrams_like_systemd():
    # [::] with BindIPv6Only=both is dual-stack (IPV6_V6ONLY 0); the child only inspects the fds.
    p1, p2 = free_port(), free_port()
    r = subprocess.run([sys.executable, str(SOCKACT), "--bind-ipv6-only", "both", "--fdname", "web",
                        "-l", f"[::]:{p1}", "--fdname", "quic", "-d", f"127.0.0.1:{p2}", "-l", f"127.0.0.1:{p2}",
                        "--", sys.executable, "-c", FD_REPORT], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["env"] == {"LISTEN_FDS": "3", "LISTEN_PID": str(out["pid"]), "LISTEN_FDNAMES": "web:quic:quic"}
    assert out["fds"] == [["stream", True, 0, p1], ["datagram", False, None, p2], ["stream", False, None, p2]]


# =============================================================================================
# Part 2: real containers
# =============================================================================================

def test_image_shape(podman_env, tmp_path):
    env = podman_env
    cfg = env.inspect(env.image, "image")
    c = cfg["Config"]
    assert c["Cmd"] == ["/usr/bin/caddy", "run", "--config", "/etc/caddy/Caddyfile"]
    assert not c.get("Entrypoint"), "no ENTRYPOINT: a quadlet's Exec= must replace CMD"
    assert {"XDG_DATA_HOME=/data", "XDG_CONFIG_HOME=/config"} <= set(c["Env"])
    assert c["WorkingDir"] == "/srv"
    assert not c.get("User") or c["User"] in ("0", "root")
    size = env.image_size()
    print(f"\nimage {env.image}: {size} bytes ({size / 1e6:.1f} MB; docker.io/library/caddy is about 50 MB)")
    assert size < 50_000_000, f"the image grew to {size} bytes"

    cid = env.p("create", env.image).stdout.strip()
    try:
        tar_path = tmp_path / "export.tar"
        env.p("export", "-o", str(tar_path), cid)
    finally:
        env.p("rm", "-f", cid, check=False)
    with tarfile.open(tar_path) as t:
        members = {m.name.lstrip("./").rstrip("/"): m for m in t.getmembers()}
        caddyfile = t.extractfile(members["etc/caddy/Caddyfile"]).read()
    caddy = members["usr/bin/caddy"]
    assert caddy.issym() and caddy.linkname == "berth"
    assert members["usr/bin/berth"].isfile() and members["usr/bin/berth"].mode & 0o111
    for shell in ("bin/sh", "usr/bin/sh", "bin/bash", "usr/bin/bash", "bin/busybox"):
        assert shell not in members, f"{shell} in the image"
    for name, m in members.items():
        assert not m.mode & 0o6000, f"{name} is setuid/setgid"
        assert not any("capability" in k for k in m.pax_headers), f"{name} has file capabilities"
        assert m.uid == 0 and m.gid == 0, f"{name} is not owned by root"
    for d in ("tmp", "run", "data", "config"):
        assert members[d].isdir() and members[d].mode & 0o1777 == 0o1777, d
    assert members["srv"].isdir()
    assert any(n.endswith("ld-linux-x86-64.so.2") or "ld-linux" in n for n in members), "no dynamic loader"
    assert caddyfile == (EXAMPLES / "example1" / "Caddyfile").read_bytes()
    # No shell means no entrypoint trick can run: exec of /bin/sh fails.
    r = env.p("run", "--rm", "--network=none", *env.run_args, "--entrypoint", "/bin/sh", env.image, "-c", "true",
              check=False)
    assert r.returncode != 0


def test_image_via_containerfile_matches_import(podman_env):
    """build-image.sh --method build runs container/Containerfile's runtime stage (the builder
    stage replaced by --build-context); its config must equal the imported image's."""
    env = podman_env
    tag = "localhost/berth:it-containerfile"
    cmd = ["bash", str(CONTAINER_DIR / "build-image.sh"), "--method", "build", "--tag", tag, "--quiet"]
    if berth_binary():
        cmd += ["--binary", berth_binary()]
    try:
        run(cmd, timeout=900)
        a, b = env.inspect(env.image, "image")["Config"], env.inspect(tag, "image")["Config"]
        for k in ("Cmd", "WorkingDir", "ExposedPorts"):
            assert a.get(k) == b.get(k), k
        assert not b.get("Entrypoint")
        assert sorted(a["Env"]) == sorted(b["Env"])
        r = env.p("run", "--rm", "--network=none", *env.run_args, tag, "/usr/bin/caddy", "version")
        assert "Berth" in r.stdout
    finally:
        env.p("rmi", "-f", tag, check=False)


def wait_listening(port, timeout=10):
    """Waits until something LISTENs on TCP port (without connecting: a connection would start
    the container under systemd-socket-activate)."""
    hexport = f":{port:04X} "
    end = time.time() + timeout
    while time.time() < end:
        for f in ("/proc/net/tcp", "/proc/net/tcp6"):
            try:
                for line in Path(f).read_text().splitlines()[1:]:
                    parts = line.split()
                    if parts[1].endswith(hexport.strip()) and parts[3] == "0A":
                        return
            except FileNotFoundError:
                pass
        time.sleep(0.02)
    raise AssertionError(f"nothing listens on port {port}")


def proc_status(pid):
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        k, _, v = line.partition(":")
        out[k] = v.strip()
    return out


def start_example1(env, cleanup, tmp_path, user=None, caddyfile=None, notify=None, extra=()):
    home = tmp_path / "home"
    (home / "caddy_etc").mkdir(parents=True)
    cf = home / "caddy_etc" / "Caddyfile"
    cf.write_text(caddyfile if caddyfile is not None else (EXAMPLES / "example1" / "Caddyfile").read_text())
    os.chmod(home / "caddy_etc", 0o755)
    os.chmod(cf, 0o644)
    port = free_port()
    name = unique("ex1")
    args = (["--user", user] if user else []) + list(extra)
    d = env.convert(EXAMPLES / "example1" / "caddy.container", home=str(home), name=name, ports=[(8080, port)],
                    host="127.0.0.1", podman_args=args, passenv=["NOTIFY_SOCKET"] if notify else [])
    for c in d["checks"]:
        assert subprocess.run(c["test"]).returncode == 0, c["message"]
    launched = launch(d["argv"], name, cleanup, env={"NOTIFY_SOCKET": str(notify.sock)} if notify else None)
    wait_listening(port)
    return d, launched, port, cf


@pytest.mark.parametrize("user", [None, "12345"], ids=["default-user", "uid-12345"])
def test_example1_socket_activated_network_none(podman_env, cleanup, tmp_path, user):
    env = podman_env
    notify = Recorder(tmp_path / "notify", cleanup)
    d, launched, port, _ = start_example1(env, cleanup, tmp_path, user=user, notify=notify)
    name = launched.name
    # The first connection starts the container (systemd-socket-activate execs podman then).
    r = curl(f"http://localhost:{port}/")
    assert r.returncode == 0, r.stderr + launched.output()
    assert r.stdout == "Hello world\n"
    r = curl(f"http://127.0.0.1:{port}/", "-H", "Host: localhost", "-i")
    assert r.stdout.startswith("HTTP/1.1 200") and r.stdout.endswith("\n\nHello world\n")  # text mode: no \r
    assert "\nContent-Length: 12\n" in r.stdout

    info = wait_running(env, name, launched)
    hc = info["HostConfig"]
    assert hc["NetworkMode"] == "none"
    assert hc["ReadonlyRootfs"] is True
    assert any("no-new-privileges" in o for o in (hc.get("SecurityOpt") or []))
    st = proc_status(info["State"]["Pid"])
    assert st["NoNewPrivs"] == "1"
    assert int(st["CapEff"], 16) == 0 and int(st["CapPrm"], 16) == 0 and int(st["CapBnd"], 16) == 0
    expected_uid = int(user) if user else 0
    if env.rootful:
        assert st["Uid"].split()[0] == str(expected_uid)
    top = env.p("top", name, "user").stdout.split()
    assert top[-1] == (user or "0"), top  # numeric: the image has no /etc/passwd

    # The access log shows the client's real address: the socket was accepted on the host.
    e = wait_log(env, name, lambda e: e.get("logger") == "http.log.access")
    assert e["request"]["remote_ip"] == "127.0.0.1" and e["request"]["client_ip"] == "127.0.0.1"
    assert e["status"] == 200 and e["size"] == 12
    adopted = wait_log(env, name, lambda e: e.get("logger") == "systemd")
    assert '"caddy.socket"' in adopted["msg"], "LISTEN_FDNAMES from the .socket unit reaches the container"

    # Notify=true (--sdnotify=container): READY=1 reaches the service manager through Podman.
    ready = notify.wait_for("READY")
    assert ready is not None

    # podman stop: SIGTERM, graceful, exit 0.
    stop = env.p("stop", "-t", "10", name)
    assert stop.returncode == 0
    assert launched.wait(30) == 0, launched.output()
    out = launched.output()
    lines = [json.loads(l) for l in out.splitlines() if l.startswith("{")]
    assert any(l.get("msg") == "shutting down" and l.get("signal") == "SIGTERM" for l in lines), out
    assert any(l.get("msg") == "shutdown complete" and l.get("exit_code") == 0 for l in lines), out


def test_sd_notify_from_inside_the_container_reload_and_stopping(podman_env, cleanup, tmp_path):
    """The container's own NOTIFY_SOCKET (as systemd gives a Type=notify service without Podman's
    proxy): RELOADING=1 + MONOTONIC_USEC, READY=1 with STATUS, and STOPPING=1 on podman stop;
    SIGHUP through `podman kill` reloads the mounted Caddyfile (no admin API needed)."""
    env = podman_env
    notify = Recorder(tmp_path / "notify", cleanup)
    extra = ["--sdnotify=ignore", "-e", "NOTIFY_SOCKET=/run/host-notify/notify.sock",
             "-v", f"{notify.dir}:/run/host-notify"]
    d, launched, port, cf = start_example1(env, cleanup, tmp_path, user="12345", extra=extra)
    assert curl(f"http://localhost:{port}/").stdout == "Hello world\n", launched.output()
    notify.wait_for("READY")
    msgs = notify.messages()
    assert msgs[0]["fields"].get("RELOADING") == "1" and "MONOTONIC_USEC" in msgs[0]["fields"]
    assert any("STATUS" in m["fields"] for m in msgs)
    assert msgs[0]["uid"] == 12345 or not env.rootful

    cf.write_text(cf.read_text().replace("Hello world", "Hello again"))
    env.p("kill", "--signal", "HUP", launched.name)
    end = time.time() + 10
    body = None
    while time.time() < end:
        body = curl(f"http://localhost:{port}/").stdout
        if body == "Hello again\n":
            break
        time.sleep(0.1)
    assert body == "Hello again\n", launched.output()
    assert sum(1 for m in notify.messages() if m["fields"].get("RELOADING") == "1") >= 2

    env.p("stop", "-t", "10", launched.name)
    assert launched.wait(30) == 0, launched.output()
    notify.wait_for("STOPPING")


def test_default_cmd_serves_the_builtin_caddyfile(podman_env, cleanup):
    """No Exec= and no volume: the image's CMD and /etc/caddy/Caddyfile (Example 1) serve."""
    env = podman_env
    port, name = free_port(), unique("default")
    argv = [sys.executable, str(SOCKACT), "-l", f"127.0.0.1:{port}", "--", env.podman, "run", "--rm", "--name", name,
            "--network=none", "--read-only", "--cap-drop=ALL", "--security-opt", "no-new-privileges",
            *env.run_args, env.image]
    launched = launch(argv, name, cleanup)
    wait_running(env, name, launched)
    r = curl(f"http://localhost:{port}/")
    assert r.stdout == "Hello world\n", r.stderr + launched.output()
    env.p("stop", name)
    assert launched.wait(30) == 0


def test_fd_names_pass_through_podman(podman_env, cleanup, tmp_path):
    """Two socket 'units' named web and admin-ish, handed over in the opposite order of the
    Caddyfile: `bind fdname/NAME` finds each inside the container (Podman 4.3 forwards
    LISTEN_FDNAMES)."""
    env = podman_env
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "Caddyfile").write_text(
        "http://one.test {\n\tbind fdname/one\n\trespond \"one\n\"\n}\n"
        "http://two.test {\n\tbind fdname/two\n\trespond \"two\n\"\n}\n")
    p1, p2, name = free_port(), free_port(), unique("fdname")
    argv = [sys.executable, str(SOCKACT), "--fdname", "two", "-l", f"127.0.0.1:{p2}", "--fdname", "one",
            "-l", f"127.0.0.1:{p1}", "--", env.podman, "run", "--rm", "--name", name, "--network=none", "--read-only",
            "--cap-drop=ALL", "--user", "4242", *env.run_args, "-v", f"{etc}:/etc/caddy:Z", env.image]
    launched = launch(argv, name, cleanup)
    wait_running(env, name, launched)
    assert curl(f"http://127.0.0.1:{p1}/", "-H", "Host: one.test").stdout == "one\n", launched.output()
    assert curl(f"http://127.0.0.1:{p2}/", "-H", "Host: two.test").stdout == "two\n", launched.output()
    env.p("stop", name)
    assert launched.wait(30) == 0


def test_example1_reload_through_admin_api_exec(podman_env, cleanup, tmp_path):
    """ExecReload= of the quadlet: `podman exec caddy /usr/bin/caddy reload --config
    /etc/caddy/Caddyfile --address unix//run/admin.sock --force`."""
    env = podman_env
    if not berth_has_subcommand(env, "reload"):
        pytest.skip(ADMIN_ISSUE)
    d, launched, port, cf = start_example1(env, cleanup, tmp_path)
    assert curl(f"http://localhost:{port}/").stdout == "Hello world\n", launched.output()
    wait_running(env, launched.name, launched)
    cf.write_text(cf.read_text().replace("Hello world", "Hello reloaded"))
    reload_cmd = list(d["reload"])
    assert reload_cmd[:3] == ["podman", "exec", "caddy"]
    reload_cmd[0], reload_cmd[2] = env.podman, launched.name
    r = run(reload_cmd, check=False, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr + launched.output()
    assert curl(f"http://localhost:{port}/").stdout == "Hello reloaded\n"
    env.p("stop", launched.name)
    assert launched.wait(30) == 0


# ---- Examples 2-4: bridge networks, reverse_proxy, TLS -------------------------------------

WHOAMI_CADDYFILE = """:80 {
\trespond "Hostname: {system.hostname}
Host: {http.request.host}
X-Forwarded-For: {http.request.header.X-Forwarded-For}
X-Forwarded-Proto: {http.request.header.X-Forwarded-Proto}
RemoteAddr: {http.request.remote}
"
}
"""
NGINX_CADDYFILE = """:80 {
\trespond "<!DOCTYPE html>
<html>
<head>
<title>Welcome to nginx!</title>
</head>
</html>
"
}
"""


def start_backend(env, cleanup, example_dir, unit, alias, caddyfile, tmp_path, nsenter):
    """A stand-in for whoami/nginx (no registry here): Berth from the same image answering like
    them, started from the example's own .container with only the image swapped."""
    etc = tmp_path / f"{alias}-etc"
    etc.mkdir()
    (etc / "Caddyfile").write_text(caddyfile)
    name = unique(alias)
    d = env.convert(example_dir / unit, name=name, podman_args=["--network-alias", alias, "-v", f"{etc}:/etc/caddy:Z"])
    for s in d["setup"]:
        if run(nsenter + s["exists"], check=False).returncode != 0:
            run(nsenter + s["create"])
    launched = launch(nsenter + d["run"], name, cleanup)
    info = wait_running(env, name, launched)
    wait_log(env, name, lambda e: e.get("msg") == "serving initial configuration")
    return name, info


def unique_names(n, tmp_path, volumes=False, network=True):
    """Copies example N with its global Podman names (network, volumes) made unique."""
    patches = {}
    names = {}
    if network:
        names["net"] = unique("net")
        patches["mynet.network"] = [("NetworkName=mynet", f"NetworkName={names['net']}")]
    if volumes:
        for v in ("caddy_config", "caddy_data"):
            names[v] = unique(v.replace("_", ""))
            patches[f"{v}.volume"] = [(f"VolumeName={v}", f"VolumeName={names[v]}")]
    return copy_example(n, tmp_path, **patches), names


def test_example2_reverse_proxy_keeps_client_address(podman_env, cleanup, tmp_path):
    env = podman_env
    caddyfile = (EXAMPLES / "example2" / "Caddyfile").read_text()
    ok, msg = berth_supports(caddyfile, tmp_path)
    if not ok:
        pytest.skip(f"{REVERSE_PROXY_ISSUE}: {msg.splitlines()[-1] if msg else ''}")
    ns, nsenter = netns(cleanup)
    ex, names = unique_names(2, tmp_path)
    cleanup.network(names["net"])
    start_backend(env, cleanup, ex, "whoami.container", "whoami", WHOAMI_CADDYFILE, tmp_path, nsenter)
    start_backend(env, cleanup, ex, "nginx.container", "nginx", NGINX_CADDYFILE, tmp_path, nsenter)

    home = tmp_path / "home"
    (home / "caddy_etc").mkdir(parents=True)
    (home / "caddy_etc" / "Caddyfile").write_text(caddyfile)
    port, name = free_port(), unique("caddy")
    d = env.convert(ex / "caddy.container", home=str(home), name=name, ports=[(8080, port)], host="127.0.0.1")
    assert f"--network={names['net']}" in d["run"]
    launched = launch(d["launch"] + nsenter + d["run"], name, cleanup)
    wait_listening(port)
    r = curl(f"http://whoami.example.com:{port}", "--resolve", f"whoami.example.com:{port}:127.0.0.1")
    assert r.returncode == 0, r.stderr + launched.output()
    assert "X-Forwarded-For: 127.0.0.1" in r.stdout, r.stdout
    r = curl(f"http://nginx.example.com:{port}", "--resolve", f"nginx.example.com:{port}:127.0.0.1")
    assert "<title>Welcome to nginx!</title>" in r.stdout, r.stdout + launched.output()
    e = wait_log(env, name, lambda e: e.get("logger", "").startswith("http.log.access")
                 and e["request"]["host"].startswith("whoami.example.com"))
    assert e["request"]["remote_ip"] == "127.0.0.1"
    env.p("stop", name)
    assert launched.wait(30) == 0


def without_acme(caddyfile):
    """Examples 3 and 4 get certificates by ACME, impossible offline. The only change: Berth's
    internal CA instead, first as the global `local_certs`, else as `tls internal` in every
    HTTPS site. Returns the variants to try, in order."""
    assert caddyfile.startswith("{\n")
    global_opt = "{\n\tlocal_certs\n" + caddyfile[2:]
    out = []
    for line in caddyfile.splitlines(keepends=True):
        out.append(line)
        m = re.match(r"^(\S[^{]*?)\s*\{\s*$", line)
        if m and not m.group(1).startswith("http://"):
            out.append("\ttls internal\n")
    return [global_opt, "".join(out)]


def first_supported(variants, tmp_path):
    """The first Caddyfile variant `berth validate` accepts, or (None, every variant's error)."""
    errors = []
    for v in variants:
        ok, msg = berth_supports(v, tmp_path)
        if ok:
            return v, None
        err = msg.splitlines()[-1] if msg else "invalid"
        errors.append(re.sub(r", at /\S+/(Caddyfile:\d+)", r" (\1)", err))
    return None, " / ".join(errors)


def curl_until_ok(url, *args, timeout=20):
    """Caddy obtains certificates after it reports ready (a handshake fails with an internal
    error meanwhile); retry the first HTTPS request until it completes."""
    end = time.time() + timeout
    while True:
        r = curl(url, *args)
        if r.returncode == 0 or time.time() > end:
            return r
        time.sleep(0.2)


def curl_has_http3():
    r = subprocess.run(["curl", "--version"], capture_output=True, text=True)
    return "HTTP3" in r.stdout


def test_example3_https_and_http3_over_inherited_sockets(podman_env, cleanup, tmp_path):
    env = podman_env
    caddyfile, err = first_supported(without_acme((EXAMPLES / "example3" / "Caddyfile").read_text()), tmp_path)
    if caddyfile is None:
        pytest.skip(f"{TLS_ISSUE}: {err}")
    ex, names = unique_names(3, tmp_path, volumes=True, network=False)
    for v in ("caddy_config", "caddy_data"):
        cleanup.volume(names[v])
    home = tmp_path / "home"
    (home / "caddy_etc").mkdir(parents=True)
    (home / "caddy_etc" / "Caddyfile").write_text(caddyfile)
    p80, p443, name = free_port(), free_port(), unique("caddy")
    d = env.convert(ex / "caddy.container", home=str(home), name=name, ports=[(80, p80), (443, p443)],
                    host="127.0.0.1", podman_args=["--network=none"])
    for s in d["setup"]:
        if run(s["exists"], check=False).returncode != 0:
            run(s["create"])
    launched = launch(d["argv"], name, cleanup)
    wait_running(env, name, launched)
    r = curl(f"http://example.com:{p80}/", "--resolve", f"example.com:{p80}:127.0.0.1")
    assert r.stdout == "Hello world\n", r.stderr + launched.output()
    r = curl_until_ok(f"https://example.com:{p443}/", "-k", "--resolve", f"example.com:{p443}:127.0.0.1")
    assert r.stdout == "Hello world\n", r.stderr + launched.output()
    if curl_has_http3():
        r = curl(f"https://example.com:{p443}/", "-k", "--http3-only", "--resolve", f"example.com:{p443}:127.0.0.1")
        assert r.stdout == "Hello world\n", r.stderr
    # The certificate went to the caddy_data volume, under --read-only.
    mp = env.inspect(names["caddy_data"], "volume")["Mountpoint"]
    assert any(Path(mp).rglob("*")), "nothing written to the data volume"
    env.p("stop", name)
    assert launched.wait(30) == 0


def test_example4_proxy_static_redirect_and_custom_network(podman_env, cleanup, tmp_path):
    env = podman_env
    caddyfile, err = first_supported(without_acme((EXAMPLES / "example4" / "Caddyfile").read_text()), tmp_path)
    if caddyfile is None:
        pytest.skip(f"{REVERSE_PROXY_ISSUE}, {TLS_ISSUE}, file_server and redir: {err}")
    ns, nsenter = netns(cleanup)
    ex, names = unique_names(4, tmp_path, volumes=True)
    cleanup.network(names["net"])
    for v in ("caddy_config", "caddy_data"):
        cleanup.volume(names[v])
    _, whoami = start_backend(env, cleanup, ex, "whoami.container", "whoami", WHOAMI_CADDYFILE, tmp_path, nsenter)

    home = tmp_path / "home"
    (home / "caddy_etc").mkdir(parents=True)
    (home / "caddy_static").mkdir()
    (home / "caddy_etc" / "Caddyfile").write_text(caddyfile)
    (home / "caddy_static" / "file.txt").write_text("my static file\n")
    p80, p443, name = free_port(), free_port(), unique("caddy")
    d = env.convert(ex / "caddy.container", home=str(home), name=name, ports=[(80, p80), (443, p443)],
                    host="127.0.0.1")
    for s in d["setup"]:
        if run(nsenter + s["exists"], check=False).returncode != 0:
            run(nsenter + s["create"])
    launched = launch(d["launch"] + nsenter + d["run"], name, cleanup)
    info = wait_running(env, name, launched)
    wait_log(env, name, lambda e: e.get("msg") == "serving initial configuration")

    # fd/3: plain HTTP redirects to HTTPS.
    r = curl(f"http://whoami.example.com:{p80}/x?y=1", "-o", "/dev/null", "-w", "%{http_code} %{redirect_url}",
             "--resolve", f"whoami.example.com:{p80}:127.0.0.1")
    code, _, location = r.stdout.partition(" ")
    assert code in ("301", "302", "308") and location == "https://whoami.example.com/x?y=1", r.stdout
    # fd/4: HTTPS reverse proxy with the real client address.
    r = curl_until_ok(f"https://whoami.example.com:{p443}/", "-k", "--resolve", f"whoami.example.com:{p443}:127.0.0.1")
    assert "X-Forwarded-For: 127.0.0.1" in r.stdout, r.stderr + r.stdout + launched.output()
    # fd/4: file_server from the read-only /static volume.
    r = curl_until_ok(f"https://static.example.com:{p443}/file.txt", "-k",
                      "--resolve", f"static.example.com:{p443}:127.0.0.1")
    assert r.stdout == "my static file\n", r.stderr
    # fdgram/5: HTTP/3.
    if curl_has_http3():
        r = curl(f"https://static.example.com:{p443}/file.txt", "-k", "--http3-only",
                 "--resolve", f"static.example.com:{p443}:127.0.0.1")
        assert r.stdout == "my static file\n", r.stderr
    # The listener Berth binds itself on the custom network (NetworkAlias=): a client on mynet
    # (host curl inside the whoami container's network namespace) reaches it, and the proxy
    # reports that client's address.
    caddy_ip = next(iter(info["NetworkSettings"]["Networks"].values()))["IPAddress"]
    whoami_ip = next(iter(whoami["NetworkSettings"]["Networks"].values()))["IPAddress"]
    r = run(["nsenter", "-t", str(whoami["State"]["Pid"]), "-n", "curl", "-sS", "--max-time", "10",
             "--resolve", f"whoami.example.com:80:{caddy_ip}", "http://whoami.example.com/"], check=False)
    assert f"X-Forwarded-For: {whoami_ip}" in r.stdout, r.stdout + r.stderr
    e = wait_log(env, name, lambda e: e.get("logger", "").startswith("http.log.access")
                 and e["request"]["remote_ip"] == whoami_ip)
    assert e["request"]["host"] == "whoami.example.com"
    env.p("stop", name)
    assert launched.wait(30) == 0
