"""Launch measurement: published sev-snp-measure vectors, OVMF parsing errors,
the CLI, and the libkrun page list checked against an independent C program.

The libkrun tests use a TEST DOUBLE: a tiny shared library built here with gcc
that exports krunfw_get_kernel/initrd/qboot returning known synthetic blobs.
There is no real libkrunfw-sev on this machine, so the real layout is not
exercised; what is checked is that our page walk equals the one libkrunfw's
own measurement tool performs (re-implemented independently in C below with
the kernel's <asm/bootparam.h> and OpenSSL).
"""
import base64
import os
import subprocess
import sys

import pytest

from ocirt.kbs import measure
from ocirt.kbs.measure import cpu, gctx, libkrun, ovmf

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = "/work/shared/testdata/snp/measure-fixtures"
AMDSEV = os.path.join(FIXTURES, "ovmf_AmdSev_suffix.bin")
OVMFX64 = os.path.join(FIXTURES, "ovmf_OvmfX64_suffix.bin")
OVMF_HASH = "086e2e9149ebf45abdc3445fba5b2da8270bdbb04094d7a2c37faaa4b24af3aa16aff8c374c2a55c467a50da6d466b74"

pytestmark = pytest.mark.skipif(not os.path.exists(AMDSEV), reason=f"OVMF fixtures missing: {FIXTURES}")

EMPTY = b""  # "kernel" in the vectors means kernel = initrd = /dev/null
SNP_VECTORS = [
    # (name, ovmf, vcpus, vmm, kernel?, append, features, ovmf_hash?, expected)  — virtee/sev-snp-measure
    # tests/test_guest.py at the edk2-stable202405 fixtures (first six also in ../shared/testdata/snp/README.md)
    ("snp_default", AMDSEV, 1, "qemu", True, "console=ttyS0 loglevel=7", 0x21, False,
     "803f691094946e42068aaa3a8f9e26a5c89f36f7b73ecfb28c653360fe4b3aba7e534442e7e1e17895dfe778d0228977"),
    ("snp_guest_feature_snp_only", AMDSEV, 1, "qemu", True, "console=ttyS0 loglevel=7", 0x1, False,
     "6d287813eb5222d770f75005c664e34c204f385ce832cc2ce7d0d6f354454362f390ef83a92046c042e706363b4b08fa"),
    ("snp_without_kernel_default", AMDSEV, 1, "qemu", False, None, 0x21, False,
     "e1e1ca029dd7973ab9513295be68198472dcd4fc834bd9af9b63f6e8a1674dbf281a9278a4a2ebe0eed9f22adbcd0e2b"),
    ("snp_with_multiple_vcpus_default", AMDSEV, 4, "qemu", True, "", 0x21, False,
     "4953b1fb416fa874980e8442b3706d345926d5f38879134e00813c5d7abcbe78eafe7b422907be0b4698e2414a631942"),
    ("snp_with_ovmfx64_without_default", OVMFX64, 1, "qemu", False, None, 0x21, False,
     "28797ae0afaba4005a81e629acebfb59e6687949d6be44007cd5506823b0dd66f146aaae26ff291eed7b493d8a64c385"),
    ("snp_ovmf_hash_full_default", AMDSEV, 1, "qemu", True, "console=ttyS0 loglevel=7", 0x21, True,
     "803f691094946e42068aaa3a8f9e26a5c89f36f7b73ecfb28c653360fe4b3aba7e534442e7e1e17895dfe778d0228977"),
    ("snp_ovmf_hash_gen_default", AMDSEV, 1, "qemu", True, "", 0x21, True,
     "329c8ce0972ae52343b64d34a434a86f245dfd74f5ed7aae15d22efc78fb9683632b9b50e4e1d7fa41179ef98a7ef198"),
    ("snp_ovmf_hash_gen_feature_snp_only", AMDSEV, 1, "qemu", True, "", 0x1, True,
     "ddc5224521617a536ee7ce9dd6224d1b58a8d4fda1c741f3ac99fc4bfa04ba6e9fc98646d4a07a9079397fa3852819b5"),
    ("snp_ec2_default", AMDSEV, 1, "ec2", True, "", 0x21, False,
     "0ce9ccc06bab55eebe8abc234f3df6514883977a68a591b71052498ab52b2f1aa415db338033946ef93aa8278c0d67fb"),
    ("snp_ec2_feature_snp_only", AMDSEV, 1, "ec2", True, "", 0x1, False,
     "0883bd0eeb716e65b7b977a321c278d1e51b33b5c655fab985443bbcc65c086b9c15e8a0bd8811050dec7e24964e5056"),
    ("snp_gce_default", AMDSEV, 1, "gce", True, "", 0x1, False,
     "5da7106cf14cf46b1725ebab123eb9e53bd46a1e9f400cd0c08e7827b04b688ea8b4e403c8404efed4397ea5d5d0722e"),
    ("snp_gce_with_multiple_vcpus_default", AMDSEV, 4, "gce", True, "", 0x1, False,
     "5c5debf100fc339f90276e761ee1f1658d08922c3b20e2a2e6c7a6c3370b2452a15a00eae11886a93d6fd1e7ab81e29d"),
    ("snp_without_kernel_feature_snp_only", AMDSEV, 1, "qemu", False, None, 0x1, False,
     "19358ba9a7615534a9a1e2f0dfc29384dcd4dcb7062ff9c6013b26869a5fc6ecabe033c48dd6f6db5d6d76e7c5df632d"),
    ("snp_with_multiple_vcpus_feature_snp_only", AMDSEV, 4, "qemu", True, "", 0x1, False,
     "5061fffb019493a903613d56d54b94912a1a2f9e4502385f5c194616753720a92441310ba6c4933de877c36e23046ad5"),
    ("snp_with_ovmfx64_without_kernel_feature_snp_only", OVMFX64, 1, "qemu", False, None, 0x1, False,
     "da0296de8193586a5512078dcd719eccecbd87e2b825ad4148c44f665dc87df21e5b49e21523a9ad993afdb6a30b4005"),
]


