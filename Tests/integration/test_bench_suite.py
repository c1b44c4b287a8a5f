"""`make bench` harness smoke test: Benchmarks/suite.py in a tiny run (1 round of 1 s, one cold
start) over Berth in the socket, pasta and podman-none modes, and Caddy in socket mode for a
ratio. Proves that every mode starts the server the way it claims (socket activation, a pasta
namespace under a non-root user, a --network=none container given the sockets), that load runs
produce numbers with no errors, and that the report, JSON and charts are written.

A mode is skipped only when the suite itself says it cannot run here (pasta or podman missing or
unusable), with the suite's reason; a cell that fails to start fails the test.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SUITE = ROOT / "Benchmarks" / "suite.py"


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    berth = os.environ.get("BERTH", str(ROOT / ".build" / "release" / "berth"))
    if not os.access(berth, os.X_OK):
        pytest.fail(f"no Berth binary at {berth} (make release)")
    if os.geteuid() != 0:
        pytest.skip("the suite needs root (nginx backend as root, pasta user setup, rootful podman)")
    out = tmp_path_factory.mktemp("suite")
    cmd = [sys.executable, str(SUITE), "--berth", berth, "--out", str(out), "--no-readme",
           "--modes", "socket,pasta,podman-none", "--servers", "berth,caddy",
           "--scenarios", "hello-c50,proxy,cold-start,rss", "--rounds", "1", "--duration", "1",
           "--cold-starts", "1"]
    env = dict(os.environ)
    for k in ("LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "NOTIFY_SOCKET"):
        env.pop(k, None)
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    results = out / "suite-latest.json"
    assert results.exists(), f"suite wrote no results (exit {p.returncode}):\n{p.stderr[-4000:]}"
    return p, json.loads(results.read_text()), out


def _cell(res, name, allow_skip=True):
    why = res["na"].get(name)
    if why:
        if allow_skip and not why.startswith("failed to start"):
            pytest.skip(f"{name} cannot run here: {why}")
        pytest.fail(f"{name}: {why}")
    return name


def test_suite_exit_and_report(smoke):
    p, res, out = smoke
    assert not res["errors"] or all(not v for v in res["errors"].values()), res["errors"]
    assert p.returncode == 0, p.stderr[-4000:]
    md = (out / "suite-latest.md").read_text()
    assert "hello, keep-alive, 50 connections" in md and "Cold start and memory" in md
    assert res["facts"]["cpu_model"] and res["facts"]["kernel"] and res["facts"]["versions"]["berth"]
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        pytest.skip("matplotlib not installed: charts not drawn (scripts/install-deps.sh installs it)")
    for png in ("suite-latest-throughput.png", "suite-latest-start-memory.png"):
        data = (out / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000, png


@pytest.mark.parametrize("name", ["berth/socket", "caddy/socket", "berth/pasta", "berth/podman-none"])
def test_cell_measured(smoke, name):
    _, res, _ = smoke
    _cell(res, name)
    for key in ("hello-c50", "proxy"):
        m = res["medians"][key][name]
        assert m["rounds"] == 1 and m["errors"] == 0, (key, m, res["runs"][key][name])
        assert m["rps"] and m["rps"] > 100, (key, m)
        assert m["cpu_us_per_req"] and m["cpu_us_per_req"] > 0, (key, m)
    cold = res["medians"]["cold-start"][name]
    assert cold["n"] == 1 and 0 < cold["ms"] < 30000, cold
    rss = res["rss"][name]
    assert 1024 < rss["idle_kb"] <= rss["peak_kb"], rss


def test_podman_none_ran_in_a_container(smoke):
    _, res, _ = smoke
    _cell(res, "berth/podman-none")
    opts = res["facts"]["podman_run_options"]
    assert any(o.startswith("nofile=") for o in opts), opts
    assert res["facts"]["image_sizes_bytes"]["berth"] > 1_000_000
    # the container's processes were measured, not podman's: its CPU per request is that of a
    # server, and a cold start includes creating the container (slower than exec alone)
    assert res["medians"]["cold-start"]["berth/podman-none"]["ms"] > res["medians"]["cold-start"]["berth/socket"]["ms"]


def test_pasta_forwarding_is_on_the_path(smoke):
    _, res, _ = smoke
    _cell(res, "berth/pasta")
    # pasta's own process shows up next to the server (its memory apart, its CPU included)
    assert res["rss"]["berth/pasta"].get("helper_peak_kb", 0) > 0, res["rss"]["berth/pasta"]
