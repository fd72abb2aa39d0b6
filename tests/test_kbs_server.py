"""ocirt-kbs serve over real HTTP on loopback: full flows and every refusal.

The server trusts a test ARK/ASK generated here (``--amd-roots``, standing in
for AMD's) and finds the test VCEK in ``--vcek-cache``; reports are signed
by that VCEK in the real 1184-byte layout.  A second chain the server does
not trust provides the wrong-chain case.
"""
import asyncio
import concurrent.futures
import json
import os

import pytest

from ocirt.kbs import sample
from tests.test_kbs_helpers import (ADMIN_TOKEN, Guest, KbsServer, make_chain, self_signed_tls, vcek_cache_for,
                                    pg_dsn)  # noqa: F401 (pg_dsn is a fixture)


@pytest.fixture(scope="module")
def chains(tmp_path_factory):
    base = tmp_path_factory.mktemp("chains")
    return {"trusted": make_chain(str(base / "trusted")), "other": make_chain(str(base / "other"), rsa_bits=2048)}


@pytest.fixture(scope="module")
def tee_key():
    from cryptography.hazmat.primitives.asymmetric import rsa
    return rsa.generate_private_key(65537, 2048)


@pytest.fixture(scope="module")
def server(tmp_path_factory, chains):
    work = tmp_path_factory.mktemp("kbs")
    cache = vcek_cache_for(chains["trusted"], str(work / "vcek-cache"))
    # reports are verified in a verifier process (the default on a machine with a spare CPU;
    # named here so the tests take that path on any machine); --verifiers 0 is tested below
    srv = KbsServer(str(work), "--amd-roots", chains["trusted"], "--vcek-cache", cache,
                    "--allow-sample-evidence", chains["trusted"], "--verifiers", "1")
    yield srv
    srv.stop()


_counter = iter(range(10**6))


@pytest.fixture
def workload(server):
    wid = f"wl-{next(_counter)}"
    status, body, _ = server.register(wid)
    assert status == 200, body
    return wid


@pytest.fixture
def guest(server, tee_key, chains, workload):
    return Guest(server, tee_key, chains["trusted"], workload)


def assert_refused(status_body, status, *words):
    got_status, body = status_body
    text = body.decode()
    assert got_status == status, (got_status, text)
    for word in words:
        assert word in text, (word, text)
    return text


# --- full flows --------------------------------------------------------------

def test_full_flow_in_the_libkrun_client_shape(server, guest):
    status, body = guest.auth()
    assert status == 200
    challenge = json.loads(body)
    # reference-kbs: the nonce is the session id, handed back as cookie session_id
    assert challenge == {"nonce": guest.cookie, "extra-params": ""}
    assert len(guest.nonce) == 32 and int(guest.nonce, 16) >= 0
    # cert_chain "[]" and uppercase hex, as libkrun sends: the server finds the VCEK in its cache
    assert guest.attest() == (200, b"")
    status, body = guest.key()
    assert status == 200
    hexstr = json.loads(body)
    assert isinstance(hexstr, str) and len(hexstr) == 512 and hexstr == hexstr.lower()
    assert guest.decrypt(body) == b"correct horse battery staple"
    events = [(e["event"], e.get("workload_id")) for e in server.audit()]
    assert ("release", guest.wid) in events
    assert "correct horse" not in open(server.audit_path).read()


def test_vcek_carried_in_the_evidence(server, tee_key, chains, workload):
    g = Guest(server, tee_key, chains["trusted"], workload, send_vcek=True)
    assert g.flow() == b"correct horse battery staple"


def test_sample_evidence_when_enabled(server, tee_key, chains, workload):
    g = Guest(server, tee_key, chains["trusted"], workload, tee="sample", gen="sample", send_vcek=True)
    assert g.flow() == b"correct horse battery staple"


