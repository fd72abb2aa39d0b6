"""SEV-SNP report parsing and verification, against real AMD data
(../shared/testdata/snp/virtee-sev) and against a chain generated here."""
import datetime
import hashlib
import http.server
import os
import subprocess
import sys
import threading

import pytest

from ocirt.kbs import certs, snp

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = "/work/shared/testdata/snp/virtee-sev"
pytestmark = pytest.mark.skipif(not os.path.isdir(DATA), reason=f"AMD test data missing: {DATA}")


def _read(name):
    with open(os.path.join(DATA, name), "rb") as f:
        return f.read()


@pytest.fixture(scope="module")
def milan():
    return (snp.decode_report_text(_read("report_milan.hex")), _read("vcek_milan.der"), _read("cert_chain_milan"))


# --- the real Milan report ------------------------------------------------------

def test_real_milan_report_parses(milan):
    raw, _, _ = milan
    r = snp.parse_report(raw)
    assert (r.version, r.policy, r.vmpl, r.signature_algo) == (2, 0x30000, 0, 1)
    assert r.measurement.hex().startswith("7a1e5c26") and r.measurement.hex().endswith("cd81841f")
    assert snp.tcb_parts(r.reported_tcb, "milan") == {"bl": 3, "tee": 0, "snp": 8, "ucode": 115}
    assert r.reported_tcb.to_bytes(8, "little").hex() == "0300000000000873"
    assert r.chip_id.hex().startswith("d49554ec717f4e5b")
    assert r.signing_key == 0 and not r.debug and not r.mask_chip_id
    assert r.signed_bytes == raw[:0x2A0]
    fields = r.fields("milan")
    assert fields["policy_flags"] == "SMT" and fields["signing_key_name"] == "VCEK"


def test_real_milan_report_verifies(milan):
    raw, vcek, chain = milan
    result = snp.verify(snp.parse_report(raw), vcek, chain, None)
    assert result.ok, result.first_failure()
    names = [n for n, _, _ in result.checks]
    for needed in ("ark_trusted", "ask_signed_by_ark", "vcek_signed_by_ask", "vcek_tcb", "vcek_hwid",
                   "report_signature"):
        assert needed in names
    assert result.first_failure() is None and result.product == "milan"
    # without the chain: the ASK shipped with ocirt for Milan
    assert snp.verify(snp.parse_report(raw), vcek, None, "milan").ok


def test_every_flipped_byte_in_signed_part_and_signature_fails(milan):
    raw, vcek, chain = milan
    survivors = []
    for i in range(snp.REPORT_SIZE):  # 0x000-0x29F signed, 0x2A0-0x49F signature
        bad = bytearray(raw)
        bad[i] ^= 0x01
        try:
            ok = snp.verify(snp.parse_report(bytes(bad)), vcek, chain, "milan").ok
        except snp.ReportError:
            ok = False
        if ok:
            survivors.append(i)
    assert survivors == []


def test_measurement_and_report_data_checks(milan):
    raw, vcek, chain = milan
    r = snp.parse_report(raw)
    assert snp.verify(r, vcek, chain, None, expected_measurement=r.measurement,
                      expected_report_data=r.report_data).ok
    res = snp.verify(r, vcek, chain, None, expected_measurement=bytes(48))
    assert not res.ok and res.first_failure().startswith("measurement:")
    res = snp.verify(r, vcek, chain, None, expected_report_data=b"\1" * 64)
    assert not res.ok and res.first_failure().startswith("report_data:")


def test_wrong_vcek_or_chain_fails(milan):
    raw, vcek, chain = milan
    r = snp.parse_report(raw)
    res = snp.verify(r, _read("vcek_turin.der"), chain, "milan")
    failed = {n for n, ok, _ in res.checks if not ok}
    assert {"vcek_signed_by_ask", "report_signature", "vcek_hwid"} <= failed
    res = snp.verify(r, vcek, _read("cert_chain_turin"), "milan")
    assert not res.ok and res.first_failure().startswith("ark_trusted")
    res = snp.verify(r, vcek, chain, "genoa")  # right certs, wrong trust anchor
    assert not res.ok and res.first_failure().startswith("ark_trusted")
    res = snp.verify(r, b"\x30\x03garbage", chain, "milan")
    assert not res.ok and "VCEK" in res.first_failure()


