"""AMD SEV-SNP certificates: the ARK → ASK → VCEK chain, VCEK TCB extensions,
and where VCEKs come from (the evidence, a cache directory, AMD's KDS).

Formats follow ../shared/reference/attestation.md §7:
- ARK (self-signed) and ASK are RSA-4096 certificates signed RSASSA-PSS with
  SHA-384; the VCEK is a P-384 key certified by the ASK the same way.
- KDS: ``<base>/vcek/v1/<Milan|Genoa|Turin>/<hwid>?blSPL=NN&teeSPL=NN&snpSPL=NN
  &ucodeSPL=NN`` (Turin adds ``fmcSPL`` and uses hex of chip_id[0:8]).
- VCEK extensions under 1.3.6.1.4.1.3704.1 carry the TCB and the hwID.

AMD issues VCEKs with serial number 0, which the ``cryptography`` package
deprecates (it warns now and will refuse later).  The VCEK is therefore read
with the small DER reader below and only its SubjectPublicKeyInfo is handed to
``cryptography``; ARK and ASK load normally.

Every parse and every chain verification is cached by the certificate bytes:
the server verifies thousands of reports against the same few certificates.
"""
import datetime
import os
import threading

from ocirt.errors import OcirtError

PRODUCTS = ("milan", "genoa", "turin")
KDS_PRODUCT_NAMES = {"milan": "Milan", "genoa": "Genoa", "turin": "Turin"}
DEFAULT_KDS_URL = "https://kdsintf.amd.com"
DATA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "amd")
MAX_CERT_BYTES = 64 * 1024

OID_RSASSA_PSS = "1.2.840.113549.1.1.10"
OID_SHA384 = "2.16.840.1.101.3.4.2.2"
OID_EC_PUBLIC_KEY = "1.2.840.10045.2.1"
_AMD_ARC = "1.3.6.1.4.1.3704.1."
VCEK_TCB_OIDS = {
    _AMD_ARC + "3.1": "bl",
    _AMD_ARC + "3.2": "tee",
    _AMD_ARC + "3.3": "snp",
    _AMD_ARC + "3.8": "ucode",
    _AMD_ARC + "3.9": "fmc",
}
OID_PRODUCT_NAME = _AMD_ARC + "2"
OID_HWID = _AMD_ARC + "4"


class CertError(OcirtError):
    pass


# --- a bounded DER reader (just what X.509 certificates need) ---------------

def _der_read(buf, pos, end):
    """Return (tag, content_start, content_end) of the TLV at pos; bounds-checked."""
    if pos + 2 > end:
        raise CertError("DER: truncated element")
    tag = buf[pos]
    length = buf[pos + 1]
    pos += 2
    if length & 0x80:
        n = length & 0x7F
        if n == 0 or n > 4 or pos + n > end:
            raise CertError("DER: bad length")
        length = int.from_bytes(buf[pos:pos + n], "big")
        pos += n
    if pos + length > end:
        raise CertError("DER: element overruns its container")
    return tag, pos, pos + length


def _der_children(buf, start, end):
    out = []
    pos = start
    while pos < end:
        tag, cs, ce = _der_read(buf, pos, end)
        out.append((tag, pos, cs, ce))
        pos = ce
    return out