@pytest.mark.parametrize("name,fw,vcpus,vmm,kernel,append,features,seeded,expected", SNP_VECTORS,
                         ids=[v[0] for v in SNP_VECTORS])
def test_snp_published_vectors(name, fw, vcpus, vmm, kernel, append, features, seeded, expected):
    digest = measure.snp_launch_digest(
        fw, vcpus, vcpu_type="EPYC-v4" if vmm == "qemu" else None, vmm_type=vmm,
        kernel=EMPTY if kernel else None, initrd=EMPTY if kernel else None, append=append,
        guest_features=features, ovmf_hash=OVMF_HASH if seeded else None)
    assert digest.hex() == expected


def test_ovmf_hash_vector():
    assert measure.ovmf_hash(AMDSEV).hex() == OVMF_HASH


@pytest.mark.parametrize("mode,fw,vcpus,kernel,append,expected", [
    ("seves", AMDSEV, 1, True, "", "13810ae661ea11e2bb205621f582fee268f0367c8f97bc297b7fadef3e12002c"),
    ("seves", AMDSEV, 4, True, "", "0dccbcaba8e90b261bd0d2e1863a2f9da714768b7b2a19363cd6ae35aa90de91"),
    ("sev", AMDSEV, 1, True, "console=ttyS0 loglevel=7",
     "82a3ee5d537c3620628270c292ae30cb40c3c878666a7890ee7ef2a08fb535ff"),
    ("sev", AMDSEV, 1, "kernel-only", None, "77f613d7bbcdf12a73782ea9e88b0172aeda50d1a54201cb903594ff52846898"),
    ("sev", OVMFX64, 1, False, None, "b4c021e085fb83ceffe6571a3d357b4a98773c83c474e47f76c876708fe316da"),
])
def test_sev_and_seves_published_vectors(mode, fw, vcpus, kernel, append, expected):
    initrd = EMPTY if kernel is True else None
    k = EMPTY if kernel else None
    if mode == "seves":
        digest = measure.seves_launch_digest(fw, vcpus, "EPYC-v4", kernel=k, initrd=initrd, append=append)
    else:
        digest = measure.sev_launch_digest(fw, kernel=k, initrd=initrd, append=append)
    assert digest.hex() == expected


@pytest.mark.parametrize("fn", [
    lambda: measure.snp_launch_digest(OVMFX64, 1, "EPYC-v4", kernel=EMPTY, initrd=EMPTY, append=""),
    lambda: measure.seves_launch_digest(OVMFX64, 1, "EPYC-v4", kernel=EMPTY, initrd=EMPTY, append=""),
    lambda: measure.sev_launch_digest(OVMFX64, kernel=EMPTY, initrd=EMPTY, append=""),
])
def test_kernel_without_ovmf_support_is_refused(fn):
    with pytest.raises(measure.MeasureError, match="kernel"):
        fn()


