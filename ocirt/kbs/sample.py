"""SAMPLE (software) SEV-SNP evidence: a test key chain and reports it signs.

Nothing here comes from AMD hardware.  It exists so the whole attestation
flow can be developed and tested on machines without SEV-SNP: a generated
"ARK-Sample"/"SEV-Sample" root pair and a "SEV-VCEK-Sample" P-384 leaf laid
out like AMD's (attestation.md §7: RSA-PSS SHA-384 ARK/ASK, P-384 VCEK with
the 1.3.6.1.4.1.3704.1.* TCB extensions), and reports in the real 1184-byte
layout (attestation.md §6) signed by that leaf.  The server refuses evidence
from this chain unless it was started with ``--allow-sample-evidence``.

A chain directory holds ``ark.pem``, ``ask.pem`` (the roots the server
trusts), ``vcek.der`` and ``vcek.key.pem`` (what the sample guest signs with).
"""
import datetime
import os
import struct

REPORT_SIZE = 0x4A0
SIGNED_SIZE = 0x2A0
SAMPLE_PRODUCT = "milan"           # the TCB layout sample reports use
SAMPLE_CHIP_ID = bytes(range(64))  # an obviously fake chip id

# AMD VCEK extension OIDs (attestation.md §7)
_OID_STRUCT_VERSION = "1.3.6.1.4.1.3704.1.1"
_OID_PRODUCT_NAME = "1.3.6.1.4.1.3704.1.2"
_OID_SPL = {"bootloader": "1.3.6.1.4.1.3704.1.3.1", "tee": "1.3.6.1.4.1.3704.1.3.2",
            "snp": "1.3.6.1.4.1.3704.1.3.3", "spl4": "1.3.6.1.4.1.3704.1.3.4", "spl5": "1.3.6.1.4.1.3704.1.3.5",
            "spl6": "1.3.6.1.4.1.3704.1.3.6", "spl7": "1.3.6.1.4.1.3704.1.3.7",
            "microcode": "1.3.6.1.4.1.3704.1.3.8"}
_OID_HWID = "1.3.6.1.4.1.3704.1.4"

# Milan/Genoa TCB_VERSION byte positions (attestation.md §6)
TCB_BYTE = {"bootloader": 0, "tee": 1, "snp": 6, "microcode": 7}
DEFAULT_TCB = {"bootloader": 3, "tee": 0, "snp": 8, "microcode": 115}
DEFAULT_POLICY = 0x30000  # what libkrun launches with: SMT + the must-be-one bit
POLICY_DEBUG = 1 << 19


def tcb_bytes(tcb):
    raw = bytearray(8)
    for name, pos in TCB_BYTE.items():
        raw[pos] = tcb.get(name, 0)
    return bytes(raw)


def _der_integer(value):
    body = value.to_bytes(max(1, (value.bit_length() + 8) // 8), "big")
    return b"\x02" + bytes([len(body)]) + body


def _name(cn):
    from cryptography import x509
    from cryptography.x509.oid import NameOID
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn),
                      x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "ocirt SAMPLE chain, not AMD")])


def _pss():
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding
    return padding.PSS(mgf=padding.MGF1(hashes.SHA384()), salt_length=48)


def _cert(subject, issuer, public_key, signing_key, *, ca, extensions=()):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public_key)
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(days=1))
               .not_valid_after(now + datetime.timedelta(days=3650)))
    if ca:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    for ext in extensions:
        builder = builder.add_extension(ext, critical=False)
    return builder.sign(signing_key, hashes.SHA384(), rsa_padding=_pss())


