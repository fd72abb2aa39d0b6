"""SEV-SNP attestation reports: parsing (versions 2–5) and verification.

Layout, signature encoding and chain rules: ../shared/reference/attestation.md
§6 (report), §7 (certificates), §1 (reference-kbs binding).  The report is
1184 bytes, little-endian; bytes [0, 0x2A0) are signed by the VCEK with
ECDSA P-384 / SHA-384; R and S sit little-endian in 72-byte slots.

    report = parse_report(data)
    result = verify(report, vcek_der, chain_pem, product, expected_report_data=..., ...)
    if not result.ok: refuse(result.first_failure())
"""
import datetime
import hashlib
import struct
import threading

from ocirt.errors import OcirtError
from ocirt.kbs import certs

REPORT_SIZE = 0x4A0
SIGNED_SIZE = 0x2A0
SUPPORTED_VERSIONS = (2, 3, 4, 5)
SIG_ALGO_ECDSA_P384_SHA384 = 1

POLICY_SMT = 1 << 16
POLICY_RESERVED_MUST_BE_ONE = 1 << 17
POLICY_MIGRATE_MA = 1 << 18
POLICY_DEBUG = 1 << 19
POLICY_SINGLE_SOCKET = 1 << 20
POLICY_MBZ_MASK = ~((1 << 26) - 1) & 0xFFFFFFFFFFFFFFFF

SIGNING_KEY_NAMES = {0: "VCEK", 1: "VLEK", 7: "none"}


class ReportError(OcirtError):
    pass


def tcb_parts(raw, product):
    """Decode a TCB_VERSION u64.  Milan/Genoa: [0] bl [1] tee [6] snp [7] ucode;
    Turin: [0] fmc [1] bl [2] tee [3] snp [7] ucode (attestation.md §6)."""
    b = raw.to_bytes(8, "little")
    if product == "turin":
        return {"fmc": b[0], "bl": b[1], "tee": b[2], "snp": b[3], "ucode": b[7]}
    return {"bl": b[0], "tee": b[1], "snp": b[6], "ucode": b[7]}


def product_from_cpuid(family, model):
    """Product line from the v3+ CPUID fields (family/model as the CPU reports them)."""
    if family == 0x19:
        if model <= 0x0F:
            return "milan"
        if 0x10 <= model <= 0x1F or 0xA0 <= model <= 0xAF:
            return "genoa"
    if family == 0x1A:
        return "turin"
    return None


# (name, offset, size, kind) — kind: u = little-endian unsigned int, b = bytes
_FIELDS = (
    ("version", 0x000, 4, "u"), ("guest_svn", 0x004, 4, "u"), ("policy", 0x008, 8, "u"),
    ("family_id", 0x010, 16, "b"), ("image_id", 0x020, 16, "b"), ("vmpl", 0x030, 4, "u"),
    ("signature_algo", 0x034, 4, "u"), ("current_tcb", 0x038, 8, "u"), ("platform_info", 0x040, 8, "u"),
    ("key_info", 0x048, 4, "u"), ("report_data", 0x050, 64, "b"), ("measurement", 0x090, 48, "b"),
    ("host_data", 0x0C0, 32, "b"), ("id_key_digest", 0x0E0, 48, "b"), ("author_key_digest", 0x110, 48, "b"),
    ("report_id", 0x140, 32, "b"), ("report_id_ma", 0x160, 32, "b"), ("reported_tcb", 0x180, 8, "u"),
    ("cpuid_fam_id", 0x188, 1, "u"), ("cpuid_mod_id", 0x189, 1, "u"), ("cpuid_step", 0x18A, 1, "u"),
    ("chip_id", 0x1A0, 64, "b"), ("committed_tcb", 0x1E0, 8, "u"),
    ("current_build", 0x1E8, 1, "u"), ("current_minor", 0x1E9, 1, "u"), ("current_major", 0x1EA, 1, "u"),
    ("committed_build", 0x1EC, 1, "u"), ("committed_minor", 0x1ED, 1, "u"),
    ("committed_major", 0x1EE, 1, "u"), ("launch_tcb", 0x1F0, 8, "u"),
    ("launch_mit_vector", 0x1F8, 8, "u"), ("current_mit_vector", 0x200, 8, "u"),
)
_STRUCT = struct.Struct("<" + "".join(
    {("u", 1): "B", ("u", 4): "I", ("u", 8): "Q"}.get((kind, size), f"{size}s")
    + ("" if i + 1 == len(_FIELDS) else f"{_FIELDS[i + 1][1] - off - size}x")
    for i, (_, off, size, kind) in enumerate(_FIELDS)))