def test_snp_page_order_follows_ovmf_metadata():
    digest, pages = measure.snp_launch_digest(AMDSEV, 2, "EPYC-v4", kernel=EMPTY, initrd=EMPTY, append="",
                                              record=True)
    fw = ovmf.Ovmf.load(AMDSEV)
    assert pages[0] == (gctx.PAGE_NORMAL, fw.gpa)
    assert pages[-2:] == [(gctx.PAGE_VMSA, gctx.VMSA_GPA)] * 2
    kinds = [k for k, _ in pages]
    assert kinds.count(gctx.PAGE_SECRETS) == 1 and kinds.count(gctx.PAGE_CPUID) == 1
    # the kernel hashes page is the one NORMAL page below the firmware
    assert [gpa for k, gpa in pages if k == gctx.PAGE_NORMAL and gpa < fw.gpa] == \
        [gpa for gpa, _, kind in fw.sections if kind == ovmf.SECTION_SNP_KERNEL_HASHES]
    assert digest == measure.snp_launch_digest(AMDSEV, 2, "EPYC-v4", kernel=EMPTY, initrd=EMPTY, append="")


def test_page_info_layout_by_hand():
    # one NORMAL page, computed from the PAGE_INFO table in attestation.md §9.1
    import hashlib
    page = bytes(range(256)) * 16
    info = bytes(48) + hashlib.sha384(page).digest() + (0x70).to_bytes(2, "little") + bytes([1, 0, 0, 0, 0, 0]) \
        + (0x1234000).to_bytes(8, "little")
    assert len(info) == 0x70
    ld = gctx.LaunchDigest()
    ld.add_data(0x1234000, page)
    assert ld.digest() == hashlib.sha384(info).digest()


def test_cpu_signatures():
    assert cpu.CPU_SIGS["EPYC-v4"] == 0x800F12
    assert cpu.CPU_SIGS["EPYC-Milan"] == 0xA00F11
    assert cpu.CPU_SIGS["EPYC-Genoa"] == 0xA10F10
    assert cpu.CPU_SIGS["EPYC-Turin"] == 0xB00F00
    with pytest.raises(ValueError):
        cpu.cpu_sig(23, 1, 16)


@pytest.mark.parametrize("data,match", [
    (b"", "multiple of 4096"),
    (b"\0" * 1000, "multiple of 4096"),
])
def test_bad_ovmf_images(data, match):
    with pytest.raises(measure.MeasureError, match=match):
        measure.snp_launch_digest(data, 1, "EPYC-v4")


def test_corrupt_ovmf_metadata_is_an_error():
    data = bytearray(open(AMDSEV, "rb").read())
    fw = ovmf.Ovmf(bytes(data))
    start = len(data) - int.from_bytes(fw.table[ovmf.SEV_METADATA_GUID][:4], "little")
    data[start:start + 4] = b"XXXX"
    with pytest.raises(measure.MeasureError, match="signature"):
        measure.snp_launch_digest(bytes(data), 1, "EPYC-v4")
    data = bytearray(open(AMDSEV, "rb").read())
    data[start + 16 + 8:start + 16 + 12] = (0x77).to_bytes(4, "little")  # first section's type
    with pytest.raises(measure.MeasureError, match="section type"):
        measure.snp_launch_digest(bytes(data), 1, "EPYC-v4")


def test_missing_vcpu_model_is_an_error():
    with pytest.raises(measure.MeasureError, match="vcpu-type"):
        measure.snp_launch_digest(AMDSEV, 1)


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "ocirt.kbs.measure_cli", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=60)


def test_cli_matches_vector_and_formats():
    r = _cli("--mode", "snp", "--vcpus", "1", "--vcpu-type", "EPYC-v4", "--ovmf", AMDSEV, "--kernel", "/dev/null",
             "--initrd", "/dev/null", "--append", "console=ttyS0 loglevel=7", "--guest-features", "0x21")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == SNP_VECTORS[0][-1]
    r = _cli("--mode", "snp:ovmf-hash", "--ovmf", AMDSEV, "--output-format", "base64")
    assert base64.b64decode(r.stdout.strip()).hex() == OVMF_HASH
    r = _cli("--mode", "seves", "--vcpus", "1", "--vcpu-family", "23", "--vcpu-model", "1", "--vcpu-stepping", "2",
             "--ovmf", AMDSEV, "--kernel", "/dev/null", "--initrd", "/dev/null", "--append", "")
    assert r.stdout.strip() == "13810ae661ea11e2bb205621f582fee268f0367c8f97bc297b7fadef3e12002c"


