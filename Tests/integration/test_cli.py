"""The caddy-compatible CLI: version, validate, adapt; errors name FILE:LINE."""
import json

from conftest import run_cli, seed_caddyfile, write_caddyfile


def test_version():
    r = run_cli(["version"])
    assert r.returncode == 0 and r.stdout.startswith("v")


def test_validate_seed_example1_ok():
    r = run_cli(["validate", "--config", str(seed_caddyfile(1))])
    assert r.returncode == 0, r.stderr
    assert "Valid configuration" in r.stdout


def test_validate_unknown_directive_names_file_and_line(tmp_path):
    cf = write_caddyfile(tmp_path, "http:// {\n\trespond ok\n\tnot_a_directive x\n}\n")
    r = run_cli(["validate", "--config", str(cf)])
    assert r.returncode == 1
    assert "unrecognized directive: not_a_directive" in r.stderr
    assert f"{cf}:3" in r.stderr, r.stderr


def test_validate_unknown_global_option(tmp_path):
    cf = write_caddyfile(tmp_path, "{\n\tfrobnicate\n}\nhttp:// {\n\trespond ok\n}\n")
    r = run_cli(["validate", "--config", str(cf)])
    assert r.returncode == 1 and "unrecognized global option: frobnicate" in r.stderr and ":2" in r.stderr


def test_adapt_example1_json():
    r = run_cli(["adapt", "--config", str(seed_caddyfile(1))])
    assert r.returncode == 0, r.stderr
    cfg = json.loads(r.stdout)
    assert cfg["admin"]["listen"] == "unix//run/admin.sock"
    srv = cfg["apps"]["http"]["servers"]["srv0"]
    assert srv["listen"] == ["fd/3"]
    assert srv["listen_protocols"] == [["h1"]]
    route = srv["routes"][0]
    assert route["match"] == [{"host": ["localhost"]}]
    assert route["terminal"] is True
    handler = route["handle"][0]["routes"][0]["handle"][0]
    assert handler == {"body": "Hello world\n", "handler": "static_response"}


def _handlers(stdout):
    cfg = json.loads(stdout)
    routes = cfg["apps"]["http"]["servers"]["srv0"]["routes"][0]["handle"][0]["routes"]
    return ["body" if "body" in r["handle"][0] else "location" for r in routes]


def test_order_global_option_changes_directive_order(tmp_path):
    site = "http:// {\n\tredir /x /y\n\trespond /x \"responded\"\n}\n"
    cf = write_caddyfile(tmp_path, "{\n\tadmin off\n}\n" + site)
    r = run_cli(["adapt", "--config", str(cf)])
    assert r.returncode == 0, r.stderr
    assert _handlers(r.stdout) == ["location", "body"]  # Caddy's default: redir before respond
    cf = write_caddyfile(tmp_path, "{\n\tadmin off\n\torder respond before redir\n}\n" + site)
    r = run_cli(["adapt", "--config", str(cf)])
    assert r.returncode == 0, r.stderr
    assert _handlers(r.stdout) == ["body", "location"]


def test_fmt_matches_caddy_rules(tmp_path):
    cf = write_caddyfile(tmp_path, "http:// {\nrespond \"x\"\n}\n")
    r = run_cli(["fmt", str(cf)])
    assert r.returncode == 1 and r.stdout == "http:// {\n\trespond \"x\"\n}\n"
    assert "Caddyfile input is not formatted" in r.stderr and f"{cf}:2" in r.stderr
    r = run_cli(["fmt", "--overwrite", str(cf)])
    assert r.returncode == 0 and cf.read_text() == "http:// {\n\trespond \"x\"\n}\n"
    r = run_cli(["fmt", str(cf)])
    assert r.returncode == 0