_FIELD_NAMES = tuple(f[0] for f in _FIELDS)
assert _STRUCT.size == 0x208


class Report:
    """A parsed report.  Every field of the layout is an attribute (ints for
    integers, bytes for byte strings); ``raw`` keeps the 1184 input bytes."""

    __slots__ = _FIELD_NAMES + ("raw", "signature_r", "signature_s")

    def __init__(self, raw):
        self.raw = raw
        for name, value in zip(_FIELD_NAMES, _STRUCT.unpack_from(raw, 0)):
            setattr(self, name, value)
        self.signature_r = int.from_bytes(raw[0x2A0:0x2A0 + 72], "little")
        self.signature_s = int.from_bytes(raw[0x2E8:0x2E8 + 72], "little")

    @property
    def signed_bytes(self):
        return self.raw[:SIGNED_SIZE]

    @property
    def debug(self):
        return bool(self.policy & POLICY_DEBUG)

    @property
    def signing_key(self):
        """0 VCEK, 1 VLEK, 7 none (key_info bits 4:2)."""
        return (self.key_info >> 2) & 7

    @property
    def mask_chip_id(self):
        return bool(self.key_info & 2)

    @property
    def author_key_en(self):
        return bool(self.key_info & 1)

    def product_hint(self):
        if self.version >= 3:
            return product_from_cpuid(self.cpuid_fam_id, self.cpuid_mod_id)
        return None

    def fields(self, product=None):
        """An ordered dict of every field, for display (bytes as hex)."""
        out = {}
        for name in _FIELD_NAMES:
            value = getattr(self, name)
            if name.endswith("_tcb") and product:
                out[name] = f"0x{value:016x} " + " ".join(f"{k}={v}" for k, v in tcb_parts(value, product).items())
            elif name in ("policy", "platform_info", "key_info"):
                out[name] = f"0x{value:x}"
            elif isinstance(value, bytes):
                out[name] = value.hex()
            else:
                out[name] = value
        out["policy_flags"] = ",".join(n for bit, n in ((POLICY_SMT, "SMT"), (POLICY_MIGRATE_MA, "MIGRATE_MA"),
                                                        (POLICY_DEBUG, "DEBUG"),
                                                        (POLICY_SINGLE_SOCKET, "SINGLE_SOCKET"))
                                       if self.policy & bit) or "-"
        out["signing_key_name"] = SIGNING_KEY_NAMES.get(self.signing_key, f"reserved({self.signing_key})")
        out["signature_r"] = f"{self.signature_r:096x}"
        out["signature_s"] = f"{self.signature_s:096x}"
        return out


def parse_report(data):
    """Parse a 1184-byte report (raw bytes).  Raises ReportError naming the problem."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ReportError("report: expected bytes")
    data = bytes(data)
    if len(data) != REPORT_SIZE:
        raise ReportError(f"report: size is {len(data)} bytes, expected {REPORT_SIZE}")
    version = int.from_bytes(data[:4], "little")
    if version not in SUPPORTED_VERSIONS:
        raise ReportError(f"report: version {version} is not supported (2 to 5)")
    return Report(data)


def decode_report_text(data):
    """Raw bytes from a report file that is binary or hex text (either case, whitespace allowed)."""
    if len(data) == REPORT_SIZE:
        return bytes(data)
    try:
        text = bytes(data).decode("ascii")
        return bytes.fromhex("".join(text.split()))
    except ValueError:
        raise ReportError(f"report: neither {REPORT_SIZE} raw bytes nor hex text") from None


def expected_report_data(nonce, n_b64, e_b64):
    """SHA-512(nonce ‖ base64 n ‖ base64 e), the reference-kbs binding
    (attestation.md §1 check 1 and §2 step 3): the strings' ASCII bytes, as sent."""
    return hashlib.sha512(nonce.encode() + n_b64.encode() + e_b64.encode()).digest()