def test_cli_errors_are_one_line():
    r = _cli("--mode", "snp", "--vcpus", "1", "--vcpu-type", "EPYC-v4", "--ovmf", "/nonexistent/OVMF.fd")
    assert r.returncode == 1
    assert r.stderr == "ocirt-kbs measure: /nonexistent/OVMF.fd: No such file or directory\n"
    r = _cli("--mode", "snp", "--vcpus", "1", "--vcpu-type", "EPYC-v4", "--ovmf", OVMFX64, "--kernel", "/dev/null")
    assert r.returncode == 1 and "SNP_KERNEL_HASHES" in r.stderr and "Traceback" not in r.stderr


# --- libkrun ----------------------------------------------------------------

FAKE_LIBKRUNFW_C = r"""
/* TEST DOUBLE for libkrunfw-sev: exports the three payload getters with
 * deterministic synthetic blobs.  Not a kernel, not qboot. */
#include <stddef.h>
static unsigned char qboot[65536], kernel[3 * 4096 + 123], initrd[5000];
__attribute__((constructor)) static void fill(void) {
    for (size_t i = 0; i < sizeof qboot; i++) qboot[i] = (unsigned char)(i * 7 + 1);
    for (size_t i = 0; i < sizeof kernel; i++) kernel[i] = (unsigned char)(i * 13 + 5);
    for (size_t i = 0; i < sizeof initrd; i++) initrd[i] = (unsigned char)(i * 31 + 9);
}
#ifdef OLD_ABI
char *krunfw_get_kernel(size_t *load_addr, size_t *size) {
    *load_addr = 0x1000000; *size = sizeof kernel; return (char *)kernel;
}
#else
char *krunfw_get_kernel(size_t *load_addr, size_t *entry_addr, size_t *size) {
    *load_addr = 0x1000000; *entry_addr = 0x1000200; *size = sizeof kernel; return (char *)kernel;
}
#endif
char *krunfw_get_initrd(size_t *size) { *size = sizeof initrd; return (char *)initrd; }
char *krunfw_get_qboot(size_t *size) { *size = sizeof qboot; return (char *)qboot; }
int krunfw_get_version(void) { return 4; }
"""