def test_vcek_needed_when_not_given(milan):
    raw, _, chain = milan
    res = snp.verify(snp.parse_report(raw), None, chain, "milan")
    assert not res.ok and res.first_failure().startswith("vcek_source: no VCEK")


def test_v2_report_without_hints_needs_a_product(milan):
    raw, _, _ = milan
    res = snp.verify(snp.parse_report(raw), None, None, None)
    assert not res.ok and "product" in res.first_failure()


def test_turin_vcek_extensions_and_chain():
    v = certs.parse_vcek(_read("vcek_turin.der"))
    assert v.product() == "turin" and len(v.hwid) == 8 and set(v.tcb) == {"fmc", "bl", "tee", "snp", "ucode"}
    ask = [c for c in certs.load_pem_certs(_read("cert_chain_turin")) if not certs.is_self_signed(c)][0]
    assert certs.check_signed_by(v, ask) is None
    assert certs.check_signed_by(v, certs.shipped_roots("turin")[1]) is None
    assert certs.check_signed_by(v, certs.shipped_roots("milan")[1]) is not None


@pytest.mark.parametrize("product", certs.PRODUCTS)
def test_shipped_roots_are_self_signed_and_sign_their_ask(product):
    ark, ask = certs.shipped_roots(product)
    assert certs.check_signed_by(ark, ark) is None and certs.check_signed_by(ask, ark) is None
    assert certs.product_from_cert_name(ark) == product


@pytest.mark.parametrize("data,match", [
    (b"", "size is 0"), (b"\0" * 1183, "size is 1183"), (b"\x01" + b"\0" * 1183, "version 1"),
    (b"\x06" + b"\0" * 1183, "version 6"),
])
def test_parse_errors(data, match):
    with pytest.raises(snp.ReportError, match=match):
        snp.parse_report(data)


def test_report_text_forms(milan):
    raw, _, _ = milan
    assert snp.decode_report_text(raw.hex().encode()) == raw
    assert snp.decode_report_text(raw.hex().upper().encode() + b"\n") == raw
    assert snp.decode_report_text(raw) == raw
    with pytest.raises(snp.ReportError):
        snp.decode_report_text(b"not hex at all")


def test_expected_report_data_concatenation():
    # SHA-512(nonce ‖ k-mod ‖ k-exp), each as the ASCII text that was sent (attestation.md §1, §2 step 3)
    got = snp.expected_report_data("6f1c", "AQAB", "AAE=")
    assert got == hashlib.sha512(b"6f1cAQABAAE=").digest()
    assert len(got) == 64


# --- a generated chain (what the server tests do) ----------------------------------