class Verification:
    """Outcome of verify(): ``checks`` is a list of (name, passed, detail)."""

    __slots__ = ("checks", "product", "report")

    def __init__(self, report, product=None):
        self.checks = []
        self.product = product
        self.report = report

    def add(self, name, passed, detail=""):
        self.checks.append((name, bool(passed), detail))
        return passed

    @property
    def ok(self):
        return bool(self.checks) and all(passed for _, passed, _ in self.checks)

    def first_failure(self):
        for name, passed, detail in self.checks:
            if not passed:
                return f"{name}: {detail}" if detail else name
        return None

    def __repr__(self):
        return f"<Verification ok={self.ok} {self.first_failure() or ''}>"


def _constant_time_eq(a, b):
    import hmac
    return hmac.compare_digest(bytes(a), bytes(b))


_trusted_cache = {}
_trusted_lock = threading.Lock()


def _trust_set(trusted_roots, product):
    """(list of trusted ARKs, list of known ASKs) for product."""
    if trusted_roots is None:
        ark, ask = certs.shipped_roots(product)
        return [ark], [ask]
    if isinstance(trusted_roots, dict):
        trusted_roots = trusted_roots.get(product)
        if trusted_roots is None:
            return [], []
    key = bytes(trusted_roots)
    hit = _trusted_cache.get(key)
    if hit is None:
        cs = certs.load_pem_certs(key, "trusted roots")
        hit = ([c for c in cs if certs.is_self_signed(c)], [c for c in cs if not certs.is_self_signed(c)])
        with _trusted_lock:
            if len(_trusted_cache) > 64:
                _trusted_cache.clear()
            _trusted_cache[key] = hit
    return hit


def _pick_product(report, vcek, chain, product):
    if product:
        product = product.lower()
        if product not in certs.PRODUCTS:
            raise ReportError(f"product: unknown {product!r} (expected milan, genoa or turin)")
        return product, "given"
    hint = report.product_hint()
    if hint:
        return hint, "report CPUID"
    if vcek is not None and vcek.product():
        return vcek.product(), "VCEK productName"
    for cert in chain or ():
        p = certs.product_from_cert_name(cert)
        if p:
            return p, "chain certificate name"
    return None, None


def verify(report, vcek_der, chain_pem, product, expected_report_data=None, expected_measurement=None,
           cache_dir=None, kds_url=None, trusted_roots=None, now=None):
    """Verify a parsed report; every check is recorded, failures do not stop later checks.

    vcek_der: VCEK certificate from the evidence, or None to look it up
    (cache_dir, then kds_url).  chain_pem: PEM with the ASK (and ARK) as KDS
    serves it, or None to use the ASK shipped/trusted for the product.
    trusted_roots: None (AMD roots shipped with ocirt), PEM bytes of trusted
    ARKs (and optionally their ASKs), or {product: PEM bytes}.
    """
    result = Verification(report)
    add = result.add
    add("version", report.version in SUPPORTED_VERSIONS, f"version {report.version}")
    add("signature_algo", report.signature_algo == SIG_ALGO_ECDSA_P384_SHA384,
        f"{report.signature_algo} (1 = ECDSA P-384 SHA-384)")
    add("signing_key", report.signing_key == 0,
        f"report signed by {SIGNING_KEY_NAMES.get(report.signing_key, 'reserved')}"
        + ("" if report.signing_key == 0 else "; only VCEK-signed reports are supported"))

    # --- certificates -------------------------------------------------------
    chain = []
    if chain_pem:
        try:
            chain = certs.load_pem_certs(chain_pem)
        except certs.CertError as e:
            add("chain", False, str(e))
    vcek = None
    if vcek_der:
        try:
            vcek = certs.parse_vcek(vcek_der)
        except certs.CertError as e:
            add("vcek", False, str(e))
    try:
        product, product_source = _pick_product(report, vcek, chain, product)
    except ReportError as e:
        add("product", False, str(e))
        return result
    if product is None:
        add("product", False, "cannot tell Milan/Genoa/Turin from a v2 report: give the product")
        return result
    result.product = product
    add("product", True, f"{product} ({product_source})")
    reported = tcb_parts(report.reported_tcb, product)

    if vcek is None and not vcek_der:
        try:
            der, where = certs.find_vcek(product, report.chip_id, reported, cache_dir, kds_url)
            vcek = certs.parse_vcek(der)
            add("vcek_source", True, where)
        except certs.CertError as e:
            add("vcek_source", False, str(e))

    try:
        arks, asks = _trust_set(trusted_roots, product)
    except certs.CertError as e:
        add("trusted_roots", False, str(e))
        arks, asks = [], []
    result.checks += _chain_checks(arks, asks, chain, vcek, now)
    if vcek is not None:
        _check_vcek_tcb(report, vcek, product, reported, add)

    # --- report signature -----------------------------------------------------
    if vcek is not None:
        add("report_signature", *_check_signature(report, vcek.public_key))
    elif not any(name == "vcek" for name, _, _ in result.checks):
        add("report_signature", False, "no VCEK to check the signature with")

    # --- binding and measurement ------------------------------------------------
    if expected_report_data is not None:
        want = bytes(expected_report_data).ljust(64, b"\0")
        add("report_data", len(expected_report_data) <= 64 and _constant_time_eq(report.report_data, want),
            "matches the expected binding" if _constant_time_eq(report.report_data, want)
            else f"is {report.report_data.hex()[:32]}…, expected {want.hex()[:32]}…")
    if expected_measurement is not None:
        same = _constant_time_eq(report.measurement, expected_measurement)
        add("measurement", same, f"{report.measurement.hex()}" +
            ("" if same else f" != expected {bytes(expected_measurement).hex()}"))
    return result