def test_debug_policy_accepted_when_registration_allows_it(server, tee_key, chains):
    assert server.register("wl-debug-ok", allow_debug=True)[0] == 200
    g = Guest(server, tee_key, chains["trusted"], "wl-debug-ok")
    assert g.flow(policy=sample.DEFAULT_POLICY | sample.POLICY_DEBUG) == b"correct horse battery staple"


def test_reregistration_replaces_the_passphrase(server, guest):
    guest.auth()
    assert guest.attest() == (200, b"")
    assert server.register(guest.wid, passphrase="second")[0] == 200
    # the session attested against the old registration is gone with it
    assert_refused(guest.key(), 401, "unknown session")
    assert guest.flow() == b"second"


def test_buildah_mkcw_registration_with_open_registration(tmp_path, tee_key, chains):
    """The exact request buildah 1.39.3 sends (confidential-workloads.md §9): no credential, and
    with --ignore-attestation-errors no measurement.  Accepted, but such a workload never attests."""
    srv = KbsServer(str(tmp_path), "--amd-roots", chains["trusted"], "--open-registration")
    try:
        body = (b'{"workload_id":"test","launch_measurement":"","passphrase":"fixed","tee_config":'
                b'"{\\"flags\\":{\\"bits\\":15},\\"minfw\\":{\\"major\\":0,\\"minor\\":0}}"}')
        assert len(body) == 144
        status, data, _ = srv.request("POST", "/register_workload", body,
                                      headers={"Content-Type": "application/json", "User-Agent": "Go-http-client/1.1"})
        assert (status, data) == (200, b"")
        g = Guest(srv, tee_key, chains["trusted"], "test")
        assert g.auth()[0] == 200
        assert_refused(g.attest(), 403, "without a launch measurement")
        assert "--open-registration" in srv.proc.stderr.readline()
    finally:
        srv.stop()


def test_concurrent_flows(server, tee_key, chains, workload):
    def one(_):
        return Guest(server, tee_key, chains["trusted"], workload).flow()
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        results = list(pool.map(one, range(48)))
    assert results == [b"correct horse battery staple"] * 48


# --- refusals: each a 4xx with a clear reason ----------------------------------

def test_refuses_wrong_measurement(guest):
    guest.auth()
    assert_refused(guest.attest(guest.evidence(measurement=bytes(48))), 403, "measurement")


@pytest.mark.parametrize("offset", [0x004, 0x090, 0x29F, 0x2A0 + 5])
def test_refuses_bad_signature(guest, offset):
    """One flipped bit anywhere in the signed part or in R: the signature no longer verifies."""
    guest.auth()
    report = bytearray(guest.evidence())
    report[offset] ^= 1
    assert_refused(guest.attest(bytes(report)), 403, "attestation refused", "report_signature")


def test_bad_signature_alone_is_named(guest):
    guest.auth()
    report = bytearray(guest.evidence())
    report[0x2E8 + 3] ^= 0x40  # S only: everything else is right
    assert_refused(guest.attest(bytes(report)), 403, "report_signature")


def test_refuses_wrong_chain(server, tee_key, chains, workload):
    g = Guest(server, tee_key, chains["other"], workload, send_vcek=True)
    g.auth()
    assert_refused(g.attest(), 403, "vcek_signed_by_ask")


def test_refuses_report_data_mismatch(guest):
    guest.auth()
    assert_refused(guest.attest(guest.evidence(nonce="0" * 32)), 403, "report_data")


def test_refuses_reused_nonce(guest):
    guest.auth()
    assert guest.attest() == (200, b"")
    assert_refused(guest.attest(), 401, "nonce already used")


def test_failed_attestation_burns_the_nonce(guest):
    guest.auth()
    assert_refused(guest.attest(guest.evidence(measurement=bytes(48))), 403)
    assert_refused(guest.attest(), 401, "nonce already used")


def test_refuses_missing_session(guest):
    guest.auth()
    assert_refused(guest.attest(cookie=None), 401, "no session_id cookie")
    assert_refused(guest.key(cookie=None), 401, "no session_id cookie")


