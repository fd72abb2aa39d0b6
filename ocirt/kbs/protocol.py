"""The reference-kbs wire protocol under /kbs/v0, shared by server and guest.

Formats follow attestation.md §1 (virtee/reference-kbs with kbs-types 0.2.0)
and §2 (libkrun's historic guest client), which is what `buildah mkcw`
images and libkrun guests speak:

* ``POST auth``    ``{"extra-params":"{\\"workload_id\\":\\"<wid>\\"}","tee":"snp","version":"0.0.0"}``
                   → cookie ``session_id`` and ``{"nonce":"<session id>","extra-params":""}``
* ``POST attest``  ``{"tee-pubkey":{"alg":"RSA","k-mod":b64,"k-exp":b64},"tee-evidence":"<JSON string>"}``
                   with tee-evidence ``{"gen":"milan","report":"<HEX>","cert_chain":"[]"}``
* ``GET key/<id>`` → a JSON string: hex of RSA-PKCS#1-v1.5(passphrase) under the TEE key.

Only the standard library is imported at module level: the guest client and
the server's hot path both load this module.
"""
import base64
import binascii
import hashlib
import json

PREFIX = "/kbs/v0"
SESSION_COOKIE = "session_id"
PROTOCOL_VERSION = "0.0.0"
REPORT_SIZE = 1184
SAMPLE_TEE = "sample"  # software evidence from ocirt.kbs.sample; never real hardware
SNP_GENERATIONS = ("milan", "genoa", "turin")
WORKLOAD_ID_MAX = 256
PASSPHRASE_MAX = 4096
MIN_RSA_BITS, MAX_RSA_BITS = 2048, 8192


class ProtocolError(ValueError):
    """A request does not follow the protocol; the message says which field."""


def compact(obj):
    return json.dumps(obj, separators=(",", ":"), sort_keys=True)