def _der_int(v):
    body = v.to_bytes(max(1, (v.bit_length() + 8) // 8), "big")
    return b"\x02" + bytes([len(body)]) + body


class GeneratedChain:
    """ARK → ASK → VCEK generated here, RSA-PSS SHA-384 like AMD's (smaller RSA keys for speed)."""

    def __init__(self, product="milan", tcb=(3, 0, 8, 115), chip_id=None):
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
        from cryptography.x509.oid import NameOID
        pss = padding.PSS(padding.MGF1(hashes.SHA384()), 48)
        now = datetime.datetime.now(datetime.timezone.utc)

        def name(cn):
            return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

        def cert(subject, issuer, key, signer, exts=()):
            b = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(key.public_key())
                 .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
                 .not_valid_after(now + datetime.timedelta(days=30)))
            for ext in exts:
                b = b.add_extension(ext, critical=False)
            return b.sign(signer, hashes.SHA384(), rsa_padding=pss)

        self.ark_key = rsa.generate_private_key(65537, 2048)
        self.ask_key = rsa.generate_private_key(65537, 2048)
        self.vcek_key = ec.generate_private_key(ec.SECP384R1())
        P = product.capitalize()
        self.ark = cert(name(f"ARK-{P}"), name(f"ARK-{P}"), self.ark_key, self.ark_key)
        self.ask = cert(name(f"SEV-{P}"), name(f"ARK-{P}"), self.ask_key, self.ark_key)
        self.chip_id = chip_id or bytes(range(64))
        bl, tee, snp_spl, ucode = tcb
        oid = x509.ObjectIdentifier
        exts = [x509.UnrecognizedExtension(oid("1.3.6.1.4.1.3704.1.2"), b"\x16\x08" + f"{P}-B0".encode()[:8]),
                x509.UnrecognizedExtension(oid("1.3.6.1.4.1.3704.1.3.1"), _der_int(bl)),
                x509.UnrecognizedExtension(oid("1.3.6.1.4.1.3704.1.3.2"), _der_int(tee)),
                x509.UnrecognizedExtension(oid("1.3.6.1.4.1.3704.1.3.3"), _der_int(snp_spl)),
                x509.UnrecognizedExtension(oid("1.3.6.1.4.1.3704.1.3.8"), _der_int(ucode)),
                x509.UnrecognizedExtension(oid("1.3.6.1.4.1.3704.1.4"), self.chip_id)]
        self.vcek = cert(name("SEV-VCEK"), name(f"SEV-{P}"), self.vcek_key, self.ask_key, exts)
        from cryptography.hazmat.primitives.serialization import Encoding
        self.vcek_der = self.vcek.public_bytes(Encoding.DER)
        self.chain_pem = self.ask.public_bytes(Encoding.PEM) + self.ark.public_bytes(Encoding.PEM)
        self.roots_pem = self.ark.public_bytes(Encoding.PEM)
        self.tcb = tcb

    def report(self, report_data=b"", measurement=b"\x42" * 48, policy=0x30000, key=None, tcb=None):
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec, utils
        bl, tee, snp_spl, ucode = tcb or self.tcb
        raw = bytearray(snp.REPORT_SIZE)
        raw[0:4] = (2).to_bytes(4, "little")
        raw[8:16] = policy.to_bytes(8, "little")
        raw[0x34:0x38] = (1).to_bytes(4, "little")
        tcb_bytes = bytes([bl, tee, 0, 0, 0, 0, snp_spl, ucode])
        for off in (0x38, 0x180, 0x1E0, 0x1F0):
            raw[off:off + 8] = tcb_bytes
        raw[0x50:0x90] = report_data.ljust(64, b"\0")
        raw[0x90:0xC0] = measurement
        raw[0x1A0:0x1E0] = self.chip_id
        r, s = utils.decode_dss_signature((key or self.vcek_key).sign(bytes(raw[:0x2A0]), ec.ECDSA(hashes.SHA384())))
        raw[0x2A0:0x2A0 + 72] = r.to_bytes(72, "little")
        raw[0x2E8:0x2E8 + 72] = s.to_bytes(72, "little")
        return bytes(raw)


@pytest.fixture(scope="module")
def chain():
    return GeneratedChain()


def test_generated_chain_verifies_only_with_its_injected_root(chain):
    nonce, n, e = "abc123", "bW9kdWx1cw==", "AQAB"
    rd = snp.expected_report_data(nonce, n, e)
    report = snp.parse_report(chain.report(rd))
    res = snp.verify(report, chain.vcek_der, chain.chain_pem, "milan", expected_report_data=rd,
                     expected_measurement=b"\x42" * 48, trusted_roots=chain.roots_pem)
    assert res.ok, res.first_failure()
    assert snp.verify(report, chain.vcek_der, chain.chain_pem, "milan",
                      trusted_roots={"milan": chain.roots_pem}).ok
    # the shipped AMD roots do not trust it
    res = snp.verify(report, chain.vcek_der, chain.chain_pem, "milan")
    assert not res.ok and res.first_failure().startswith("ark_trusted")
    # ASK + ARK injected as the trust set, no chain in the evidence
    assert snp.verify(report, chain.vcek_der, None, "milan", trusted_roots=chain.chain_pem).ok


def test_generated_chain_refusals(chain):
    other = GeneratedChain()
    good = chain.report()
    cases = {
        "report_signature": (chain.report(key=other.vcek_key), chain.vcek_der, chain.chain_pem),
        "vcek_signed_by_ask": (good, other.vcek_der, chain.chain_pem),
        "ask_signed_by_ark": (good, chain.vcek_der, other.ask.public_bytes(
            __import__("cryptography.hazmat.primitives.serialization", fromlist=["Encoding"]).Encoding.PEM)),
        "vcek_tcb": (chain.report(tcb=(4, 0, 8, 115)), chain.vcek_der, chain.chain_pem),
    }
    for expected, (raw, vcek, pem) in cases.items():
        res = snp.verify(snp.parse_report(raw), vcek, pem, "milan", trusted_roots=chain.roots_pem)
        failed = [n for n, ok, _ in res.checks if not ok]
        assert expected in failed, (expected, res.checks)


def test_chain_verdict_is_cached_per_vcek_but_not_the_report_checks(chain, monkeypatch):
    """The ARK → ASK → VCEK verdict is reused for the same certificates (no RSA-PSS at all on the
    second report), while each report's own checks run every time and validity follows the clock."""
    rd = snp.expected_report_data("nonce-1", "bW9kdWx1cw==", "AQAB")

    def verify(raw, **kw):
        return snp.verify(snp.parse_report(raw), chain.vcek_der, chain.chain_pem, "milan", expected_report_data=rd,
                          expected_measurement=b"\x42" * 48, trusted_roots=chain.roots_pem, **kw)
    first = verify(chain.report(rd))
    assert first.ok, first.first_failure()

    def no_rsa(*args):
        raise AssertionError("chain signatures re-verified")
    monkeypatch.setattr(certs, "check_signed_by", no_rsa)
    again = verify(chain.report(rd))
    assert again.ok and [c[0] for c in again.checks] == [c[0] for c in first.checks]
    flipped = bytearray(chain.report(rd))
    flipped[0x90] ^= 1
    failed = [n for n, ok, _ in verify(bytes(flipped)).checks if not ok]
    assert failed == ["report_signature", "measurement"]
    assert [n for n, ok, _ in verify(chain.report(b"other")).checks if not ok] == ["report_data"]
    other_chip = bytearray(chain.report(rd))
    other_chip[0x1A0] ^= 1  # another chip's id under the same VCEK (the signature breaks too)
    assert "vcek_hwid" in [n for n, ok, _ in verify(bytes(other_chip)).checks if not ok]
    assert [n for n, ok, _ in verify(chain.report(rd, tcb=(4, 0, 8, 115))).checks if not ok] == ["vcek_tcb"]
    later = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=60)
    monkeypatch.undo()
    expired = verify(chain.report(rd), now=later)
    failed = [n for n, ok, _ in expired.checks if not ok]
    assert {"ark_validity", "ask_validity", "vcek_validity"} <= set(failed), expired.checks
    assert verify(chain.report(rd)).ok


