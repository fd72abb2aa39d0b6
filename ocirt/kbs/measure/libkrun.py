"""Launch measurement of a libkrun SEV / SEV-ES / SEV-SNP guest.

libkrun boots the kernel, initrd and qboot firmware that libkrunfw-sev
exports (``krunfw_get_kernel``, ``krunfw_get_initrd``, ``krunfw_get_qboot``)
and measures them in a fixed order (../shared/reference/attestation.md §9.3,
after libkrunfw utils/krunfw_measurement.c and libkrun's SNP launcher):

1. NORMAL pages: qboot at 0xFFFF0000, the kernel at its load address, the
   initrd at 0xA00000, the boot_params "zero page" (4096 B) at 0x7000;
2. ZERO 0x0 (1 page), SECRETS 0x5000, CPUID 0x6000, ZERO 0x8000-0xEFFF;
3. one VMSA for the boot vCPU, then one per application vCPU.

So the digest depends only on the libkrunfw-sev build, the vCPU count and
the RAM size (boot_params carries both: hdr.syssize = cpus, and the e820 map).

What could NOT be verified here (no libkrunfw-sev, no SEV hardware): the
exact VMSA images libkrun uses for SNP (libkrunfw ships them precomputed as
``SNP_VMSA_BP``/``SNP_VMSA_AP`` in utils/vmsa.h).  The defaults below rebuild
the register state of libkrunfw's SEV-ES dumps (``VMSA_BP``/``VMSA_AP``)
with SEV_FEATURES set for SNP; pass ``vmsa_bp``/``vmsa_ap`` (4096-byte dumps)
to use the exact images.  ``default_vmsas_verified`` stays False until a
digest from real hardware confirms them.
"""
import hashlib
import os
import struct

from ocirt.errors import OcirtError
from ocirt.kbs.measure.gctx import PAGE_CPUID, PAGE_SECRETS, PAGE_SIZE, PAGE_ZERO, LaunchDigest
from ocirt.kbs.measure.vmsa import build_vmsa

QBOOT_GPA = 0xFFFF0000
INITRD_GPA = 0xA00000
BOOT_PARAMS_GPA = 0x7000
CMDLINE_GPA = 0x20000
CMDLINE_SIZE = 0x200
LIDT_GPA, SECRETS_GPA, CPUID_GPA = 0x0, 0x5000, 0x6000
FWDATA_GPA, FWDATA_SIZE = 0x8000, 0x7000

EBDA_START = 0x9FC00
HIMEM_START = 0x100000
MMIO_MEM_START = 0xD0000000
FIRST_ADDR_PAST_32BITS = 1 << 32
E820_RAM = 1

default_vmsas_verified = False
MAX_BLOB = 1 << 30


class LibkrunfwError(OcirtError):
    pass


_CDEF = """
char *krunfw_get_kernel(size_t *load_addr, size_t *entry_addr, size_t *size);
char *krunfw_get_initrd(size_t *size);
char *krunfw_get_qboot(size_t *size);
"""
_NOT_SET = 0xA5A5A5A5A5A5A5A5


def load_payload(path):
    """(qboot, kernel, kernel_load_addr, initrd) from a libkrunfw-sev library.

    libkrunfw's krunfw_get_kernel gained an entry_addr argument in newer
    releases (load_addr, entry_addr, size) vs. older (load_addr, size).  It
    is called with three pointers, the third preset to a marker: an old
    library never writes it and leaves the size in the second slot.
    """
    import cffi
    ffi = cffi.FFI()
    ffi.cdef(_CDEF)
    try:
        lib = ffi.dlopen(os.fspath(path))
    except OSError as e:
        raise LibkrunfwError(f"libkrunfw: cannot load {path}: {e}") from None

    def call(name, *args):
        try:
            fn = getattr(lib, name)
        except AttributeError:
            raise LibkrunfwError(f"libkrunfw {path}: no symbol {name} (is this a libkrunfw-sev build?)") from None
        return fn(*args)

    def sized(name):
        size = ffi.new("size_t *")
        ptr = call(name, size)
        return _copy(ffi, ptr, size[0], name)

    load, second, third = ffi.new("size_t *"), ffi.new("size_t *"), ffi.new("size_t *", _NOT_SET)
    ptr = call("krunfw_get_kernel", load, second, third)
    kernel_size = second[0] if third[0] == _NOT_SET else third[0]
    kernel = _copy(ffi, ptr, kernel_size, "krunfw_get_kernel")
    if load[0] % PAGE_SIZE:
        raise LibkrunfwError(f"libkrunfw {path}: kernel load address 0x{load[0]:x} is not page aligned")
    return sized("krunfw_get_qboot"), kernel, load[0], sized("krunfw_get_initrd")