def test_refuses_unknown_session(guest):
    guest.auth()
    assert_refused(guest.attest(cookie="f" * 32), 401, "unknown session")


def test_refuses_expired_session(tmp_path, tee_key, chains):
    import time
    cache = vcek_cache_for(chains["trusted"], str(tmp_path / "cache"))
    srv = KbsServer(str(tmp_path), "--amd-roots", chains["trusted"], "--vcek-cache", cache, "--session-ttl", "1.5")
    try:
        assert srv.register("wl-exp")[0] == 200
        g = Guest(srv, tee_key, chains["trusted"], "wl-exp")
        g.auth()
        time.sleep(1.7)
        assert_refused(g.attest(), 401, "session expired")
        # an attested session expires too
        g.auth()
        assert g.attest() == (200, b"")
        time.sleep(1.7)
        assert_refused(g.key(), 401, "session expired")
        assert any(e["event"] == "refuse" and "expired" in e["reason"] for e in srv.audit())
    finally:
        srv.stop()


def test_refuses_unregistered_workload(server, tee_key, chains):
    g = Guest(server, tee_key, chains["trusted"], "never-registered")
    assert_refused(g.auth(), 404, "not registered")


def test_refuses_debug_policy(guest):
    guest.auth()
    assert_refused(guest.attest(guest.evidence(policy=sample.DEFAULT_POLICY | sample.POLICY_DEBUG)), 403,
                   "DEBUG", "allow_debug")


def test_refuses_tcb_below_registered_minimum(server, tee_key, chains):
    assert server.register("wl-tcb", min_tcb={"snp": 9})[0] == 200
    g = Guest(server, tee_key, chains["trusted"], "wl-tcb")
    g.auth()
    assert_refused(g.attest(), 403, "snp=8", "minimum 9")


@pytest.mark.parametrize("path,body,words", [
    ("/auth", b"{not json", ["auth", "not valid JSON"]),
    ("/auth", b'{"tee":"snp","version":"0.0.0","extra-params":"{}"}', ["workload_id"]),
    ("/auth", b'{"tee":"tdx","version":"0.0.0","extra-params":"{\\"workload_id\\":\\"x\\"}"}', ["unknown tee"]),
    ("/attest", b"[1,2", ["attest", "not valid JSON"]),
    ("/attest", b'{"tee-pubkey":{"alg":"RSA","k-mod":"AQAB","k-exp":"AQAB"},"tee-evidence":"{}"}', ["RSA key"]),
])
def test_refuses_malformed_json(guest, path, body, words):
    guest.auth()
    status, data, _ = guest.server.request("POST", path, body, cookie=guest.cookie)
    assert_refused((status, data), 400, *words)


def test_refuses_malformed_evidence(guest):
    guest.auth()
    body = {"tee-pubkey": {"alg": "RSA", "k-mod": guest.k_mod, "k-exp": guest.k_exp},
            "tee-evidence": json.dumps({"gen": "milan", "report": "AB" * 100, "cert_chain": "[]"})}
    assert_refused(guest.attest(body=json.dumps(body).encode()), 400, "1184")