# Independent re-implementation of libkrunfw's measurement walk, written from
# attestation.md §9.3 with the kernel's struct boot_params and OpenSSL.
REFERENCE_MEASURE_C = r"""
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <asm/bootparam.h>
#include <openssl/sha.h>

struct __attribute__((packed)) page_info {
    uint8_t digest_cur[48], contents[48]; uint16_t length; uint8_t page_type, imi, vmpl3, vmpl2, vmpl1, rsvd;
    uint64_t gpa;
};
static uint8_t ld[48];
static void chain(uint8_t type, uint64_t gpa, const uint8_t *page) {
    struct page_info pi; memset(&pi, 0, sizeof pi);
    memcpy(pi.digest_cur, ld, 48);
    if (page) SHA384(page, 4096, pi.contents);
    pi.length = sizeof pi; pi.page_type = type; pi.gpa = gpa;
    SHA384((uint8_t *)&pi, sizeof pi, ld);
}
static void blob(const uint8_t *p, size_t n, uint64_t gpa) {
    uint8_t page[4096];
    for (size_t off = 0; off < n; off += 4096) {
        size_t k = n - off < 4096 ? n - off : 4096;
        memset(page, 0, sizeof page); memcpy(page, p + off, k);
        chain(1, gpa + off, page);
    }
}
static void readfile(const char *path, uint8_t *buf) {
    FILE *f = fopen(path, "rb"); if (!f || fread(buf, 1, 4096, f) != 4096) { perror(path); exit(2); } fclose(f);
}
int main(int argc, char **argv) {
    int cpus = atoi(argv[2]); unsigned long long ram = strtoull(argv[3], 0, 0) << 20;
    uint8_t bp_vmsa[4096], ap_vmsa[4096];
    readfile(argv[4], bp_vmsa); readfile(argv[5], ap_vmsa);
    void *h = dlopen(argv[1], RTLD_NOW); if (!h) { puts(dlerror()); return 2; }
    char *(*get_kernel)(size_t *, size_t *, size_t *) = dlsym(h, "krunfw_get_kernel");
    char *(*get_initrd)(size_t *) = dlsym(h, "krunfw_get_initrd");
    char *(*get_qboot)(size_t *) = dlsym(h, "krunfw_get_qboot");
    size_t qn, kn, in, load, entry; uint8_t *q = (uint8_t *)get_qboot(&qn);
    uint8_t *k = (uint8_t *)get_kernel(&load, &entry, &kn); uint8_t *i = (uint8_t *)get_initrd(&in);
    static struct boot_params bp;  /* 4096 bytes, the kernel's own layout */
    bp.hdr.type_of_loader = 0xff; bp.hdr.boot_flag = 0xaa55; bp.hdr.header = 0x53726448;
    bp.hdr.kernel_alignment = 0x1000000; bp.hdr.cmd_line_ptr = 0x20000; bp.hdr.cmdline_size = 0x200;
    bp.hdr.ramdisk_image = 0xa00000; bp.hdr.ramdisk_size = in; bp.hdr.syssize = cpus;
    bp.e820_table[0].addr = 0; bp.e820_table[0].size = 0x9fc00; bp.e820_table[0].type = 1;
    if (ram <= 0xd0000000ULL) {
        bp.e820_table[1].addr = 0x100000; bp.e820_table[1].size = ram - 0x100000 + 1; bp.e820_table[1].type = 1;
        bp.e820_entries = 2;
    } else {
        bp.e820_table[1].addr = 0x100000; bp.e820_table[1].size = 0xd0000000ULL - 0x100000;
        bp.e820_table[1].type = 1;
        bp.e820_table[2].addr = 0x100000000ULL; bp.e820_table[2].size = ram - 0xd0000000ULL + 1;
        bp.e820_table[2].type = 1; bp.e820_entries = 3;
    }
    if (sizeof bp != 4096) return 3;
    blob(q, qn, 0xffff0000); blob(k, kn, load); blob(i, in, 0xa00000); blob((uint8_t *)&bp, 4096, 0x7000);
    chain(3, 0x0, NULL); chain(5, 0x5000, NULL); chain(6, 0x6000, NULL);
    for (uint64_t g = 0x8000; g < 0xf000; g += 4096) chain(3, g, NULL);
    chain(2, 0xfffffffff000ULL, bp_vmsa);
    for (int c = 1; c < cpus; c++) chain(2, 0xfffffffff000ULL, ap_vmsa);
    for (int b = 0; b < 48; b++) printf("%02x", ld[b]);
    printf("\n");
    SHA256_CTX s; uint8_t d[32]; SHA256_Init(&s);
    SHA256_Update(&s, q, qn); SHA256_Update(&s, k, kn); SHA256_Update(&s, i, in); SHA256_Update(&s, &bp, 4096);
    SHA256_CTX es = s; SHA256_Final(d, &s);
    for (int b = 0; b < 32; b++) printf("%02x", d[b]);
    printf("\n");
    SHA256_Update(&es, bp_vmsa, 4096);
    for (int c = 1; c < cpus; c++) SHA256_Update(&es, ap_vmsa, 4096);
    SHA256_Final(d, &es);
    for (int b = 0; b < 32; b++) printf("%02x", d[b]);
    printf("\n");
    fwrite(&bp, 1, 4096, stderr);
    return 0;
}
"""


@pytest.fixture(scope="module")
def native(tmp_path_factory):
    d = tmp_path_factory.mktemp("libkrunfw-test-double")
    src = d / "fake_libkrunfw.c"
    src.write_text(FAKE_LIBKRUNFW_C)
    libs = {}
    for abi, flags in (("new", []), ("old", ["-DOLD_ABI"])):
        out = d / f"libkrunfw-sev-TESTDOUBLE-{abi}.so"
        subprocess.run(["gcc", "-shared", "-fPIC", "-O1", *flags, "-o", str(out), str(src)], check=True)
        libs[abi] = str(out)
    ref = d / "reference_measure"
    (d / "reference_measure.c").write_text(REFERENCE_MEASURE_C)
    r = subprocess.run(["gcc", "-O1", "-w", "-o", str(ref), str(d / "reference_measure.c"), "-lcrypto", "-ldl"],
                       capture_output=True, text=True)
    if r.returncode:
        pytest.fail(f"cannot build the reference measurement program (needs libssl-dev): {r.stderr}")
    return d, libs, str(ref)


def _reference(native, lib, cpus, ram_mib, sev_features=0x1):
    d, _, ref = native
    bsp, ap = libkrun.default_vmsas(sev_features)
    (d / "bp.vmsa").write_bytes(bsp)
    (d / "ap.vmsa").write_bytes(ap)
    r = subprocess.run([ref, lib, str(cpus), str(ram_mib), str(d / "bp.vmsa"), str(d / "ap.vmsa")],
                       capture_output=True, check=True)
    snp, sev, _ = r.stdout.decode().split("\n", 2)
    return snp, sev, r.stderr  # stderr: the C struct boot_params


