"""Evidence providers for the guest side of ``ocirt-kbs unlock``.

A provider turns the 64-byte report_data (the nonce/key binding) into an
SEV-SNP attestation report.  Three exist:

* ``tsm``       — configfs-tsm (``/sys/kernel/config/tsm/report``), the
                  current kernel interface; also yields the host-provided
                  VCEK from ``auxblob`` when the host supplies certificates;
* ``sev-guest`` — the ``SNP_GET_REPORT`` ioctl on ``/dev/sev-guest``
                  (Linux uapi ``sev-guest.h``; attestation.md §2), what
                  libkrun's historic client used;
* ``sample``    — SOFTWARE evidence signed by an ``ocirt.kbs.sample`` test
                  chain.  It proves nothing; it announces itself as tee
                  ``sample`` / gen ``sample`` and the server refuses it
                  unless started with ``--allow-sample-evidence``.
"""
import base64
import json
import os
import struct

from ocirt.errors import OcirtError

REPORT_SIZE = 1184
TSM_REPORT_DIR = "/sys/kernel/config/tsm/report"
SEV_GUEST_DEVICE = "/dev/sev-guest"
# GUID of the VCEK entry in the SNP extended-report certificate table (GHCB spec, "certificate table")
VCEK_GUID = bytes.fromhex("63da758de6644564adc5f4b93be8accd")


class Provider:
    tee = "snp"

    def __init__(self, gen="milan"):
        self.gen = gen
        self.vcek = None  # DER, when the platform hands it out with the report

    def report(self, report_data):
        raise NotImplementedError

    def cert_chain(self):
        """tee-evidence.cert_chain: libkrun's ``"[]"``, or the VCEK if we have one."""
        if self.vcek is None:
            return "[]"
        return json.dumps([{"cert_type": "vcek", "data": base64.b64encode(self.vcek).decode()}])


def parse_cert_table(blob):
    """The VCEK from an extended-report certificate table, or None.

    Entries are ``{guid[16], u32 offset, u32 length}`` up to an all-zero entry;
    offsets are relative to the table start.
    """
    pos = 0
    while pos + 24 <= len(blob):
        guid = blob[pos:pos + 16]
        offset, length = struct.unpack_from("<II", blob, pos + 16)
        if guid == bytes(16):
            return None
        if guid == VCEK_GUID and offset + length <= len(blob):
            return bytes(blob[offset:offset + length])
        pos += 24
    return None


class TsmProvider(Provider):
    """configfs-tsm: mkdir an entry, write inblob, read outblob, rmdir."""

    def __init__(self, gen="milan", root=TSM_REPORT_DIR):
        super().__init__(gen)
        self.root = root

    def report(self, report_data):
        entry = os.path.join(self.root, f"ocirt-kbs-{os.getpid()}")
        try:
            os.mkdir(entry)
        except OSError as e:
            raise OcirtError(f"{entry}: cannot create a configfs-tsm report entry: {e.strerror}") from None
        try:
            with open(os.path.join(entry, "inblob"), "wb") as f:
                f.write(report_data)
            with open(os.path.join(entry, "outblob"), "rb") as f:
                report = f.read()
            try:
                with open(os.path.join(entry, "provider")) as f:
                    provider = f.read().strip()
            except OSError:
                provider = "sev_guest"
            if provider not in ("sev_guest", "sev-guest"):
                raise OcirtError(f"{entry}: configfs-tsm provider is {provider!r}, not an SEV-SNP guest")
            try:
                with open(os.path.join(entry, "auxblob"), "rb") as f:
                    self.vcek = parse_cert_table(f.read())
            except OSError:
                pass
        except OSError as e:
            raise OcirtError(f"{entry}: configfs-tsm report failed: {e.strerror}") from None
        finally:
            try:
                os.rmdir(entry)
            except OSError:
                pass
        if len(report) < REPORT_SIZE:
            raise OcirtError(f"{entry}/outblob: {len(report)} bytes, expected an SNP report of {REPORT_SIZE}")
        return report[:REPORT_SIZE]


# struct snp_report_req / snp_report_resp / snp_guest_request_ioctl (Linux uapi sev-guest.h,
# attestation.md §2).  Declared for cffi's ABI mode: the layout is computed by cffi,
# not by hand.
_SEV_GUEST_CDEF = """
struct snp_report_req { uint8_t user_data[64]; uint32_t vmpl; uint8_t rsvd[28]; };
struct snp_report_resp { uint8_t data[4000]; };
struct snp_guest_request_ioctl { uint8_t msg_version; uint64_t req_data; uint64_t resp_data; uint64_t exitinfo2; };
int ioctl(int fd, unsigned long request, ...);
"""


