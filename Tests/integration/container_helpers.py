"""Podman helpers and fixtures for test_container.py.

The `podman_env` session fixture makes sure Podman can run a container here, builds the image
once per session with container/build-image.sh (reusing the binary at $BERTH when set), and
finds the `podman run` options this host needs:

- the OCI runtime: Podman's default, else `--runtime runc` (crun rejects hybrid cgroup v1/v2
  hierarchies on some hosts);
- `--ulimit nofile=…/nproc=…`: Podman (as root) raises the container's limits to 1048576, which
  fails with `error setting rlimit … operation not permitted` where the host's hard limits are
  lower and CAP_SYS_RESOURCE is missing; then the limits are set to what this process has.

It skips (with the reason) only when Podman cannot run a container at all. Everything is
detected, nothing depends on a hand-made setup: a missing Podman is installed with
container/ensure-podman.sh when running as root with apt-get (unless BERTH_NO_INSTALL=1).
BERTH_PODMAN names another podman command; BERTH_IMAGE another image tag.
"""
import json
import os
import re
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONTAINER_DIR = ROOT / "container"
EXAMPLES = CONTAINER_DIR / "examples"
SEED_EXAMPLES = ROOT.parent / "shared" / "seed" / "examples"
RECORDER = Path(__file__).resolve().parent / "sd_notify_recorder.py"
IMAGE = os.environ.get("BERTH_IMAGE", "localhost/berth:latest")


def berth_binary():
    """$BERTH, else the release build conftest.py also defaults to, else None (build-image.sh
    then builds one)."""
    b = os.environ.get("BERTH") or str(ROOT / ".build" / "release" / "berth")
    return os.path.abspath(b) if os.path.isfile(b) and os.access(b, os.X_OK) else None

sys.path.insert(0, str(CONTAINER_DIR))
import quadlet2cmd  # noqa: E402  (container/quadlet2cmd.py)


def unique(prefix):
    return f"berth-it-{prefix}-{secrets.token_hex(3)}"


def free_port(host="127.0.0.1"):
    s = socket.socket()
    s.bind((host, 0))
    p = s.getsockname()[1]
    s.close()
    return p


def run(cmd, check=True, timeout=120, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, cmd))} exited {r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}")
    return r


class PodmanEnv:
    """What the tests need to run containers on this host."""

    def __init__(self, podman, run_args, image, build_log, rootful):
        self.podman = podman
        self.run_args = list(run_args)   # --runtime / --ulimit options this host needs
        self.image = image
        self.build_log = build_log
        self.rootful = rootful
        self._cleanups = []

    def cmd(self, *args):
        return [self.podman, *map(str, args)]

    def p(self, *args, check=True, timeout=120):
        return run(self.cmd(*args), check=check, timeout=timeout)

    def inspect(self, what, kind="container"):
        r = self.p(kind, "inspect", what, check=False)
        if r.returncode != 0:
            return None
        data = json.loads(r.stdout)
        return data[0] if data else None

    def logs(self, name):
        r = self.p("logs", name, check=False)
        return r.stdout + r.stderr

    def log_entries(self, name):
        out = []
        for line in self.logs(name).splitlines():
            line = line.strip()
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:
                    pass
        return out

    def image_size(self):
        return int(self.p("image", "inspect", "--format", "{{.Size}}", self.image).stdout.strip())

    def convert(self, container_file, **kw):
        """quadlet2cmd.convert with this host's podman options and the image under test."""
        kw.setdefault("image", self.image)
        kw["podman_args"] = list(self.run_args) + list(kw.get("podman_args", ()))
        kw.setdefault("podman", self.podman)
        kw.setdefault("python", sys.executable)
        return quadlet2cmd.convert(container_file, **kw)


def _hard_limit(res):
    soft, hard = resource.getrlimit(res)
    return hard if hard != resource.RLIM_INFINITY else 1048576


def _probe_run_args(podman, image):
    """Finds podman run options that let a container start here; returns (args, errors)."""
    nofile, nproc = _hard_limit(resource.RLIMIT_NOFILE), _hard_limit(resource.RLIMIT_NPROC)
    ulimit_sets = [[], ["--ulimit", f"nofile={nofile}:{nofile}", "--ulimit", f"nproc={nproc}:{nproc}"],
                   ["--ulimit", f"nofile={nofile}:{nofile}", "--ulimit", "nproc=4096:4096"],
                   ["--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096"]]
    runtimes = [[]] + [["--runtime", r] for r in ("runc", "crun") if shutil.which(r)]
    errors = []
    for rt in runtimes:
        for ul in ulimit_sets:
            args = rt + ul
            r = run([podman, "run", "--rm", "--network=none", *args, image, "/usr/bin/caddy", "version"],
                    check=False, timeout=60)
            if r.returncode == 0 and r.stdout.strip():
                return args, errors
            errors.append(f"podman run {' '.join(args)}: {(r.stderr or r.stdout).strip().splitlines()[-1:]}")
    return None, errors