@pytest.mark.parametrize("cpus,ram_mib", [(1, 2048), (4, 2048), (2, 8192)])
def test_libkrun_snp_digest_matches_independent_c(native, cpus, ram_mib):
    _, libs, _ = native
    want_snp, want_sev, c_boot_params = _reference(native, libs["new"], cpus, ram_mib)
    assert len(c_boot_params) == 4096
    assert libkrun.boot_params(cpus, ram_mib, 5000) == c_boot_params
    assert measure.libkrun_launch_digest(libs["new"], cpus, ram_mib).hex() == want_snp
    assert measure.libkrun_launch_digest(libs["new"], cpus, ram_mib, mode="sev").hex() == want_sev
    assert measure.libkrun_launch_digest(libs["old"], cpus, ram_mib).hex() == want_snp  # old 2-argument ABI


def test_libkrun_seves_digest_matches_independent_c(native):
    d, libs, ref = native
    bsp, ap = libkrun.default_vmsas(0)
    (d / "bp0.vmsa").write_bytes(bsp)
    (d / "ap0.vmsa").write_bytes(ap)
    r = subprocess.run([ref, libs["new"], "3", "1024", str(d / "bp0.vmsa"), str(d / "ap0.vmsa")],
                       capture_output=True, check=True)
    want = r.stdout.decode().split("\n")[2]
    assert measure.libkrun_launch_digest(libs["new"], 3, 1024, mode="seves").hex() == want


def test_libkrun_page_list_structure(native):
    _, libs, _ = native
    payload = libkrun.load_payload(libs["new"])
    qboot, kernel, load_addr, initrd = payload
    assert (len(qboot), len(kernel), load_addr, len(initrd)) == (65536, 3 * 4096 + 123, 0x1000000, 5000)
    assert kernel[:3] == bytes([5, 18, 31]) and initrd[:2] == bytes([9, 40])
    pages = libkrun.snp_pages(payload, 3, 2048).pages
    N, Z, S, C, V = gctx.PAGE_NORMAL, gctx.PAGE_ZERO, gctx.PAGE_SECRETS, gctx.PAGE_CPUID, gctx.PAGE_VMSA
    expected = ([(N, 0xFFFF0000 + i * 4096) for i in range(16)] + [(N, 0x1000000 + i * 4096) for i in range(4)]
                + [(N, 0xA00000), (N, 0xA01000), (N, 0x7000), (Z, 0), (S, 0x5000), (C, 0x6000)]
                + [(Z, 0x8000 + i * 4096) for i in range(7)] + [(V, gctx.VMSA_GPA)] * 3)
    assert pages == expected


def test_libkrun_digest_depends_on_cpus_ram_and_vmsas(native, tmp_path):
    _, libs, _ = native
    base = measure.libkrun_launch_digest(libs["new"], 2, 2048)
    assert base != measure.libkrun_launch_digest(libs["new"], 2, 4096)
    assert base != measure.libkrun_launch_digest(libs["new"], 1, 2048)
    custom = tmp_path / "bp"
    custom.write_bytes(b"\1" * 4096)
    assert base != measure.libkrun_launch_digest(libs["new"], 2, 2048, vmsa_bp=str(custom))
    custom.write_bytes(b"\1" * 10)
    with pytest.raises(libkrun.LibkrunfwError, match="4096"):
        measure.libkrun_launch_digest(libs["new"], 2, 2048, vmsa_bp=str(custom))


def test_libkrun_errors(tmp_path):
    with pytest.raises(libkrun.LibkrunfwError, match="cannot load"):
        measure.libkrun_launch_digest(str(tmp_path / "missing.so"), 1, 2048)
    with pytest.raises(libkrun.LibkrunfwError, match="cpus"):
        measure.libkrun_launch_digest("/nonexistent", 0, 2048)
    libc = "libc.so.6"  # a real library without the krunfw symbols
    with pytest.raises(libkrun.LibkrunfwError, match="no symbol krunfw_get_kernel"):
        measure.libkrun_launch_digest(libc, 1, 2048)


def test_libkrun_cli_warns_about_unverified_vmsas(native):
    _, libs, _ = native
    r = _cli("--libkrunfw", libs["new"], "--vcpus", "2", "--ram-mib", "2048")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == measure.libkrun_launch_digest(libs["new"], 2, 2048).hex()
    assert "not verified" in r.stderr