def make_chain(directory, tcb=None, chip_id=SAMPLE_CHIP_ID, rsa_bits=4096, name="Sample"):
    """Write a fresh SAMPLE ARK → ASK → VCEK chain into ``directory``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    tcb = dict(DEFAULT_TCB, **(tcb or {}))
    ark_key = rsa.generate_private_key(65537, rsa_bits)
    ask_key = rsa.generate_private_key(65537, rsa_bits)
    vcek_key = ec.generate_private_key(ec.SECP384R1())
    ark_name, ask_name = _name(f"ARK-{name}"), _name(f"SEV-{name}")
    ark = _cert(ark_name, ark_name, ark_key.public_key(), ark_key, ca=True)
    ask = _cert(ask_name, ark_name, ask_key.public_key(), ark_key, ca=True)
    amd_ext = [x509.UnrecognizedExtension(x509.ObjectIdentifier(_OID_STRUCT_VERSION), _der_integer(0)),
               x509.UnrecognizedExtension(x509.ObjectIdentifier(_OID_PRODUCT_NAME), b"\x16\x08Milan-B0")]
    amd_ext += [x509.UnrecognizedExtension(x509.ObjectIdentifier(oid), _der_integer(tcb[part]))
                for part, oid in _OID_SPL.items() if part in tcb] + [
                   x509.UnrecognizedExtension(x509.ObjectIdentifier(oid), _der_integer(0))
                   for part, oid in _OID_SPL.items() if part not in tcb]
    # hwID is the raw chip id, not wrapped in an OCTET STRING (as in real VCEKs)
    amd_ext.append(x509.UnrecognizedExtension(x509.ObjectIdentifier(_OID_HWID), chip_id))
    vcek = _cert(_name(f"SEV-VCEK-{name}"), ask_name, vcek_key.public_key(), ask_key, ca=False,
                 extensions=amd_ext)
    os.makedirs(directory, exist_ok=True)
    pem = serialization.Encoding.PEM
    files = {
        "ark.pem": ark.public_bytes(pem),
        "ask.pem": ask.public_bytes(pem),
        "cert_chain.pem": ask.public_bytes(pem) + ark.public_bytes(pem),  # KDS order: ASK then ARK
        "vcek.der": vcek.public_bytes(serialization.Encoding.DER),
        "vcek.key.pem": vcek_key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()),
    }
    for fname, data in files.items():
        path = os.path.join(directory, fname)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if fname.endswith("key.pem") else 0o644)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
    return directory


def build_report(report_data, measurement, *, policy=DEFAULT_POLICY, tcb=None, chip_id=SAMPLE_CHIP_ID,
                 version=2, vmpl=0):
    """An unsigned 1184-byte report with the fields the verifier looks at."""
    if len(report_data) != 64 or len(measurement) != 48:
        raise ValueError("report_data must be 64 bytes and measurement 48 bytes")
    tcb = tcb_bytes(dict(DEFAULT_TCB, **(tcb or {})))
    r = bytearray(REPORT_SIZE)
    struct.pack_into("<IIQ", r, 0x000, version, 0, policy)
    struct.pack_into("<II", r, 0x030, vmpl, 1)           # signature_algo 1 = ECDSA P-384 SHA-384
    r[0x038:0x040] = tcb                                  # current_tcb
    r[0x050:0x090] = report_data
    r[0x090:0x0C0] = measurement
    r[0x140:0x160] = os.urandom(32)                       # report_id
    r[0x180:0x188] = tcb                                  # reported_tcb
    r[0x1A0:0x1E0] = chip_id.ljust(64, b"\0")
    r[0x1E0:0x1E8] = tcb                                  # committed_tcb
    r[0x1F0:0x1F8] = tcb                                  # launch_tcb
    return bytes(r)


def sign_report(report, vcek_key):
    """Put the VCEK's ECDSA P-384 signature (little-endian R, S) into ``report``."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
    r, s = decode_dss_signature(vcek_key.sign(report[:SIGNED_SIZE], ec.ECDSA(hashes.SHA384())))
    out = bytearray(report)
    out[SIGNED_SIZE:] = bytes(REPORT_SIZE - SIGNED_SIZE)
    out[0x2A0:0x2A0 + 72] = r.to_bytes(72, "little")
    out[0x2E8:0x2E8 + 72] = s.to_bytes(72, "little")
    return bytes(out)


def load_vcek_key(directory):
    from cryptography.hazmat.primitives import serialization
    with open(os.path.join(directory, "vcek.key.pem"), "rb") as f:
        return serialization.load_pem_private_key(f.read(), None)
