"""Launch measurement: the digest a SEV, SEV-ES or SEV-SNP guest's launch
produces, computed ahead of time so a registration can name it.

    snp_launch_digest(ovmf=..., vcpus=..., vcpu_type="EPYC-v4", ...)  -> 48 bytes
    seves_launch_digest(...), sev_launch_digest(...)                   -> 32 bytes
    ovmf_hash(ovmf)                                                    -> 48 bytes (seed for ovmf_hash=)
    libkrun_launch_digest(libkrunfw_path, cpus, ram_mib)               -> 48 bytes (see libkrun.py)

QEMU/OVMF page order (../shared/reference/attestation.md §9.2): OVMF pages,
then OVMF's SEV metadata sections in table order (the kernel hashes page when
booting a kernel directly), then one VMSA per vCPU.  Matches sev-snp-measure's
published vectors (tests/test_measure.py).
"""
import hashlib
import os

from ocirt.errors import OcirtError
from ocirt.kbs.measure import ovmf as _ovmf
from ocirt.kbs.measure.cpu import CPU_SIGS, cpu_sig
from ocirt.kbs.measure.gctx import (PAGE_CPUID, PAGE_SECRETS, PAGE_UNMEASURED, PAGE_ZERO, LaunchDigest)
from ocirt.kbs.measure.kernel_hashes import hashes_page, hashes_table
from ocirt.kbs.measure.vmsa import RESET_EIP, reset_vmsa

__all__ = ["MeasureError", "snp_launch_digest", "seves_launch_digest", "sev_launch_digest", "ovmf_hash",
           "libkrun_launch_digest", "cpu_sig", "CPU_SIGS", "VMM_TYPES"]

VMM_TYPES = ("qemu", "ec2", "gce")
MAX_VCPUS = 512


class MeasureError(OcirtError):
    pass


def _blob(value, what):
    """bytes as given, or the contents of a path."""
    if value is None or isinstance(value, (bytes, bytearray, memoryview)):
        return value
    try:
        with open(os.fspath(value), "rb") as f:
            return f.read()
    except OSError as e:
        raise MeasureError(f"{what} {value}: {e.strerror}") from None


def _load_ovmf(ovmf):
    try:
        if isinstance(ovmf, _ovmf.Ovmf):
            return ovmf
        if isinstance(ovmf, (bytes, bytearray, memoryview)):
            return _ovmf.Ovmf(ovmf)
        return _ovmf.Ovmf.load(os.fspath(ovmf))
    except _ovmf.OvmfError as e:
        raise MeasureError(str(e)) from None


def _resolve_vcpu_sig(vcpu_type, vcpu_sig, vmm_type):
    if vcpu_sig is not None:
        if not 0 <= int(vcpu_sig) < 1 << 32:
            raise MeasureError(f"--vcpu-sig {vcpu_sig} out of range")
        return int(vcpu_sig)
    if vcpu_type is not None:
        try:
            return CPU_SIGS[vcpu_type]
        except KeyError:
            raise MeasureError(f"unknown vcpu type {vcpu_type!r} (one of: {', '.join(CPU_SIGS)})") from None
    if vmm_type in ("ec2", "gce"):
        return 0  # these VMMs put a fixed value in RDX; the signature is not used
    raise MeasureError("give the vCPU model: --vcpu-type, --vcpu-sig or --vcpu-family/--vcpu-model/--vcpu-stepping")


def _check_common(vcpus, vmm_type):
    if vmm_type not in VMM_TYPES:
        raise MeasureError(f"unknown VMM type {vmm_type!r} (one of: {', '.join(VMM_TYPES)})")
    if not isinstance(vcpus, int) or not 1 <= vcpus <= MAX_VCPUS:
        raise MeasureError(f"--vcpus must be 1..{MAX_VCPUS}, got {vcpus!r}")


def _kernel_table(kernel, initrd, append):
    if kernel is None:
        if initrd is not None or append:
            raise MeasureError("--initrd and --append need --kernel")
        return None
    return hashes_table(_blob(kernel, "kernel"), _blob(initrd, "initrd"), append)


def _vmsa_pages(fw, vcpus, sev_features, vcpu_sig, vmm_type):
    bsp = reset_vmsa(RESET_EIP, sev_features, vcpu_sig, vmm_type)
    if vcpus == 1:
        return [bsp]
    try:
        ap = reset_vmsa(fw.sev_es_reset_eip(), sev_features, vcpu_sig, vmm_type)
    except _ovmf.OvmfError as e:
        raise MeasureError(str(e)) from None
    return [bsp] + [ap] * (vcpus - 1)