def _copy(ffi, ptr, size, what):
    if ptr == ffi.NULL:
        raise LibkrunfwError(f"libkrunfw: {what} returned NULL")
    if size > MAX_BLOB:
        raise LibkrunfwError(f"libkrunfw: {what} size {size} is implausible")
    return bytes(ffi.buffer(ptr, size))


def boot_params(cpus, ram_mib, initrd_size):
    """The 4 KiB Linux boot_params libkrun measures (x86 boot protocol offsets:
    e820_entries 0x1E8, setup_header at 0x1F1, e820_table 0x2D0)."""
    bp = bytearray(PAGE_SIZE)
    struct.pack_into("<I", bp, 0x1F4, cpus)             # hdr.syssize: libkrun stores the vCPU count here
    struct.pack_into("<H", bp, 0x1FE, 0xAA55)           # hdr.boot_flag
    struct.pack_into("<I", bp, 0x202, 0x53726448)       # hdr.header "HdrS"
    bp[0x210] = 0xFF                                    # hdr.type_of_loader: undefined loader
    struct.pack_into("<I", bp, 0x218, INITRD_GPA)       # hdr.ramdisk_image
    struct.pack_into("<I", bp, 0x21C, initrd_size)      # hdr.ramdisk_size
    struct.pack_into("<I", bp, 0x228, CMDLINE_GPA)      # hdr.cmd_line_ptr
    struct.pack_into("<I", bp, 0x230, 0x1000000)        # hdr.kernel_alignment
    struct.pack_into("<I", bp, 0x238, CMDLINE_SIZE)     # hdr.cmdline_size
    mem = ram_mib << 20
    # libkrun's map (sizes "+ 1" as libkrun computes them).
    e820 = [(0, EBDA_START)]
    if mem <= MMIO_MEM_START:
        e820.append((HIMEM_START, mem - HIMEM_START + 1))
    else:
        e820.append((HIMEM_START, MMIO_MEM_START - HIMEM_START))
        e820.append((FIRST_ADDR_PAST_32BITS, mem - MMIO_MEM_START + 1))
    for i, (addr, size) in enumerate(e820):
        struct.pack_into("<QQI", bp, 0x2D0 + 20 * i, addr, size, E820_RAM)
    bp[0x1E8] = len(e820)
    return bytes(bp)


def default_vmsas(sev_features):
    """(BSP, AP) VMSA pages: the register state of libkrunfw's SEV-ES dumps
    (unverified for SNP: see the module docstring)."""
    data = (0, 0x93, 0xFFFF, 0)
    common_segments = {"es": data, "ss": (0, 0x92, 0xFFFF, 0), "ds": data, "fs": data, "gs": data,
                       "gdtr": (0, 0, 0xFFFF, 0), "idtr": (0, 0, 0xFFFF, 0), "ldtr": (0, 0x82, 0xFFFF, 0),
                       "tr": (0, 0x83, 0xFFFF, 0)}
    common_regs = {"efer": 0x1000, "cr4": 0x40, "cr0": 0x10, "dr7": 0x400, "dr6": 0xFFFF0FF0, "rflags": 0x2,
                   "g_pat": 0x0007040600070406, "xcr0": 0x1, "sev_features": sev_features}
    bsp = build_vmsa(dict(common_segments, cs=(0xF000, 0x9A, 0xFFFF, 0xFFFF0000)),
                     dict(common_regs, rip=0xFFF0, rsp=0x8FF0, rbp=0x8FF0, rsi=BOOT_PARAMS_GPA))
    ap = build_vmsa(dict(common_segments, cs=(0x9100, 0x9A, 0xFFFF, 0x91000)), dict(common_regs, rip=0))
    return bsp, ap