def test_hwid_mismatch_and_high_tcb_values():
    c = GeneratedChain(tcb=(200, 1, 22, 213), chip_id=b"\xaa" * 64)
    raw = bytearray(c.report())
    assert snp.verify(snp.parse_report(bytes(raw)), c.vcek_der, c.chain_pem, "milan", trusted_roots=c.roots_pem).ok
    other = GeneratedChain(tcb=(200, 1, 22, 213), chip_id=b"\xbb" * 64)
    res = snp.verify(snp.parse_report(c.report()), other.vcek_der, other.chain_pem, "milan",
                     trusted_roots=other.roots_pem)
    assert [n for n, ok, _ in res.checks if not ok] == ["vcek_hwid", "report_signature"]


def test_policy_checks(chain):
    debug = snp.parse_report(chain.report(policy=0x30000 | snp.POLICY_DEBUG))
    checks = dict((n, ok) for n, ok, _ in snp.policy_checks(debug))
    assert checks == {"policy_debug": False, "policy_reserved": True}
    assert dict((n, ok) for n, ok, _ in snp.policy_checks(debug, allow_debug=True))["policy_debug"]
    r = snp.parse_report(chain.report())
    assert dict((n, ok) for n, ok, _ in snp.policy_checks(r, min_tcb={"snp": 8, "ucode": 115}))["min_tcb"]
    assert not dict((n, ok) for n, ok, _ in snp.policy_checks(r, min_tcb={"snp": 9}))["min_tcb"]


# --- VCEK from a cache directory or a KDS over real HTTP ---------------------------

class _KDS(http.server.BaseHTTPRequestHandler):
    served = {}
    requests = []

    def do_GET(self):
        type(self).requests.append(self.path)
        body = type(self).served.get(self.path)
        self.send_response(200 if body else 404)
        self.send_header("Content-Length", str(len(body or b"")))
        self.end_headers()
        self.wfile.write(body or b"")

    def log_message(self, *args):
        pass