def ovmf_hash(ovmf):
    """The launch digest after OVMF's own pages: a reusable seed (--ovmf-hash)."""
    fw = _load_ovmf(ovmf)
    ld = LaunchDigest()
    ld.add_data(fw.gpa, fw.data)
    return ld.digest()


def snp_launch_digest(ovmf, vcpus, vcpu_type=None, vcpu_sig=None, vmm_type="qemu", kernel=None, initrd=None,
                      append=None, guest_features=0x1, ovmf_hash=None, record=False):
    """SEV-SNP MEASUREMENT of a QEMU/OVMF (or EC2/GCE) guest.  record=True
    returns (digest, [(page_type, gpa), ...]) for inspection."""
    _check_common(vcpus, vmm_type)
    sig = _resolve_vcpu_sig(vcpu_type, vcpu_sig, vmm_type)
    fw = _load_ovmf(ovmf)
    if ovmf_hash is not None:
        seed = bytes.fromhex(ovmf_hash) if isinstance(ovmf_hash, str) else bytes(ovmf_hash)
        if len(seed) != 48:
            raise MeasureError("--ovmf-hash must be 48 bytes (96 hex digits)")
        ld = LaunchDigest(seed, record)
    else:
        ld = LaunchDigest(record=record)
        ld.add_data(fw.gpa, fw.data)
    table = _kernel_table(kernel, initrd, append)
    if table is not None and not fw.has_section(_ovmf.SECTION_SNP_KERNEL_HASHES):
        raise MeasureError("a kernel was given but the OVMF metadata has no SNP_KERNEL_HASHES section")

    deferred_cpuid = []
    for gpa, size, kind in fw.sections:
        if kind == _ovmf.SECTION_SNP_SEC_MEM:
            ld.add_empty(PAGE_UNMEASURED if vmm_type == "gce" else PAGE_ZERO, gpa, size)
        elif kind == _ovmf.SECTION_SNP_SECRETS:
            ld.add_empty(PAGE_SECRETS, gpa, 4096)
        elif kind == _ovmf.SECTION_CPUID:
            if vmm_type == "ec2":
                deferred_cpuid.append(gpa)  # EC2 adds the CPUID page after the other sections
            else:
                ld.add_empty(PAGE_CPUID, gpa, 4096)
        elif kind == _ovmf.SECTION_SNP_KERNEL_HASHES:
            if table is None:
                ld.add_empty(PAGE_ZERO, gpa, size)
            else:
                if size != 4096:
                    raise MeasureError(f"SNP_KERNEL_HASHES section is {size} bytes, expected one page")
                try:
                    page = hashes_page(table, fw.sev_hashes_table_gpa() & 0xFFF)
                except (_ovmf.OvmfError, ValueError) as e:
                    raise MeasureError(str(e)) from None
                ld.add_data(gpa, page)
        elif kind == _ovmf.SECTION_SVSM_CAA:
            ld.add_empty(PAGE_ZERO, gpa, size)
    for gpa in deferred_cpuid:
        ld.add_empty(PAGE_CPUID, gpa, 4096)

    for page in _vmsa_pages(fw, vcpus, guest_features, sig, vmm_type):
        ld.add_vmsa(page)
    return (ld.digest(), ld.pages) if record else ld.digest()


def _sev_hash(fw, kernel, initrd, append):
    h = hashlib.sha256(fw.data)
    table = _kernel_table(kernel, initrd, append)
    if table is not None:
        if not fw.supports_kernel_hashes():
            raise MeasureError("a kernel was given but this OVMF cannot measure kernel/initrd/cmdline")
        h.update(table)
    return h


def seves_launch_digest(ovmf, vcpus, vcpu_type=None, vcpu_sig=None, vmm_type="qemu", kernel=None, initrd=None,
                        append=None):
    """SEV-ES GCTX.LD: SHA-256 of OVMF, the hashes table, and the VMSAs (SEV features 0)."""
    _check_common(vcpus, vmm_type)
    sig = _resolve_vcpu_sig(vcpu_type, vcpu_sig, vmm_type)
    fw = _load_ovmf(ovmf)
    h = _sev_hash(fw, kernel, initrd, append)
    for page in _vmsa_pages(fw, vcpus, 0, sig, vmm_type):
        h.update(page)
    return h.digest()


def sev_launch_digest(ovmf, kernel=None, initrd=None, append=None):
    """Plain SEV GCTX.LD: SHA-256 of OVMF and the hashes table."""
    return _sev_hash(_load_ovmf(ovmf), kernel, initrd, append).digest()


def libkrun_launch_digest(libkrunfw_path, cpus, ram_mib, **kwargs):
    from ocirt.kbs.measure import libkrun
    return libkrun.launch_digest(libkrunfw_path, cpus, ram_mib, **kwargs)