_ENV = {}


def _setup_podman():
    if "env" in _ENV or "skip" in _ENV:
        return
    podman_cmd = os.environ.get("BERTH_PODMAN", "podman")
    podman = shutil.which(podman_cmd)
    if podman is None and podman_cmd == "podman" and os.geteuid() == 0 and shutil.which("apt-get") and os.environ.get("BERTH_NO_INSTALL") != "1":
        r = run(["bash", str(CONTAINER_DIR / "ensure-podman.sh")], check=False, timeout=900)
        podman = shutil.which(podman_cmd)
        if podman is None:
            _ENV["skip"] = f"podman is not installed and container/ensure-podman.sh failed: {r.stderr[-500:]}"
            return
    if podman is None:
        _ENV["skip"] = "podman is not installed (container/ensure-podman.sh installs it)"
        return
    info = run([podman, "info", "--format", "json"], check=False, timeout=120)
    if info.returncode != 0:
        _ENV["skip"] = f"podman cannot run here: `podman info` failed: {info.stderr.strip()[-500:]}"
        return
    rootful = not json.loads(info.stdout).get("host", {}).get("security", {}).get("rootless", False)
    binary = berth_binary()
    cmd = ["bash", str(CONTAINER_DIR / "build-image.sh"), "--tag", IMAGE]
    if binary:
        cmd += ["--binary", binary]
    b = run(cmd, check=False, timeout=1800)
    if b.returncode != 0:
        # A build failure is a real failure, not a reason to skip.
        _ENV["error"] = f"container/build-image.sh failed ({b.returncode}):\n{b.stderr[-3000:]}"
        return
    args, errors = _probe_run_args(podman, IMAGE)
    if args is None:
        _ENV["skip"] = "podman cannot run a container on this host:\n  " + "\n  ".join(errors)
        return
    _ENV["env"] = PodmanEnv(podman, args, IMAGE, b.stderr, rootful)


@pytest.fixture(scope="session")
def podman_env():
    _setup_podman()
    if "skip" in _ENV:
        pytest.skip(_ENV["skip"])
    if "error" in _ENV:
        pytest.fail(_ENV["error"])
    return _ENV["env"]


@pytest.fixture
def cleanup(podman_env):
    """Registers teardown actions: cleanup.container(name), .network(name), .volume(name),
    .netns(name), .proc(popen), .call(fn)."""
    c = Cleanup(podman_env)
    yield c
    c.run()