def _oid(content):
    if not content:
        raise CertError("DER: empty OID")
    first = content[0]
    parts = [min(first // 40, 2), first - 40 * min(first // 40, 2)]
    value = 0
    for byte in content[1:]:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            parts.append(value)
            value = 0
    return ".".join(map(str, parts))


def _der_int(content):
    return int.from_bytes(content, "big", signed=True)


def _der_time(tag, content):
    text = bytes(content).decode("ascii", "replace")
    try:
        if tag == 0x17:  # UTCTime YYMMDDHHMMSSZ
            when = datetime.datetime.strptime(text, "%y%m%d%H%M%SZ")
        elif tag == 0x18:  # GeneralizedTime YYYYMMDDHHMMSSZ
            when = datetime.datetime.strptime(text, "%Y%m%d%H%M%SZ")
        else:
            raise ValueError
    except ValueError:
        raise CertError(f"DER: bad certificate time {text!r}") from None
    return when.replace(tzinfo=datetime.timezone.utc)


class Vcek:
    """A parsed VCEK: what verification needs, read with the DER reader above."""

    __slots__ = ("der", "tbs", "signature", "sig_hash_oid", "sig_salt", "issuer_der", "subject_der",
                 "not_before", "not_after", "public_key", "tcb", "product_name", "hwid")

    def __init__(self, der):
        if not isinstance(der, (bytes, bytearray)) or not der:
            raise CertError("VCEK: empty certificate")
        if len(der) > MAX_CERT_BYTES:
            raise CertError("VCEK: certificate too large")
        der = bytes(der)
        if der[:1] == b"-":  # PEM given where DER was expected: accept it
            blocks = _pem_blocks(der)
            if len(blocks) != 1:
                raise CertError("VCEK: expected one PEM CERTIFICATE block")
            der = blocks[0]
        self.der = der
        tag, cs, ce = _der_read(der, 0, len(der))
        if tag != 0x30 or ce != len(der):
            raise CertError("VCEK: not a DER certificate")
        parts = _der_children(der, cs, ce)
        if len(parts) != 3 or parts[2][0] != 0x03:
            raise CertError("VCEK: malformed Certificate")
        _, tbs_pos, tbs_cs, tbs_ce = parts[0]
        self.tbs = der[tbs_pos:tbs_ce]
        self.sig_hash_oid, self.sig_salt = self._pss_params(der, parts[1])
        sig = der[parts[2][2]:parts[2][3]]
        if not sig or sig[0] != 0:
            raise CertError("VCEK: bad signature BIT STRING")
        self.signature = sig[1:]
        fields = _der_children(der, tbs_cs, tbs_ce)
        if fields and fields[0][0] == 0xA0:  # [0] version
            fields = fields[1:]
        if len(fields) < 6:
            raise CertError("VCEK: malformed TBSCertificate")
        _serial, _alg, issuer, validity, subject, spki = fields[:6]
        self.issuer_der = der[issuer[1]:issuer[3]]
        self.subject_der = der[subject[1]:subject[3]]
        times = _der_children(der, validity[2], validity[3])
        if len(times) != 2:
            raise CertError("VCEK: malformed validity")
        self.not_before = _der_time(times[0][0], der[times[0][2]:times[0][3]])
        self.not_after = _der_time(times[1][0], der[times[1][2]:times[1][3]])
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        try:
            key = serialization.load_der_public_key(der[spki[1]:spki[3]])
        except ValueError as e:
            raise CertError(f"VCEK: bad public key: {e}") from None
        if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp384r1":
            raise CertError("VCEK: public key is not ECDSA P-384")
        self.public_key = key
        self.tcb = {}
        self.product_name = None
        self.hwid = None
        for tag, _, ecs, ece in fields[6:]:
            if tag == 0xA3:
                self._read_extensions(der, ecs, ece)

    @staticmethod
    def _pss_params(der, alg):
        items = _der_children(der, alg[2], alg[3])
        if not items or items[0][0] != 0x06 or _oid(der[items[0][2]:items[0][3]]) != OID_RSASSA_PSS:
            raise CertError("VCEK: not signed with RSASSA-PSS")
        hash_oid, salt = "1.3.14.3.2.26", 20  # RFC 4055 defaults (SHA-1, 20)
        if len(items) > 1 and items[1][0] == 0x30:
            for tag, _, cs, ce in _der_children(der, items[1][2], items[1][3]):
                if tag == 0xA0:
                    inner = _der_children(der, cs, ce)
                    algo = _der_children(der, inner[0][2], inner[0][3]) if inner else []
                    if algo and algo[0][0] == 0x06:
                        hash_oid = _oid(der[algo[0][2]:algo[0][3]])
                elif tag == 0xA2:
                    inner = _der_children(der, cs, ce)
                    if inner and inner[0][0] == 0x02:
                        salt = _der_int(der[inner[0][2]:inner[0][3]])
        return hash_oid, salt

    def _read_extensions(self, der, cs, ce):
        outer = _der_children(der, cs, ce)
        if not outer or outer[0][0] != 0x30:
            raise CertError("VCEK: malformed extensions")
        for tag, _, xs, xe in _der_children(der, outer[0][2], outer[0][3]):
            parts = _der_children(der, xs, xe)
            if tag != 0x30 or len(parts) < 2 or parts[0][0] != 0x06 or parts[-1][0] != 0x04:
                raise CertError("VCEK: malformed extension")
            oid = _oid(der[parts[0][2]:parts[0][3]])
            value = der[parts[-1][2]:parts[-1][3]]  # OCTET STRING content
            if oid in VCEK_TCB_OIDS:
                vtag, vs, ve = _der_read(value, 0, len(value))
                if vtag != 0x02:
                    raise CertError(f"VCEK: extension {oid} is not an INTEGER")
                spl = _der_int(value[vs:ve])
                if not 0 <= spl <= 255:
                    raise CertError(f"VCEK: extension {oid} out of range: {spl}")
                self.tcb[VCEK_TCB_OIDS[oid]] = spl
            elif oid == OID_PRODUCT_NAME:
                vtag, vs, ve = _der_read(value, 0, len(value))
                self.product_name = value[vs:ve].decode("ascii", "replace")
            elif oid == OID_HWID:
                # Real VCEKs store the raw 64 (Turin: 8) bytes; tolerate an OCTET STRING wrapper.
                if value[:1] == b"\x04" and len(value) > 2:
                    try:
                        vtag, vs, ve = _der_read(value, 0, len(value))
                        if ve == len(value):
                            value = value[vs:ve]
                    except CertError:
                        pass
                self.hwid = bytes(value)

    def product(self):
        """'milan'/'genoa'/'turin' from the productName extension ('Milan-B0'), or None."""
        if not self.product_name:
            return None
        name = self.product_name.split("-")[0].lower()
        return name if name in PRODUCTS else None


# --- parsing caches ----------------------------------------------------------

_lock = threading.Lock()
_vcek_cache = {}      # der -> Vcek
_x509_cache = {}      # der -> cryptography Certificate
_verified = {}        # (issuer der, subject der) -> None (ok) or error text
_CACHE_LIMIT = 4096


def _remember(cache, key, value):
    with _lock:
        if len(cache) >= _CACHE_LIMIT:
            cache.clear()
        cache[key] = value
    return value


def parse_vcek(der):
    hit = _vcek_cache.get(bytes(der))
    if hit is not None:
        return hit
    return _remember(_vcek_cache, bytes(der), Vcek(der))


def _pem_blocks(data):
    """DER bodies of the PEM CERTIFICATE blocks in data."""
    import base64
    out = []
    text = bytes(data).decode("ascii", "replace")
    begin, end = "-----BEGIN CERTIFICATE-----", "-----END CERTIFICATE-----"
    pos = 0
    while True:
        b = text.find(begin, pos)
        if b < 0:
            return out
        e = text.find(end, b)
        if e < 0:
            raise CertError("PEM: unterminated CERTIFICATE block")
        try:
            out.append(base64.b64decode("".join(text[b + len(begin):e].split()), validate=True))
        except ValueError:
            raise CertError("PEM: bad base64 in CERTIFICATE block") from None
        pos = e + len(end)


def load_x509(der):
    hit = _x509_cache.get(der)
    if hit is not None:
        return hit
    from cryptography import x509
    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError as e:
        raise CertError(f"bad certificate: {e}") from None
    return _remember(_x509_cache, der, cert)


def load_pem_certs(data, what="certificate chain"):
    """All certificates of a PEM bundle (ASK then ARK for AMD's cert_chain)."""
    if len(data) > 4 * MAX_CERT_BYTES:
        raise CertError(f"{what}: too large")
    blocks = _pem_blocks(data)
    if not blocks:
        raise CertError(f"{what}: no PEM CERTIFICATE block")
    return [load_x509(der) for der in blocks]


def is_self_signed(cert):
    return cert.subject == cert.issuer


def _pss_verify(public_key, signature, data, hash_oid, salt):
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa
    if not isinstance(public_key, rsa.RSAPublicKey):
        return "issuer key is not RSA"
    if hash_oid != OID_SHA384:
        return f"signature hash is {hash_oid}, expected SHA-384"
    try:
        public_key.verify(signature, data, padding.PSS(padding.MGF1(hashes.SHA384()), salt), hashes.SHA384())
    except InvalidSignature:
        return "RSA-PSS SHA-384 signature does not verify"
    return None


def check_signed_by(subject, issuer):
    """None when issuer (cryptography cert) signed subject (cert or Vcek), else the reason. Cached."""
    sub_der = subject.der if isinstance(subject, Vcek) else der_of(subject)
    key = (der_of(issuer), sub_der)
    if key in _verified:
        return _verified[key]
    if isinstance(subject, Vcek):
        if subject.issuer_der != _subject_der(issuer):
            reason = "issuer name does not match the signer's subject"
        else:
            reason = _pss_verify(issuer.public_key(), subject.signature, subject.tbs,
                                 subject.sig_hash_oid, subject.sig_salt)
    else:
        reason = _x509_signed_by(subject, issuer)
    return _remember(_verified, key, reason)


def _x509_signed_by(subject, issuer):
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric import rsa
    if subject.issuer != issuer.subject:
        return "issuer name does not match the signer's subject"
    if subject.signature_algorithm_oid.dotted_string != OID_RSASSA_PSS:
        return "not signed with RSASSA-PSS"
    if subject.signature_hash_algorithm is None or subject.signature_hash_algorithm.name != "sha384":
        return "signature hash is not SHA-384"
    key = issuer.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        return "issuer key is not RSA"
    try:  # signature_algorithm_parameters is the PSS padding (salt, MGF1) the certificate declares
        key.verify(subject.signature, subject.tbs_certificate_bytes, subject.signature_algorithm_parameters,
                   subject.signature_hash_algorithm)
    except InvalidSignature:
        return "RSA-PSS SHA-384 signature does not verify"
    return None


_der_by_id = {}  # id(cert) -> (cert, der); holding cert keeps its id from being reused


def der_of(cert):
    hit = _der_by_id.get(id(cert))
    if hit is not None and hit[0] is cert:
        return hit[1]
    from cryptography.hazmat.primitives.serialization import Encoding
    der = cert.public_bytes(Encoding.DER)
    _remember(_der_by_id, id(cert), (cert, der))
    return der


_subject_text = {}


def subject_text(cert):
    """The subject as RFC 4514 text (cached: it is part of every verdict line)."""
    hit = _subject_text.get(id(cert))
    if hit is not None and hit[0] is cert:
        return hit[1]
    text = cert.subject.rfc4514_string()
    _remember(_subject_text, id(cert), (cert, text))
    return text


def _subject_der(cert):
    return cert.subject.public_bytes()


def validity_problem(not_before, not_after, now=None):
    now = now or datetime.datetime.now(datetime.timezone.utc)
    if now < not_before:
        return f"not valid before {not_before:%Y-%m-%d}"
    if now > not_after:
        return f"expired on {not_after:%Y-%m-%d}"
    return None


def cert_validity_problem(cert, now=None):
    return validity_problem(cert.not_valid_before_utc, cert.not_valid_after_utc, now)


# --- AMD roots shipped with ocirt -------------------------------------------

_roots_cache = {}


def shipped_roots(product):
    """(ARK, ASK) for a product, from ocirt/kbs/data/amd/<product>/ (public AMD data)."""
    if product not in PRODUCTS:
        raise CertError(f"unknown product {product!r} (expected one of {', '.join(PRODUCTS)})")
    hit = _roots_cache.get(product)
    if hit is None:
        pair = []
        for name in ("ark", "ask"):
            path = os.path.join(DATA_DIR, product, name + ".pem")
            try:
                with open(path, "rb") as f:
                    pair.append(load_pem_certs(f.read(), path)[0])
            except OSError as e:
                raise CertError(f"{path}: {e.strerror}") from None
        hit = _remember(_roots_cache, product, tuple(pair))
    return hit


def product_from_cert_name(cert):
    """'milan' from CN 'ARK-Milan' / 'SEV-Milan'; None if not an AMD name."""
    from cryptography.x509.oid import NameOID
    for attr in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME):
        name = str(attr.value).split("-", 1)[-1].lower()
        if name in PRODUCTS:
            return name
    return None


# --- VCEK lookup: cache directory, KDS -----------------------------------------

def tcb_query(product, tcb):
    """The KDS query string for a decoded TCB dict (bl/tee/snp/ucode[/fmc])."""
    q = f"blSPL={tcb['bl']:02d}&teeSPL={tcb['tee']:02d}&snpSPL={tcb['snp']:02d}&ucodeSPL={tcb['ucode']:02d}"
    if product == "turin":
        q += f"&fmcSPL={tcb['fmc']:02d}"
    return q


def hwid_hex(product, chip_id):
    return (chip_id[:8] if product == "turin" else chip_id).hex()


def vcek_cache_path(cache_dir, product, chip_id, tcb):
    tcb_name = "-".join(f"{k}{tcb[k]}" for k in sorted(tcb))
    return os.path.join(cache_dir, f"vcek-{product}-{hwid_hex(product, chip_id)}-{tcb_name}.der")


def vcek_url(kds_url, product, chip_id, tcb):
    return (f"{kds_url.rstrip('/')}/vcek/v1/{KDS_PRODUCT_NAMES[product]}/{hwid_hex(product, chip_id)}"
            f"?{tcb_query(product, tcb)}")


_vcek_files = {}  # cache file path -> DER read from it


def find_vcek(product, chip_id, tcb, cache_dir=None, kds_url=None, timeout=10):
    """VCEK DER for (chip, TCB): from cache_dir, else downloaded from kds_url
    (and then stored in cache_dir).  Returns (der, where) or raises CertError.

    A file read once is remembered (a VCEK for one chip and TCB never changes; it
    is still parsed and chain-checked as any VCEK), so the cache directory is not
    read on every report."""
    path = vcek_cache_path(cache_dir, product, chip_id, tcb) if cache_dir else None
    if path:
        der = _vcek_files.get(path)
        if der is not None:
            return der, path
        try:
            with open(path, "rb") as f:
                return _remember(_vcek_files, path, f.read(MAX_CERT_BYTES + 1)), path
        except FileNotFoundError:
            pass
        except OSError as e:
            raise CertError(f"{path}: {e.strerror}") from None
    if not kds_url:
        where = f" in {cache_dir}" if cache_dir else ""
        raise CertError(f"no VCEK for chip {hwid_hex(product, chip_id)[:16]}… at {tcb_query(product, tcb)}"
                        f"{where} (give one in the evidence, a cache directory or a KDS URL)")
    import urllib.error
    import urllib.request
    url = vcek_url(kds_url, product, chip_id, tcb)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            der = resp.read(MAX_CERT_BYTES + 1)
    except urllib.error.HTTPError as e:
        raise CertError(f"KDS {url}: HTTP {e.code}") from None
    except (urllib.error.URLError, OSError) as e:
        raise CertError(f"KDS {url}: {getattr(e, 'reason', e)}") from None
    if len(der) > MAX_CERT_BYTES:
        raise CertError(f"KDS {url}: response too large")
    parse_vcek(der)  # never cache garbage
    if path:
        os.makedirs(cache_dir, exist_ok=True)
        tmp = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
        try:
            with open(tmp, "wb") as f:
                f.write(der)
            os.replace(tmp, path)
        except OSError as e:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise CertError(f"{path}: {e.strerror}") from None
    return der, url