_chain_cache = {}  # (ARK, ASK, chain, VCEK DERs) -> (not_before, not_after, checks)
_CHAIN_CACHE_LIMIT = 1024


def _chain_checks(arks, asks, chain, vcek, now=None):
    """The ARK → ASK → VCEK checks (ark_trusted … vcek_validity) as (name, passed, detail).

    Every input that decides them is in the cache key: the DER of the trusted ARKs and
    ASKs, of the evidence's chain, and of the VCEK.  The RSA-PSS signatures, names and
    trust decisions depend on nothing else; only the validity checks depend on the time,
    so a cached verdict is used only while ``now`` lies within every certificate's
    validity period (checked on each call); outside it everything is recomputed and the
    validity check fails with its reason.  The report's own checks (signature,
    report_data, TCB and hwID against the VCEK, measurement) are not cached."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    key = None
    if vcek is not None:
        key = (tuple(certs.der_of(c) for c in arks), tuple(certs.der_of(c) for c in asks),
               tuple(certs.der_of(c) for c in chain), vcek.der)
        hit = _chain_cache.get(key)
        if hit is not None and hit[0] <= now <= hit[1]:
            return hit[2]
    checks = []

    def add(name, passed, detail=""):
        checks.append((name, bool(passed), detail))
    chain_arks = [c for c in chain if certs.is_self_signed(c)]
    chain_asks = [c for c in chain if not certs.is_self_signed(c)]
    ark = _chain_ark(chain_arks, arks, add, now)
    ask = _chain_ask(chain_asks or asks, ark, add, now) if ark is not None else None
    if vcek is not None:
        if ask is not None:
            reason = certs.check_signed_by(vcek, ask)
            add("vcek_signed_by_ask", reason is None, reason or "RSA-PSS SHA-384 by the ASK")
        problem = certs.validity_problem(vcek.not_before, vcek.not_after, now)
        add("vcek_validity", problem is None, problem or f"valid until {vcek.not_after:%Y-%m-%d}")
    if key is not None:
        used = [c for c in (ark, ask) if c is not None]
        not_before = max([vcek.not_before] + [c.not_valid_before_utc for c in used])
        not_after = min([vcek.not_after] + [c.not_valid_after_utc for c in used])
        checks = tuple(checks)
        if not not_before <= now <= not_after:  # judged at a time outside validity: not reusable
            return checks
        with _trusted_lock:
            if len(_chain_cache) >= _CHAIN_CACHE_LIMIT:
                _chain_cache.clear()
            _chain_cache[key] = (not_before, not_after, checks)
    return checks


def _chain_ark(chain_arks, trusted_arks, add, now=None):
    if not trusted_arks:
        add("ark_trusted", False, "no trusted ARK for this product")
        return None
    if chain_arks:
        trusted_der = {certs.der_of(a) for a in trusted_arks}
        for cand in chain_arks:
            if certs.der_of(cand) in trusted_der:
                ark = cand
                break
        else:
            add("ark_trusted", False, "the chain's ARK is not a trusted AMD root")
            return None
    else:
        ark = trusted_arks[0]
    reason = certs.check_signed_by(ark, ark)
    add("ark_trusted", reason is None, reason or f"self-signed {certs.subject_text(ark)}")
    problem = certs.cert_validity_problem(ark, now)
    add("ark_validity", problem is None, problem or f"valid until {ark.not_valid_after_utc:%Y-%m-%d}")
    return ark if reason is None else None


def _chain_ask(candidates, ark, add, now=None):
    reasons = []
    for ask in candidates:
        reason = certs.check_signed_by(ask, ark)
        if reason is None:
            add("ask_signed_by_ark", True, certs.subject_text(ask))
            problem = certs.cert_validity_problem(ask, now)
            add("ask_validity", problem is None, problem or f"valid until {ask.not_valid_after_utc:%Y-%m-%d}")
            return ask
        reasons.append(reason)
    add("ask_signed_by_ark", False, "; ".join(reasons) or "no ASK available")
    return None


def _check_vcek_tcb(report, vcek, product, reported, add):
    wanted = ("fmc", "bl", "tee", "snp", "ucode") if product == "turin" else ("bl", "tee", "snp", "ucode")
    missing = [k for k in wanted if k not in vcek.tcb]
    if missing:
        add("vcek_tcb", False, f"VCEK lacks TCB extensions {','.join(missing)}")
    else:
        diff = [f"{k}: VCEK {vcek.tcb[k]} report {reported[k]}" for k in wanted if vcek.tcb[k] != reported[k]]
        add("vcek_tcb", not diff, "; ".join(diff) or
            "equals reported_tcb " + " ".join(f"{k}={reported[k]}" for k in wanted))
    if report.mask_chip_id:
        add("vcek_hwid", True, "chip id masked by the guest policy (MASK_CHIP_ID): not compared")
    elif vcek.hwid is None:
        add("vcek_hwid", False, "VCEK has no hwID extension")
    else:
        chip = report.chip_id[:8] if product == "turin" else report.chip_id
        hwid = vcek.hwid[:8] if product == "turin" else vcek.hwid
        add("vcek_hwid", _constant_time_eq(hwid, chip), "equals chip_id" if hwid == chip
            else f"VCEK hwID {hwid.hex()[:16]}… != report chip_id {chip.hex()[:16]}…")


_P384_ORDER = int("ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973", 16)


def _check_signature(report, public_key):
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, utils
    raw = report.raw
    # R and S are 48-byte values in 72-byte slots; everything else in the
    # 512-byte signature area is reserved zero.  Insisting on that makes the
    # whole area tamper-evident, not just the bytes that hold R and S.
    if any(raw[0x2A0 + 48:0x2A0 + 72]) or any(raw[0x2E8 + 48:0x2E8 + 72]) or any(raw[0x330:REPORT_SIZE]):
        return False, "non-zero bytes in the reserved part of the signature"
    r, s = report.signature_r, report.signature_s
    if not (0 < r < _P384_ORDER and 0 < s < _P384_ORDER):
        return False, "R or S out of range"
    try:
        public_key.verify(utils.encode_dss_signature(r, s), raw[:SIGNED_SIZE], ec.ECDSA(hashes.SHA384()))
    except InvalidSignature:
        return False, "ECDSA P-384 signature over bytes 0x000-0x29F does not verify with the VCEK"
    return True, "ECDSA P-384 SHA-384 by the VCEK"


def policy_checks(report, allow_debug=False, min_tcb=None, product=None):
    """Policy checks beyond the signature: (name, passed, detail) tuples.
    min_tcb: dict like {"bl": 3, "tee": 0, "snp": 8, "ucode": 115}; every
    component of the report's reported_tcb must be >= it."""
    out = []
    out.append(("policy_debug", allow_debug or not report.debug,
                "DEBUG set in the guest policy" if report.debug else "debug off"))
    out.append(("policy_reserved", bool(report.policy & POLICY_RESERVED_MUST_BE_ONE)
                and not report.policy & POLICY_MBZ_MASK, f"policy 0x{report.policy:x}"))
    if min_tcb:
        product = product or report.product_hint() or "milan"
        have = tcb_parts(report.reported_tcb, product)
        low = [f"{k} {have.get(k)} < {v}" for k, v in min_tcb.items() if have.get(k, -1) < v]
        out.append(("min_tcb", not low, "; ".join(low) or "reported_tcb meets the minimum"))
    return out