def snp_get_report_request_code(ffi=None):
    """SNP_GET_REPORT = _IOWR('S', 0x0, struct snp_guest_request_ioctl).

    Taken from the compiled libc binding when it declares it; otherwise built
    with the generic Linux _IOC encoding (dir:2 | size:14 | type:8 | nr:8),
    which the test suite checks against the C header.
    """
    try:
        from ocirt.linux import _libc
        return _libc.lib.SNP_GET_REPORT
    except (ImportError, AttributeError):
        pass
    if ffi is None:
        import cffi
        ffi = cffi.FFI()
        ffi.cdef(_SEV_GUEST_CDEF)
    ioc_read_write = 3
    return (ioc_read_write << 30) | (ffi.sizeof("struct snp_guest_request_ioctl") << 16) | (ord("S") << 8) | 0x0


class SevGuestProvider(Provider):
    def __init__(self, gen="milan", device=SEV_GUEST_DEVICE, vmpl=0):
        super().__init__(gen)
        self.device, self.vmpl = device, vmpl

    def report(self, report_data):
        import cffi
        ffi = cffi.FFI()
        ffi.cdef(_SEV_GUEST_CDEF)
        libc = ffi.dlopen(None)
        req = ffi.new("struct snp_report_req *")
        ffi.memmove(req.user_data, report_data, 64)
        req.vmpl = self.vmpl
        resp = ffi.new("struct snp_report_resp *")
        arg = ffi.new("struct snp_guest_request_ioctl *")
        arg.msg_version = 1
        arg.req_data = int(ffi.cast("uintptr_t", req))
        arg.resp_data = int(ffi.cast("uintptr_t", resp))
        try:
            fd = os.open(self.device, os.O_RDWR | os.O_CLOEXEC)
        except OSError as e:
            raise OcirtError(f"{self.device}: {e.strerror}") from None
        try:
            rc = libc.ioctl(fd, ffi.cast("unsigned long", snp_get_report_request_code(ffi)),
                            ffi.cast("struct snp_guest_request_ioctl *", arg))
            err = ffi.errno
        finally:
            os.close(fd)
        if rc != 0:
            fw, vmm = arg.exitinfo2 & 0xFFFFFFFF, arg.exitinfo2 >> 32
            raise OcirtError(f"{self.device}: SNP_GET_REPORT failed: {os.strerror(err)} "
                             f"(firmware error {fw:#x}, VMM error {vmm:#x})")
        data = bytes(ffi.buffer(resp.data))
        status, size = struct.unpack_from("<II", data, 0)  # {u32 status; u32 report_size; u8 rsvd[24]; report}
        if status != 0 or size < REPORT_SIZE:
            raise OcirtError(f"{self.device}: SNP_GET_REPORT returned status {status:#x}, report size {size}")
        return data[32:32 + REPORT_SIZE]


class SampleProvider(Provider):
    """SOFTWARE evidence for development: signs reports with a sample chain's VCEK key."""
    tee = "sample"

    def __init__(self, chain_dir, measurement, policy=None, tcb=None):
        super().__init__("sample")
        from ocirt.kbs import sample
        self._sample = sample
        try:
            self._key = sample.load_vcek_key(chain_dir)
            with open(os.path.join(chain_dir, "vcek.der"), "rb") as f:
                self.vcek = f.read()
        except OSError as e:
            raise OcirtError(f"sample evidence: {e.filename}: {e.strerror} "
                             "(make a chain with `ocirt-kbs sample-chain DIR`)") from None
        self.measurement = measurement
        self.policy = sample.DEFAULT_POLICY if policy is None else policy
        self.tcb = tcb

    def report(self, report_data):
        s = self._sample
        return s.sign_report(s.build_report(report_data, self.measurement, policy=self.policy, tcb=self.tcb),
                             self._key)


def select(name, gen="milan", sample_chain=None, sample_measurement=None):
    """The provider called ``name``; ``auto`` prefers configfs-tsm, then /dev/sev-guest."""
    if name == "sample":
        if not sample_chain or sample_measurement is None:
            raise OcirtError("sample evidence needs --sample-chain DIR and --sample-measurement HEX")
        return SampleProvider(sample_chain, sample_measurement)
    if name == "tsm" or (name == "auto" and os.path.isdir(TSM_REPORT_DIR)):
        return TsmProvider(gen)
    if name == "sev-guest" or (name == "auto" and os.path.exists(SEV_GUEST_DEVICE)):
        return SevGuestProvider(gen)
    if name == "auto":
        raise OcirtError(f"no SEV-SNP evidence source: neither {TSM_REPORT_DIR} nor {SEV_GUEST_DEVICE} exists "
                         "(not running in an SEV-SNP guest?)")
    raise OcirtError(f"unknown evidence provider {name!r} (expected auto, tsm, sev-guest or sample)")