def test_vcek_from_kds_then_cache(milan, tmp_path):
    raw, vcek, chain_pem = milan
    report = snp.parse_report(raw)
    path = ("/vcek/v1/Milan/" + report.chip_id.hex() + "?blSPL=03&teeSPL=00&snpSPL=08&ucodeSPL=115")
    _KDS.served = {path: vcek}
    _KDS.requests = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _KDS)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        res = snp.verify(report, None, chain_pem, "milan", cache_dir=str(tmp_path), kds_url=url)
        assert res.ok, res.first_failure()
        assert _KDS.requests == [path]
        assert [f for f in os.listdir(tmp_path)] == [os.path.basename(
            certs.vcek_cache_path(str(tmp_path), "milan", report.chip_id, snp.tcb_parts(report.reported_tcb,
                                                                                        "milan")))]
        # a chip the KDS does not know: a clean refusal
        other = bytearray(raw)
        other[0x1A0] ^= 1
        res = snp.verify(snp.parse_report(bytes(other)), None, chain_pem, "milan", kds_url=url)
        assert not res.ok and "HTTP 404" in res.first_failure()
    finally:
        server.shutdown()
        server.server_close()
    # KDS gone: the cache answers
    res = snp.verify(report, None, chain_pem, "milan", cache_dir=str(tmp_path))
    assert res.ok and any(n == "vcek_source" and str(tmp_path) in d for n, _, d in res.checks)


def test_kds_unreachable_is_a_clean_failure(milan):
    raw, _, chain_pem = milan
    res = snp.verify(snp.parse_report(raw), None, chain_pem, "milan", kds_url="http://127.0.0.1:9")
    assert not res.ok and res.first_failure().startswith("vcek_source: KDS http://127.0.0.1:9/vcek/v1/Milan/")


# --- the CLI -----------------------------------------------------------------------

def _cli(*args):
    return subprocess.run([sys.executable, "-m", "ocirt.kbs.verify_cli", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=60)


def test_cli_verifies_real_report():
    r = _cli("--report", os.path.join(DATA, "report_milan.hex"), "--vcek", os.path.join(DATA, "vcek_milan.der"),
             "--chain", os.path.join(DATA, "cert_chain_milan"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "PASS  report_signature" in r.stdout and r.stdout.rstrip().endswith("result: OK")
    assert "measurement         7a1e5c26" in r.stdout


def test_cli_fails_on_tampered_binary_report(milan, tmp_path):
    raw, _, _ = milan
    bad = bytearray(raw)
    bad[0x90] ^= 0x80  # the measurement
    (tmp_path / "r.bin").write_bytes(bytes(bad))
    r = _cli("--report", str(tmp_path / "r.bin"), "--vcek", os.path.join(DATA, "vcek_milan.der"),
             "--product", "milan", "--json")
    assert r.returncode == 1
    import json
    out = json.loads(r.stdout)
    assert out["ok"] is False
    assert [c["name"] for c in out["checks"] if not c["passed"]] == ["report_signature"]


def test_cli_input_errors_are_one_line(tmp_path):
    r = _cli("--report", str(tmp_path / "missing"))
    assert r.returncode == 1 and r.stderr.startswith("ocirt-kbs verify-report: --report ") and \
        r.stderr.count("\n") == 1
    (tmp_path / "short").write_bytes(b"\0" * 100)
    r = _cli("--report", str(tmp_path / "short"))
    assert r.returncode == 1 and "neither 1184 raw bytes nor hex" in r.stderr


def test_v5_fields_turin_tcb_and_cpuid_product():
    raw = bytearray(snp.REPORT_SIZE)
    raw[0:4] = (5).to_bytes(4, "little")
    raw[0x188:0x18B] = bytes([0x1A, 0x02, 0x01])           # family 0x1A: Turin
    raw[0x180:0x188] = bytes([1, 2, 3, 4, 0, 0, 0, 9])     # Turin TCB: fmc bl tee snp .. ucode
    raw[0x1F8:0x200] = (0x11).to_bytes(8, "little")
    raw[0x200:0x208] = (0x22).to_bytes(8, "little")
    r = snp.parse_report(bytes(raw))
    assert r.product_hint() == "turin"
    assert snp.tcb_parts(r.reported_tcb, "turin") == {"fmc": 1, "bl": 2, "tee": 3, "snp": 4, "ucode": 9}
    assert (r.launch_mit_vector, r.current_mit_vector, r.cpuid_step) == (0x11, 0x22, 1)
    assert snp.product_from_cpuid(0x19, 0x01) == "milan" and snp.product_from_cpuid(0x19, 0x11) == "genoa"
    assert snp.product_from_cpuid(0x17, 0x31) is None
