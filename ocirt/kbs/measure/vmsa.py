"""VMSA pages (the SEV-ES save area, AMD APM vol. 2 table B-4) for launch digests.

Only the fields that initial vCPU state sets are modelled; the offsets are
those of the save area layout (``struct sev_es_save_area`` in Linux
arch/x86/include/asm/svm.h).  Everything else in the 4 KiB page is zero.
"""
import struct

PAGE_SIZE = 4096

# name -> (offset, struct format)
_SEGMENTS = ("es", "cs", "ss", "ds", "fs", "gs", "gdtr", "ldtr", "idtr", "tr")
_SEGMENT = struct.Struct("<HHIQ")  # selector, attrib, limit, base
_REGISTERS = {
    "efer": (0x0D0, "Q"), "cr4": (0x148, "Q"), "cr3": (0x150, "Q"), "cr0": (0x158, "Q"),
    "dr7": (0x160, "Q"), "dr6": (0x168, "Q"), "rflags": (0x170, "Q"), "rip": (0x178, "Q"),
    "rsp": (0x1D8, "Q"), "rax": (0x1F8, "Q"), "g_pat": (0x268, "Q"),
    "rcx": (0x308, "Q"), "rdx": (0x310, "Q"), "rbx": (0x318, "Q"), "rbp": (0x328, "Q"),
    "rsi": (0x330, "Q"), "rdi": (0x338, "Q"),
    "sev_features": (0x3B0, "Q"), "xcr0": (0x3E8, "Q"),
    "mxcsr": (0x408, "I"), "x87_fcw": (0x410, "H"),
}


def build_vmsa(segments, registers):
    """A 4096-byte VMSA.  segments: {name: (selector, attrib, limit, base)};
    registers: {name: value} with names from the table above."""
    page = bytearray(PAGE_SIZE)
    for name, seg in segments.items():
        _SEGMENT.pack_into(page, 0x10 * _SEGMENTS.index(name), *seg)
    for name, value in registers.items():
        offset, fmt = _REGISTERS[name]
        struct.pack_into("<" + fmt, page, offset, value)
    return bytes(page)


RESET_EIP = 0xFFFFFFF0
DEFAULT_G_PAT = 0x0007040600070406  # PAT power-on value (APM vol. 2 §A.3)


def reset_vmsa(eip, sev_features, vcpu_sig, vmm_type="qemu"):
    """A vCPU at its reset state as QEMU/KVM (or EC2, GCE) sets it before
    LAUNCH_UPDATE_VMSA: real mode, CS based at eip's 64 KiB segment."""
    cs_attr, ss_attr, tr_attr, g_pat = 0x9B, 0x93, 0x8B, DEFAULT_G_PAT
    rdx, mxcsr, fcw = vcpu_sig, 0x1F80, 0x37F
    if vmm_type == "ec2":
        cs_attr = 0x9A if eip == RESET_EIP else 0x9B
        ss_attr, tr_attr, rdx, mxcsr, fcw = 0x92, 0x83, 0x600, 0, 0
    elif vmm_type == "gce":
        g_pat, rdx, mxcsr, fcw = 0x00070106, 0x600, 0, 0  # GCE's hypervisor sets its own PAT
    elif vmm_type != "qemu":
        raise ValueError(f"unknown VMM type {vmm_type!r} (qemu, ec2 or gce)")
    data_seg = (0, 0x93, 0xFFFF, 0)
    return build_vmsa(
        {"es": data_seg, "cs": (0xF000, cs_attr, 0xFFFF, eip & 0xFFFF0000), "ss": (0, ss_attr, 0xFFFF, 0),
         "ds": data_seg, "fs": data_seg, "gs": data_seg, "gdtr": (0, 0, 0xFFFF, 0), "idtr": (0, 0, 0xFFFF, 0),
         "ldtr": (0, 0x82, 0xFFFF, 0), "tr": (0, tr_attr, 0xFFFF, 0)},
        {"efer": 0x1000,  # KVM sets EFER.SVME
         "cr4": 0x40,  # CR4.MCE
         "cr0": 0x10, "dr7": 0x400, "dr6": 0xFFFF0FF0, "rflags": 0x2, "rip": eip & 0xFFFF,
         "g_pat": g_pat, "rdx": rdx, "sev_features": sev_features, "xcr0": 0x1,
         "mxcsr": mxcsr, "x87_fcw": fcw})