class Cleanup:
    def __init__(self, env):
        self.env = env
        self.actions = []

    def call(self, fn):
        self.actions.append(fn)

    def container(self, name):
        self.call(lambda: self.env.p("rm", "-f", "-t", "2", name, check=False))

    def network(self, name):
        self.call(lambda: self.env.p("network", "rm", "-f", name, check=False))

    def volume(self, name):
        self.call(lambda: self.env.p("volume", "rm", "-f", name, check=False))

    def netns(self, name):
        self.call(lambda: run(["ip", "netns", "del", name], check=False))

    def proc(self, p):
        def stop():
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                    p.wait(10)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    try:
                        os.killpg(p.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    p.wait(5)
        self.call(stop)

    def run(self):
        # Processes first, then containers, then networks/volumes/namespaces.
        for fn in reversed(self.actions):
            try:
                fn()
            except Exception as e:  # noqa: BLE001 - teardown must go on
                print(f"cleanup: {e}", file=sys.stderr)


class Launched:
    """A launcher (systemd-socket-activate / sockact.py) running `podman run` attached."""

    def __init__(self, popen, out_path, name):
        self.p = popen
        self.out_path = out_path
        self.name = name

    def output(self):
        try:
            return Path(self.out_path).read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait(self, timeout=30):
        return self.p.wait(timeout)


def launch(argv, name, cleanup, env=None):
    """Starts the converter's argv (launcher + podman run) in its own session, output to a file."""
    tmp = tempfile.mkdtemp(prefix="berth-ct-")
    cleanup.call(lambda: shutil.rmtree(tmp, ignore_errors=True))
    out = os.path.join(tmp, "launcher.log")
    e = dict(os.environ)
    for k in ("LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "NOTIFY_SOCKET"):
        e.pop(k, None)
    e.update(env or {})
    f = open(out, "wb")
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT, env=e,
                         start_new_session=True)
    f.close()
    cleanup.container(name)
    cleanup.proc(p)
    return Launched(p, out, name)


def wait_port(port, host="127.0.0.1", timeout=10):
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection((host, port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listens on {host}:{port}")


def wait_running(env, name, launched=None, timeout=30):
    end = time.time() + timeout
    while time.time() < end:
        d = env.inspect(name)
        if d and d["State"]["Running"]:
            return d
        if launched is not None and launched.p.poll() is not None:
            raise AssertionError(f"launcher exited {launched.p.returncode}:\n{launched.output()}")
        time.sleep(0.1)
    raise AssertionError(f"container {name} is not running after {timeout}s:\n"
                         + (launched.output() if launched else ""))


def wait_log(env, name, pred, timeout=10):
    end = time.time() + timeout
    while time.time() < end:
        for e in env.log_entries(name):
            if pred(e):
                return e
        time.sleep(0.1)
    raise AssertionError(f"log line not found in `podman logs {name}`:\n{env.logs(name)}")


def curl(url, *args, timeout=15):
    r = run(["curl", "-sS", "--max-time", str(timeout), *args, url], check=False, timeout=timeout + 5)
    return r


class Recorder:
    """sd_notify_recorder.py on a socket any container UID can send to."""

    def __init__(self, directory, cleanup):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o777)
        self.sock = self.dir / "notify.sock"
        self.out = self.dir / "notify.jsonl"
        ready = self.dir / "ready"
        self.p = subprocess.Popen([sys.executable, str(RECORDER), str(self.sock), "--output", str(self.out),
                                   "--timeout", "300", "--ready-file", str(ready)], start_new_session=True)
        cleanup.proc(self.p)
        end = time.time() + 10
        while not ready.exists():
            if time.time() > end:
                raise AssertionError("sd_notify_recorder did not start")
            time.sleep(0.02)
        os.chmod(self.sock, 0o666)

    def messages(self):
        try:
            return [json.loads(l) for l in self.out.read_text().splitlines() if l.strip()]
        except FileNotFoundError:
            return []

    def wait_for(self, field, value="1", timeout=15):
        end = time.time() + timeout
        while time.time() < end:
            for m in self.messages():
                if m["fields"].get(field) == value:
                    return m
            time.sleep(0.05)
        raise AssertionError(f"no {field}={value} in {self.messages()}")


def netns(cleanup):
    """A private network namespace (loopback up) in which `nsenter --net=…` runs podman, so the
    bridge networks and their 10.89.x traffic never leave it. Root only."""
    if os.geteuid() != 0 or not shutil.which("ip") or not shutil.which("nsenter"):
        pytest.skip("needs root, ip and nsenter for a private network namespace")
    name = unique("ns")
    run(["ip", "netns", "add", name])
    cleanup.netns(name)
    run(["ip", "-n", name, "link", "set", "lo", "up"])
    return name, ["nsenter", f"--net=/run/netns/{name}"]


def copy_example(n, tmp, **patches):
    """Copies container/examples/exampleN to tmp/exampleN. patches: {filename: [(old, new), ...]}
    to keep names unique per test (network/volume names are global to Podman)."""
    dst = Path(tmp) / f"example{n}"
    shutil.copytree(EXAMPLES / f"example{n}", dst)
    for fname, subs in patches.items():
        p = dst / fname
        t = p.read_text()
        for old, new in subs:
            assert old in t, f"{old!r} not in {fname}"
            t = t.replace(old, new)
        p.write_text(t)
    return dst


def berth_supports(caddyfile_text, tmp):
    """Runs `berth validate` (in the image) on a Caddyfile; returns (ok, message)."""
    binary = berth_binary()
    p = Path(tmp) / "validate" / "Caddyfile"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(caddyfile_text)
    if binary:
        r = run([binary, "validate", "--config", str(p)], check=False, cwd=str(p.parent))
        return r.returncode == 0, (r.stdout + r.stderr).strip()
    env = _ENV.get("env")
    r = run(env.cmd("run", "--rm", "--network=none", *env.run_args, "-v", f"{p.parent}:/etc/caddy:Z", env.image,
                    "/usr/bin/caddy", "validate", "--config", "/etc/caddy/Caddyfile"), check=False)
    return r.returncode == 0, (r.stdout + r.stderr).strip()


def berth_has_subcommand(env, sub):
    r = run(env.cmd("run", "--rm", "--network=none", *env.run_args, env.image, "/usr/bin/caddy", sub, "--help"),
            check=False)
    return re.search(rf"(?i)usage:\s+\S+\s+{sub}\b", r.stdout + r.stderr) is not None