def b64_uint(value):
    """Standard base64 of an unsigned integer's minimal big-endian bytes."""
    return base64.b64encode(value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big")).decode()


def binding_hash(nonce, k_mod_b64, k_exp_b64):
    """report_data the TEE must present: SHA-512(nonce ‖ b64 n ‖ b64 e) (attestation.md §1)."""
    return hashlib.sha512(nonce.encode() + k_mod_b64.encode() + k_exp_b64.encode()).digest()


# --- building requests (guest side) ----------------------------------------

def auth_request(workload_id, tee="snp"):
    return compact({"extra-params": compact({"workload_id": workload_id}), "tee": tee,
                    "version": PROTOCOL_VERSION}).encode()


def attest_request(k_mod_b64, k_exp_b64, gen, report, cert_chain="[]"):
    evidence = json.dumps({"gen": gen, "report": report.hex().upper(), "cert_chain": cert_chain},
                          separators=(",", ":"))
    return json.dumps({"tee-pubkey": {"alg": "RSA", "k-mod": k_mod_b64, "k-exp": k_exp_b64},
                       "tee-evidence": evidence}, separators=(",", ":")).encode()


# --- parsing requests (server side) -----------------------------------------

def _load_object(body, what):
    try:
        obj = json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise ProtocolError(f"{what}: body is not valid JSON ({e})") from None
    if not isinstance(obj, dict):
        raise ProtocolError(f"{what}: body must be a JSON object")
    return obj


def _string(obj, key, what, *, max_len=None, required=True):
    value = obj.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise ProtocolError(f"{what}: field {key!r} must be a string")
    if max_len is not None and len(value) > max_len:
        raise ProtocolError(f"{what}: field {key!r} is longer than {max_len} characters")
    return value


def check_workload_id(wid, what="workload_id"):
    if not isinstance(wid, str) or not wid or len(wid) > WORKLOAD_ID_MAX or not wid.isprintable() or "/" in wid:
        raise ProtocolError(f"{what}: must be 1..{WORKLOAD_ID_MAX} printable characters without '/'")
    return wid


def parse_auth(body):
    """→ (tee, workload_id) from a kbs-types 0.2 Request."""
    obj = _load_object(body, "auth")
    tee = _string(obj, "tee", "auth", max_len=32)
    _string(obj, "version", "auth", max_len=32)
    extra = _string(obj, "extra-params", "auth", max_len=4096)
    if tee == "sev":
        raise ProtocolError("auth: tee 'sev' (SEV/SEV-ES pre-attestation) is not supported; use SEV-SNP")
    if tee not in ("snp", SAMPLE_TEE):
        raise ProtocolError(f"auth: unknown tee {tee!r} (expected 'snp')")
    try:
        params = json.loads(extra)
    except ValueError:
        raise ProtocolError("auth: extra-params must be a JSON string holding {\"workload_id\": ...}") from None
    if not isinstance(params, dict):
        raise ProtocolError("auth: extra-params must hold a JSON object")
    return tee, check_workload_id(params.get("workload_id"), "auth: extra-params.workload_id")


class Attestation:
    __slots__ = ("k_mod", "k_exp", "gen", "report", "cert_chain")

    def __init__(self, k_mod, k_exp, gen, report, cert_chain):
        self.k_mod, self.k_exp, self.gen, self.report, self.cert_chain = k_mod, k_exp, gen, report, cert_chain


def _b64(value, what):
    """Strict standard base64 (no other characters, correct padding)."""
    try:
        return binascii.a2b_base64(value.encode("ascii") if isinstance(value, str) else value, strict_mode=True)
    except (binascii.Error, ValueError):
        raise ProtocolError(f"attest: {what} is not standard base64") from None


def parse_attest(body):
    obj = _load_object(body, "attest")
    key = obj.get("tee-pubkey")
    if not isinstance(key, dict):
        raise ProtocolError("attest: field 'tee-pubkey' must be an object")
    alg = _string(key, "alg", "attest: tee-pubkey", max_len=16)
    if alg.upper() != "RSA":
        raise ProtocolError(f"attest: tee-pubkey.alg {alg!r} is not supported (expected 'RSA')")
    k_mod = _string(key, "k-mod", "attest: tee-pubkey", max_len=2048)
    k_exp = _string(key, "k-exp", "attest: tee-pubkey", max_len=16)
    n, e = int.from_bytes(_b64(k_mod, "tee-pubkey.k-mod"), "big"), int.from_bytes(_b64(k_exp, "tee-pubkey.k-exp"), "big")
    if not MIN_RSA_BITS <= n.bit_length() <= MAX_RSA_BITS or not 3 <= e < 1 << 32 or e % 2 == 0 or n % 2 == 0:
        raise ProtocolError(f"attest: tee-pubkey must be an RSA key of {MIN_RSA_BITS}..{MAX_RSA_BITS} bits "
                            "with an odd exponent of 3..2^32-1")
    evidence_text = _string(obj, "tee-evidence", "attest", max_len=64 * 1024)
    try:
        evidence = json.loads(evidence_text)
    except ValueError:
        raise ProtocolError("attest: tee-evidence must be a JSON string holding {\"gen\",\"report\",\"cert_chain\"}") from None
    if not isinstance(evidence, dict):
        raise ProtocolError("attest: tee-evidence must hold a JSON object")
    gen = _string(evidence, "gen", "attest: tee-evidence", max_len=16).lower()
    report_hex = _string(evidence, "report", "attest: tee-evidence", max_len=2 * REPORT_SIZE)
    try:
        report = bytes.fromhex(report_hex)  # the libkrun client sends uppercase; accept either case
    except ValueError:
        raise ProtocolError("attest: tee-evidence.report is not hex") from None
    if len(report) != REPORT_SIZE:
        raise ProtocolError(f"attest: tee-evidence.report is {len(report)} bytes, expected {REPORT_SIZE}")
    chain = evidence.get("cert_chain", "[]")
    return Attestation(k_mod, k_exp, gen, report, parse_cert_chain(chain))


def parse_cert_chain(chain):
    """The VCEK from tee-evidence.cert_chain, if the guest sent one.

    libkrun sends the string ``"[]"``.  We also accept a JSON list (or its
    string form) of ``{"cert_type": "vcek", "data": <base64 DER>}`` entries,
    the shape of an extended report's certificate table, or bare base64 DER
    strings; the first entry is taken as the VCEK.
    """
    if isinstance(chain, str):
        if chain == "[]" or not chain.strip():  # "[]": what libkrun sends
            return None
        try:
            chain = json.loads(chain)
        except ValueError:
            raise ProtocolError("attest: tee-evidence.cert_chain is not JSON") from None
    if not isinstance(chain, list):
        raise ProtocolError("attest: tee-evidence.cert_chain must be a list")
    for entry in chain:
        if isinstance(entry, dict):
            if str(entry.get("cert_type", "")).lower() not in ("vcek", "vlek"):
                continue
            entry = entry.get("data")
        if isinstance(entry, list) and all(isinstance(b, int) and 0 <= b < 256 for b in entry):
            return bytes(entry)
        if isinstance(entry, str):
            return _b64(entry, "tee-evidence.cert_chain entry")
        raise ProtocolError("attest: tee-evidence.cert_chain entries must be base64 DER certificates")
    return None


def parse_registration(body):
    """register_workload body → dict with validated fields.

    The reference-kbs fields (``workload_id``, ``launch_measurement``,
    ``tee_config``, ``passphrase``) plus two optional ocirt extensions:
    ``allow_debug`` (bool) and ``min_tcb`` (``{"bootloader","tee","snp","microcode"[,"fmc"]}``).
    """
    obj = _load_object(body, "register_workload")
    wid = check_workload_id(obj.get("workload_id"), "register_workload: workload_id")
    measurement = _string(obj, "launch_measurement", "register_workload", max_len=256)
    try:
        digest = bytes.fromhex(measurement)
    except ValueError:
        raise ProtocolError("register_workload: launch_measurement is not hex") from None
    if len(digest) not in (0, 48):
        raise ProtocolError("register_workload: launch_measurement must be 96 hex characters (SNP, SHA-384)")
    tee_config = _string(obj, "tee_config", "register_workload", max_len=4096, required=False) or ""
    passphrase = _string(obj, "passphrase", "register_workload", max_len=PASSPHRASE_MAX)
    if not passphrase:
        raise ProtocolError("register_workload: passphrase must not be empty")
    allow_debug = obj.get("allow_debug", False)
    if not isinstance(allow_debug, bool):
        raise ProtocolError("register_workload: allow_debug must be true or false")
    min_tcb = parse_min_tcb(obj.get("min_tcb"), "register_workload: min_tcb")
    return {"workload_id": wid, "launch_measurement": digest.hex(), "tee_config": tee_config,
            "passphrase": passphrase, "allow_debug": allow_debug, "min_tcb": min_tcb}


TCB_PARTS = ("bootloader", "tee", "snp", "microcode", "fmc")
_TCB_ALIASES = {"bl": "bootloader", "ucode": "microcode"}  # ocirt.kbs.snp's short names


def parse_min_tcb(value, what):
    if value is None:
        return None
    if isinstance(value, str):  # "bootloader=3,tee=0,snp=8,microcode=115" from the command line
        try:
            value = {k.strip(): int(v) for k, v in (item.split("=", 1) for item in value.split(",") if item.strip())}
        except ValueError:
            raise ProtocolError(f"{what}: expected name=number[,name=number...]") from None
    if not isinstance(value, dict) or not value:
        raise ProtocolError(f"{what}: must be an object of TCB parts")
    value = {_TCB_ALIASES.get(k, k): v for k, v in value.items()}
    for k, v in value.items():
        if k not in TCB_PARTS:
            raise ProtocolError(f"{what}: unknown TCB part {k!r} (expected one of {', '.join(TCB_PARTS)})")
        if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= 255:
            raise ProtocolError(f"{what}: {k} must be an integer 0..255")
    return dict(value)
