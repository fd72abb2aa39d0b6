"""Shared helpers for the ocirt-kbs tests (no tests in here).

``KbsServer`` runs the real ``ocirt-kbs serve`` launcher on a loopback port;
``Guest`` is a scriptable libkrun-style client whose every step can be bent
to provoke one refusal at a time.
"""
import base64
import http.client
import json
import os
import shutil
import ssl
import struct
import subprocess
import sys
import tempfile
import time

import pytest

from tests.support import ocirt_bin
from ocirt.kbs import protocol, sample

ADMIN_TOKEN = "test-admin-token-0123456789"
MEASUREMENT = bytes(range(48))


def kbs_bin():
    return os.path.join(os.path.dirname(ocirt_bin()), "ocirt-kbs")


def make_chain(directory, **kw):
    if not os.path.exists(os.path.join(directory, "vcek.der")):
        sample.make_chain(directory, **kw)
    return directory


def vcek_cache_for(chain_dir, cache_dir, product="milan"):
    """Put the chain's VCEK where the server looks up VCEKs by (chip, reported TCB)."""
    from ocirt.kbs import certs
    os.makedirs(cache_dir, exist_ok=True)
    tcb = {"bl": sample.DEFAULT_TCB["bootloader"], "tee": sample.DEFAULT_TCB["tee"],
           "snp": sample.DEFAULT_TCB["snp"], "ucode": sample.DEFAULT_TCB["microcode"]}
    path = certs.vcek_cache_path(cache_dir, product, sample.SAMPLE_CHIP_ID, tcb)
    with open(os.path.join(chain_dir, "vcek.der"), "rb") as src, open(path, "wb") as dst:
        dst.write(src.read())
    return cache_dir


class KbsServer:
    def __init__(self, workdir, *extra, tls=None, env=None, db=None):
        self.workdir = workdir
        os.makedirs(workdir, exist_ok=True)
        token_file = os.path.join(workdir, "admin-token")
        with open(token_file, "w") as f:
            f.write(ADMIN_TOKEN + "\n")
        self.audit_path = os.path.join(workdir, "audit.log")
        self.db = db or os.path.join(workdir, "kbs.db")
        argv = [kbs_bin(), "serve", "--listen", "127.0.0.1:0", "--db", self.db, "--admin-token-file", token_file,
                "--audit-log", self.audit_path, *extra]
        self.tls = tls
        if tls:
            argv += ["--tls-cert", tls[0], "--tls-key", tls[1]]
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env=env)
        line = self.proc.stdout.readline()
        if "listening on" not in line:
            self.proc.kill()
            raise AssertionError(f"server did not start: {line!r} {self.proc.stderr.read()}")
        self.url = line.split()[-1].rsplit("/kbs/v0", 1)[0]
        self.port = int(self.url.rsplit(":", 1)[1])

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        self.proc.stderr.close()

    def audit(self):
        with open(self.audit_path) as f:
            return [json.loads(line) for line in f if line.strip()]

    def connect(self):
        if self.tls:
            ctx = ssl.create_default_context(cafile=self.tls[0])
            return http.client.HTTPSConnection("127.0.0.1", self.port, timeout=30, context=ctx)
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)

    def request(self, method, path, body=None, cookie=None, headers=None):
        """→ (status, body bytes, session cookie from Set-Cookie or None)."""
        conn = self.connect()
        hdrs = dict(headers or {})
        if cookie:
            hdrs["Cookie"] = f"session_id={cookie}"
        if body is not None and "Content-Type" not in hdrs:
            hdrs["Content-Type"] = "application/json"
        try:
            conn.request(method, "/kbs/v0" + path, body=body, headers=hdrs)
            resp = conn.getresponse()
            data = resp.read()
        finally:
            conn.close()
        new_cookie = None
        for h in resp.headers.get_all("Set-Cookie") or ():
            if h.startswith("session_id="):
                new_cookie = h.split(";", 1)[0].split("=", 1)[1]
        return resp.status, data, new_cookie

    def register(self, workload_id, passphrase="correct horse battery staple", measurement=MEASUREMENT,
                 token=ADMIN_TOKEN, **extra):
        body = {"workload_id": workload_id, "launch_measurement": measurement.hex(), "passphrase": passphrase,
                "tee_config": "{\"flags\":{\"bits\":15},\"minfw\":{\"major\":0,\"minor\":0}}", **extra}
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return self.request("POST", "/register_workload", json.dumps(body).encode(), headers=headers)