def test_refuses_oversized_body(server, guest):
    status, data, _ = server.request("POST", "/auth", b"{" + b" " * (70 * 1024) + b"}")
    assert_refused((status, data), 413, "larger than")
    status, data, _ = server.request("POST", "/register_workload", b"x" * (200 * 1024),
                                     headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert status == 413


def test_key_needs_attestation_first(guest):
    guest.auth()
    assert_refused(guest.key(), 401, "not attested")


def test_key_released_once_and_only_for_the_attested_workload(server, guest):
    assert server.register("wl-other-secret", passphrase="not yours")[0] == 200
    guest.auth()
    assert guest.attest() == (200, b"")
    assert_refused(guest.key("wl-other-secret"), 403, "not 'wl-other-secret'")
    assert guest.key()[0] == 200
    assert_refused(guest.key(), 401, "already released")


def test_sample_evidence_refused_unless_enabled(tmp_path, tee_key, chains):
    srv = KbsServer(str(tmp_path), "--amd-roots", chains["trusted"])
    try:
        assert srv.register("wl-s")[0] == 200
        g = Guest(srv, tee_key, chains["trusted"], "wl-s", tee="sample", gen="sample", send_vcek=True)
        assert_refused(g.auth(), 403, "sample", "--allow-sample-evidence")
        # nor smuggled in under tee "snp"
        g.tee = "snp"
        g.auth()
        assert_refused(g.attest(), 403, "sample", "not accepted")
    finally:
        srv.stop()


def test_sev_pre_attestation_is_refused_clearly(server, workload):
    body = b'{"extra-params":"{\\"workload_id\\":\\"%s\\"}","tee":"sev","version":"0.0.0"}' % workload.encode()
    status, data, _ = server.request("POST", "/auth", body)
    assert_refused((status, data), 400, "SEV-SNP")


def test_root_is_unauthorized(server):
    assert server.request("GET", "/")[0] == 401


# --- administration -------------------------------------------------------------

def test_registration_needs_the_admin_token(server):
    status, body, _ = server.register("wl-noauth", token=None)
    assert_refused((status, body), 401, "admin credential required")
    status, body, _ = server.register("wl-badauth", token="wrong")
    assert_refused((status, body), 403, "rejected")
    status, body, _ = server.request("DELETE", "/workload/wl-noauth")
    assert status == 401
    assert server.request("GET", "/workloads")[0] == 401


def test_registration_validates_fields(server):
    status, body, _ = server.register("wl-badm", measurement=b"\x01" * 10)
    assert_refused((status, body), 400, "launch_measurement")
    status, body, _ = server.register("bad/id")
    assert_refused((status, body), 400, "workload_id")
    status, body, _ = server.register("wl-badtcb", min_tcb={"nonsense": 1})
    assert_refused((status, body), 400, "min_tcb")


def test_delete_workload(server, tee_key, chains):
    assert server.register("wl-del")[0] == 200
    g = Guest(server, tee_key, chains["trusted"], "wl-del")
    g.auth()
    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    status, data, _ = server.request("GET", "/workloads", headers=auth)
    assert status == 200 and "wl-del" in json.loads(data)
    assert server.request("DELETE", "/workload/wl-del", headers=auth)[0] == 200
    assert server.request("DELETE", "/workload/wl-del", headers=auth)[0] == 404
    # the open session went with it
    assert_refused(g.attest(), 401, "unknown session")
    assert_refused(g.auth(), 404, "not registered")


def test_passphrases_are_sealed_at_rest(server, workload):
    server.register("wl-at-rest", passphrase="PLAINTEXT-MARKER-4242")
    with open(server.db, "rb") as f:
        data = f.read()
    for name in ("kbs.db-wal",):
        path = os.path.join(os.path.dirname(server.db), name)
        if os.path.exists(path):
            data += open(path, "rb").read()
    assert b"wl-at-rest" in data          # the row is there...
    assert b"PLAINTEXT-MARKER-4242" not in data  # ...but not the passphrase
    assert oct(os.stat(server.db + ".key").st_mode & 0o777) == "0o600"


def test_tls(tmp_path, tee_key, chains):
    cert, key = self_signed_tls(str(tmp_path))
    cache = vcek_cache_for(chains["trusted"], str(tmp_path / "cache"))
    srv = KbsServer(str(tmp_path), "--amd-roots", chains["trusted"], "--vcek-cache", cache, tls=(cert, key))
    try:
        assert srv.url.startswith("https://")
        assert srv.register("wl-tls")[0] == 200
        assert Guest(srv, tee_key, chains["trusted"], "wl-tls").flow() == b"correct horse battery staple"
    finally:
        srv.stop()


def test_two_workers_share_sessions(tmp_path, tee_key, chains):
    cache = vcek_cache_for(chains["trusted"], str(tmp_path / "cache"))
    # and each worker with a verifier process of its own
    srv = KbsServer(str(tmp_path), "--amd-roots", chains["trusted"], "--vcek-cache", cache, "--workers", "2",
                    "--verifiers", "1")
    try:
        assert srv.register("wl-w")[0] == 200
        # each request is a new connection, so auth/attest/key land on either worker
        for _ in range(6):
            assert Guest(srv, tee_key, chains["trusted"], "wl-w").flow() == b"correct horse battery staple"
    finally:
        srv.stop()
    assert srv.proc.returncode == 0


def test_verification_in_the_serving_process(tmp_path, tee_key, chains):
    """--verifiers 0: the worker verifies reports itself; flows and refusals are the same."""
    cache = vcek_cache_for(chains["trusted"], str(tmp_path / "cache"))
    srv = KbsServer(str(tmp_path), "--amd-roots", chains["trusted"], "--vcek-cache", cache, "--verifiers", "0")
    try:
        assert _children(srv.proc.pid) == []
        assert srv.register("wl-inline")[0] == 200
        g = Guest(srv, tee_key, chains["trusted"], "wl-inline")
        assert g.flow() == b"correct horse battery staple"
        g.auth()
        assert_refused(g.attest(g.evidence(measurement=bytes(48))), 403, "measurement")
        g.auth()
        bad = bytearray(g.evidence())
        bad[0x2E8] ^= 1
        assert_refused(g.attest(bytes(bad)), 403, "report_signature")
    finally:
        srv.stop()


def _children(pid):
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(c) for c in f.read().split()]