def _check(cpus, ram_mib):
    if not isinstance(cpus, int) or not 1 <= cpus <= 255:
        raise LibkrunfwError(f"cpus must be 1..255, got {cpus!r}")
    if not isinstance(ram_mib, int) or not 2 <= ram_mib <= (1 << 24):
        raise LibkrunfwError(f"ram_mib must be 2..16777216, got {ram_mib!r}")


def _vmsa_arg(value, what):
    if value is None:
        return None
    if not isinstance(value, (bytes, bytearray)):
        try:
            with open(os.fspath(value), "rb") as f:
                value = f.read(PAGE_SIZE + 1)
        except OSError as e:
            raise LibkrunfwError(f"{what} {value}: {e.strerror}") from None
    if len(value) != PAGE_SIZE:
        raise LibkrunfwError(f"{what}: a VMSA image is {PAGE_SIZE} bytes, got {len(value)}")
    return bytes(value)


def snp_pages(payload, cpus, ram_mib, vmsa_bp=None, vmsa_ap=None, sev_features=0x1, record=True):
    """Run the libkrun page sequence over a (qboot, kernel, load_addr, initrd)
    payload; returns the LaunchDigest (its .pages lists (type, gpa))."""
    _check(cpus, ram_mib)
    qboot, kernel, load_addr, initrd = payload
    bsp_default, ap_default = default_vmsas(sev_features)
    bsp = _vmsa_arg(vmsa_bp, "vmsa_bp") or bsp_default
    ap = _vmsa_arg(vmsa_ap, "vmsa_ap") or ap_default
    ld = LaunchDigest(record=record)
    ld.add_data(QBOOT_GPA, qboot)
    ld.add_data(load_addr, kernel)
    ld.add_data(INITRD_GPA, initrd)
    ld.add_data(BOOT_PARAMS_GPA, boot_params(cpus, ram_mib, len(initrd)))
    ld.add_empty(PAGE_ZERO, LIDT_GPA, PAGE_SIZE)
    ld.add_empty(PAGE_SECRETS, SECRETS_GPA, PAGE_SIZE)
    ld.add_empty(PAGE_CPUID, CPUID_GPA, PAGE_SIZE)
    ld.add_empty(PAGE_ZERO, FWDATA_GPA, FWDATA_SIZE)
    ld.add_vmsa(bsp)
    for _ in range(cpus - 1):
        ld.add_vmsa(ap)
    return ld


def launch_digest(libkrunfw_path, cpus, ram_mib, mode="snp", vmsa_bp=None, vmsa_ap=None, sev_features=0x1):
    """The launch digest of a libkrun guest: 48 bytes for mode "snp", 32 for
    "sev" / "seves" (SHA-256 of qboot ‖ kernel ‖ initrd ‖ boot_params
    [‖ VMSA_BP ‖ VMSA_AP × (cpus-1)]; reference-kbs checks it via LAUNCH_MEASURE)."""
    _check(cpus, ram_mib)
    payload = load_payload(libkrunfw_path)
    if mode == "snp":
        return snp_pages(payload, cpus, ram_mib, vmsa_bp, vmsa_ap, sev_features, record=False).digest()
    if mode not in ("sev", "seves"):
        raise LibkrunfwError(f"unknown mode {mode!r} (snp, seves or sev)")
    qboot, kernel, _, initrd = payload
    h = hashlib.sha256()
    for blob in (qboot, kernel, initrd, boot_params(cpus, ram_mib, len(initrd))):
        h.update(blob)
    if mode == "seves":
        bsp_default, ap_default = default_vmsas(0)
        bsp = _vmsa_arg(vmsa_bp, "vmsa_bp") or bsp_default
        ap = _vmsa_arg(vmsa_ap, "vmsa_ap") or ap_default
        h.update(bsp)
        for _ in range(cpus - 1):
            h.update(ap)
    return h.digest()