class Guest:
    """One guest's view of the protocol, with knobs to bend each step."""

    def __init__(self, server, tee_key, chain_dir, workload_id, *, tee="snp", gen="milan", send_vcek=False):
        self.server, self.tee_key, self.chain_dir, self.wid = server, tee_key, chain_dir, workload_id
        self.tee, self.gen, self.send_vcek = tee, gen, send_vcek
        self.vcek_key = sample.load_vcek_key(chain_dir)
        numbers = tee_key.public_key().public_numbers()
        self.k_mod, self.k_exp = protocol.b64_uint(numbers.n), protocol.b64_uint(numbers.e)
        self.cookie = self.nonce = None

    def auth(self):
        status, body, cookie = self.server.request("POST", "/auth", protocol.auth_request(self.wid, self.tee))
        if status == 200:
            self.cookie = cookie
            self.nonce = json.loads(body)["nonce"]
        return status, body

    def evidence(self, *, measurement=MEASUREMENT, nonce=None, policy=sample.DEFAULT_POLICY, tcb=None, mutate=None):
        report_data = protocol.binding_hash(nonce or self.nonce, self.k_mod, self.k_exp)
        report = sample.sign_report(sample.build_report(report_data, measurement, policy=policy, tcb=tcb),
                                    self.vcek_key)
        if mutate:
            report = mutate(report)
        return report

    def attest(self, report=None, body=None, cookie=...):
        if body is None:
            report = report if report is not None else self.evidence()
            chain = "[]"
            if self.send_vcek:
                with open(os.path.join(self.chain_dir, "vcek.der"), "rb") as f:
                    chain = json.dumps([{"cert_type": "vcek", "data": base64.b64encode(f.read()).decode()}])
            body = protocol.attest_request(self.k_mod, self.k_exp, self.gen, report, chain)
        status, data, _ = self.server.request("POST", "/attest", body,
                                              cookie=self.cookie if cookie is ... else cookie)
        return status, data

    def key(self, workload_id=None, cookie=...):
        status, data, _ = self.server.request("GET", f"/key/{workload_id or self.wid}",
                                              cookie=self.cookie if cookie is ... else cookie)
        return status, data

    def decrypt(self, data):
        from cryptography.hazmat.primitives.asymmetric import padding
        return self.tee_key.decrypt(bytes.fromhex(json.loads(data)), padding.PKCS1v15())

    def flow(self, **evidence_kw):
        """Full auth → attest → key; returns the passphrase or raises AssertionError with the refusal."""
        status, body = self.auth()
        assert status == 200, (status, body)
        status, body = self.attest(self.evidence(**evidence_kw))
        assert (status, body) == (200, b""), (status, body)
        status, body = self.key()
        assert status == 200, (status, body)
        return self.decrypt(body)


def write_disk(path, passphrase, config, size=4 << 20):
    """A real LUKS1 file (fast PBKDF2) with the mkcw footer: JSON ‖ "KRUN" ‖ u64 LE length."""
    with open(path, "wb") as f:
        f.truncate(size)
    subprocess.run(["cryptsetup", "luksFormat", "--batch-mode", "--type", "luks1", "--pbkdf-force-iterations",
                    "1000", "--key-file=-", path], input=passphrase.encode(), check=True, capture_output=True)
    raw = json.dumps(config, separators=(",", ":")).encode()
    with open(path, "ab") as f:
        f.write(raw + b"KRUN" + struct.pack("<Q", len(raw)))
    return path


def self_signed_tls(directory):
    import datetime
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    import ipaddress
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = os.path.join(directory, "tls.crt"), os.path.join(directory, "tls.key")
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_path, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return cert_path, key_path


def wait_until(pred, timeout=5.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.05)
    return pred()


PY = sys.executable


@pytest.fixture(scope="session")
def pg_dsn():
    """A throw-away PostgreSQL cluster (Debian's postgresql package) on a Unix socket,
    or the database named by $OCIRT_KBS_TEST_PG_DSN (its kbs tables are emptied)."""
    if os.environ.get("OCIRT_KBS_TEST_PG_DSN"):
        yield os.environ["OCIRT_KBS_TEST_PG_DSN"]
        return
    bindirs = sorted(d for d in (f"/usr/lib/postgresql/{v}/bin" for v in os.listdir("/usr/lib/postgresql"))
                     if os.path.exists(d + "/initdb")) if os.path.isdir("/usr/lib/postgresql") else []
    if not bindirs:
        pytest.skip("PostgreSQL server binaries not installed (apt-get install postgresql); "
                    "or set OCIRT_KBS_TEST_PG_DSN")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("psycopg not installed (pip install psycopg[binary])")
    bindir = bindirs[-1]
    # not under pytest's 0700 root-owned tmp: the server runs as the postgres user
    base = tempfile.mkdtemp(prefix="ocirt-kbs-pg-")
    data, sock = os.path.join(base, "data"), os.path.join(base, "sock")
    for d in (base, data, sock):
        os.makedirs(d, exist_ok=True)
        shutil.chown(d, "postgres", "postgres")
    as_pg = ["runuser", "-u", "postgres", "--"]

    def stop():  # idempotent; also registered with atexit in case pytest never tears down
        if os.path.exists(os.path.join(data, "postmaster.pid")):
            subprocess.run(as_pg + [f"{bindir}/pg_ctl", "-D", data, "-m", "immediate", "-w", "stop"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
        shutil.rmtree(base, ignore_errors=True)
    import atexit
    atexit.register(stop)
    try:
        subprocess.run(as_pg + [f"{bindir}/initdb", "-D", data, "-A", "trust", "-U", "postgres"], check=True,
                       capture_output=True)
        subprocess.run(as_pg + [f"{bindir}/pg_ctl", "-D", data, "-w", "-l", os.path.join(base, "log"), "-o",
                                f"-k {sock} -c listen_addresses='' -p 54329", "start"], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        yield f"postgresql://postgres@/postgres?host={sock}&port=54329"
    finally:
        stop()