def test_a_dead_verifier_process_is_replaced_by_the_server_itself(tmp_path, tee_key, chains):
    """A verifier process that dies costs no flow: the worker verifies in its place, says so in
    the audit log, and still refuses what it must."""
    import signal
    import time
    cache = vcek_cache_for(chains["trusted"], str(tmp_path / "cache"))
    srv = KbsServer(str(tmp_path), "--amd-roots", chains["trusted"], "--vcek-cache", cache, "--verifiers", "2")
    try:
        assert srv.register("wl-v")[0] == 200
        assert Guest(srv, tee_key, chains["trusted"], "wl-v").flow() == b"correct horse battery staple"
        helpers = _children(srv.proc.pid)
        assert len(helpers) == 2
        for pid in helpers:
            os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while ((sum(e["event"] == "error" for e in srv.audit()) < 2 or _children(srv.proc.pid))
               and time.monotonic() < deadline):
            time.sleep(0.05)
        errors = [e["reason"] for e in srv.audit() if e["event"] == "error"]
        assert len(errors) == 2 and all("verifier process" in r for r in errors), errors
        assert _children(srv.proc.pid) == []  # reaped
        assert Guest(srv, tee_key, chains["trusted"], "wl-v").flow() == b"correct horse battery staple"
        g = Guest(srv, tee_key, chains["trusted"], "wl-v")
        g.auth()
        assert_refused(g.attest(g.evidence(measurement=bytes(48))), 403, "measurement")
    finally:
        srv.stop()
    assert srv.proc.returncode == 0


def test_verifier_processes_end_with_the_server(tmp_path, chains):
    srv = KbsServer(str(tmp_path), "--amd-roots", chains["trusted"], "--verifiers", "2")
    try:
        assert srv.request("GET", "/")[0] == 401  # serving: the verifiers were forked before the loop started
        helpers = _children(srv.proc.pid)
        assert len(helpers) == 2
    finally:
        srv.stop()
    assert srv.proc.returncode == 0
    for pid in helpers:
        assert not os.path.exists(f"/proc/{pid}")


def test_one_worker_owns_its_sqlite_database(tmp_path, tee_key, chains):
    """--workers 1 keeps sessions in memory, so a second server on the same file is refused
    (it would not see those sessions, nor tell the first about re-registrations)."""
    srv = KbsServer(str(tmp_path / "a"), "--amd-roots", chains["trusted"])
    try:
        with pytest.raises(AssertionError, match="in use by another ocirt-kbs server"):
            KbsServer(str(tmp_path / "b"), "--amd-roots", chains["trusted"], db=srv.db)
        assert srv.alive() and srv.register("wl-owned")[0] == 200
    finally:
        srv.stop()


def test_replicas_share_a_postgresql_database(tmp_path, tee_key, chains, pg_dsn):
    """auth on replica A, attest on B, key from A: sessions and nonces live in the shared database."""
    cache = vcek_cache_for(chains["trusted"], str(tmp_path / "cache"))
    key_file = str(tmp_path / "shared.key")
    common = ["--amd-roots", chains["trusted"], "--vcek-cache", cache, "--secret-key-file", key_file]
    a = KbsServer(str(tmp_path / "a"), *common, db=pg_dsn)
    b = KbsServer(str(tmp_path / "b"), *common, db=pg_dsn)
    try:
        assert a.register("wl-replicated", passphrase="shared secret")[0] == 200
        g = Guest(a, tee_key, chains["trusted"], "wl-replicated")
        assert g.auth()[0] == 200
        g.server = b
        assert g.attest() == (200, b"")
        assert_refused(g.attest(), 401, "nonce already used")
        g.server = a
        status, body = g.key()
        assert status == 200 and g.decrypt(body) == b"shared secret"
        g.server = b
        assert_refused(g.key(), 401, "already released")
    finally:
        a.stop()
        b.stop()


def test_vcek_fetched_from_a_kds_and_cached(tmp_path, tee_key, chains):
    """No VCEK in the evidence or the cache: the server asks the configured KDS (a loopback stand-in)."""
    import http.server
    import threading
    with open(os.path.join(chains["trusted"], "vcek.der"), "rb") as f:
        vcek = f.read()
    asked = []

    class KDS(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            asked.append(self.path)
            ok = self.path.startswith("/vcek/v1/Milan/" + sample.SAMPLE_CHIP_ID.hex() + "?blSPL=03&teeSPL=00")
            self.send_response(200 if ok else 404)
            self.send_header("Content-Length", str(len(vcek) if ok else 0))
            self.end_headers()
            if ok:
                self.wfile.write(vcek)

        def log_message(self, *args):
            pass
    kds = http.server.ThreadingHTTPServer(("127.0.0.1", 0), KDS)
    threading.Thread(target=kds.serve_forever, daemon=True).start()
    cache = tmp_path / "cache"
    srv = KbsServer(str(tmp_path / "kbs"), "--amd-roots", chains["trusted"], "--vcek-cache", str(cache),
                    "--kds-url", f"http://127.0.0.1:{kds.server_address[1]}")
    try:
        assert srv.register("wl-kds")[0] == 200
        for _ in range(2):
            assert Guest(srv, tee_key, chains["trusted"], "wl-kds").flow() == b"correct horse battery staple"
        assert len(asked) == 1 and os.listdir(cache)  # fetched once, then served from the cache
        kds.shutdown()
        kds.server_close()
        # a KDS that is gone: a clear refusal for an uncached chip, and the server keeps serving
        g = Guest(srv, tee_key, chains["trusted"], "wl-kds")
        g.auth()
        assert_refused(g.attest(g.evidence(tcb={"snp": 9})), 403, "attestation refused", "KDS")
        assert Guest(srv, tee_key, chains["trusted"], "wl-kds").flow() == b"correct horse battery staple"
    finally:
        srv.stop()


# --- the serving process in-process ----------------------------------------------

def test_serve_takes_one_verifier_when_a_cpu_is_spare(monkeypatch):
    from ocirt.kbs import server

    def config(**kw):
        return server.ServerConfig(db=":memory:", secret_key_file="unused", **kw)
    monkeypatch.setattr(server, "_usable_cpus", lambda: 2)
    assert config().verifiers == 1 and config(workers=2).verifiers == 0
    monkeypatch.setattr(server, "_usable_cpus", lambda: 1)
    assert config().verifiers == 0
    assert config(verifiers=3).verifiers == 3 and config(verifiers=0).verifiers == 0


def test_purge_runs_every_interval_and_audits_one_line_per_outage(tmp_path, monkeypatch):
    """Small purges often (a big one holds the event loop), and a failing database is audited
    once per outage, not once per attempt."""
    import json
    from ocirt.kbs import server

    class FlakyStorage:
        def __init__(self):
            self.calls = 0

        def purge_expired(self, before):
            self.calls += 1
            if 3 <= self.calls <= 6 or self.calls == 9:
                raise OSError(f"database busy ({self.calls})")
            return 0

    audit = tmp_path / "audit.log"
    config = server.ServerConfig(db=":memory:", secret_key_file=str(tmp_path / "key"), audit_log=str(audit))
    db = FlakyStorage()
    kbs = server.KBS(config, storage=db)
    monkeypatch.setattr(server, "PURGE_INTERVAL", 0.01)

    async def go():
        task = asyncio.ensure_future(kbs._purge_loop())
        while db.calls < 12:
            await asyncio.sleep(0.01)
        task.cancel()
    asyncio.run(go())
    lines = [json.loads(line) for line in audit.read_text().splitlines()]
    assert [e["reason"] for e in lines] == ["purging sessions: database busy (3)", "purging sessions: database busy (9)"]


# --- and after all of that ----------------------------------------------------------

def test_zz_server_still_serving_after_every_refusal(server, tee_key, chains, workload):
    """Runs last in this module (after every refusal above), and provokes one of each itself
    so it also stands alone."""
    g = Guest(server, tee_key, chains["trusted"], workload)
    other = Guest(server, tee_key, chains["other"], workload, send_vcek=True)
    before = len(server.audit())
    provoked = []
    g.auth()
    provoked.append(g.attest(g.evidence(measurement=bytes(48))))                      # wrong measurement
    provoked.append(g.attest())                                                        # reused nonce
    g.auth()
    bad = bytearray(g.evidence())
    bad[0x2E8] ^= 1
    provoked.append(g.attest(bytes(bad)))                                              # bad signature
    other.auth()
    provoked.append(other.attest())                                                    # wrong chain
    g.auth()
    provoked.append(g.attest(g.evidence(nonce="1" * 32)))                              # report_data
    provoked.append(g.attest(cookie=None))                                             # missing session
    provoked.append(g.attest(cookie="0" * 32))                                         # unknown session
    provoked.append(Guest(server, tee_key, chains["trusted"], "nobody").auth())        # unregistered
    g.auth()
    provoked.append(g.attest(g.evidence(policy=sample.DEFAULT_POLICY | sample.POLICY_DEBUG)))  # debug
    provoked.append(server.request("POST", "/auth", b"{oops")[:2])                     # malformed JSON
    provoked.append(server.request("POST", "/auth", b"x" * (100 * 1024))[:2])          # oversized
    statuses = [status for status, _ in provoked]
    assert all(400 <= st < 500 for st in statuses), provoked
    assert all(body.strip() for _, body in provoked), provoked
    assert server.alive()
    assert g.flow() == b"correct horse battery staple"
    audit = server.audit()
    refusals = [e for e in audit[before:] if e["event"] == "refuse"]
    assert len(refusals) == len(provoked)
    assert all(e.get("reason") and 400 <= e["status"] < 500 for e in refusals), refusals
    assert not any(e["event"] == "error" for e in audit)
