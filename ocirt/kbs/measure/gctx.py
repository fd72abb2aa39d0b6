"""The SEV-SNP launch digest: a SHA-384 chain over one PAGE_INFO per page.

PAGE_INFO layout (SNP firmware spec, "PAGE_INFO"; ../shared/reference/
attestation.md §9.1), 0x70 bytes:
    0x00 DIGEST_CUR[48]  0x30 CONTENTS[48]  0x60 LENGTH u16 = 0x70
    0x62 PAGE_TYPE u8    0x63 IMI_PAGE u8   0x64..0x66 VMPL3/2/1_PERMS u8
    0x67 reserved        0x68 GPA u64
"""
import hashlib
import struct

PAGE_SIZE = 4096
DIGEST_SIZE = 48
ZERO_CONTENTS = bytes(DIGEST_SIZE)

PAGE_NORMAL = 1
PAGE_VMSA = 2
PAGE_ZERO = 3
PAGE_UNMEASURED = 4
PAGE_SECRETS = 5
PAGE_CPUID = 6
PAGE_TYPE_NAMES = {PAGE_NORMAL: "normal", PAGE_VMSA: "vmsa", PAGE_ZERO: "zero", PAGE_UNMEASURED: "unmeasured",
                   PAGE_SECRETS: "secrets", PAGE_CPUID: "cpuid"}

# The firmware records VMSA pages at GPA (u64)-1, page aligned and cut to 52 bits.
VMSA_GPA = 0xFFFFFFFFF000

_TAIL = struct.Struct("<HBBBBBBQ")  # length, type, imi, vmpl3, vmpl2, vmpl1, reserved, gpa


class LaunchDigest:
    """Accumulates the launch digest; optionally records (type, gpa) per page."""

    def __init__(self, seed=ZERO_CONTENTS, record=False):
        if len(seed) != DIGEST_SIZE:
            raise ValueError(f"launch digest seed must be {DIGEST_SIZE} bytes")
        self.value = bytes(seed)
        self.pages = [] if record else None

    def add_page(self, page_type, gpa, contents):
        self.value = hashlib.sha384(self.value + contents
                                    + _TAIL.pack(0x70, page_type, 0, 0, 0, 0, 0, gpa)).digest()
        if self.pages is not None:
            self.pages.append((page_type, gpa))

    def add_data(self, gpa, data):
        """NORMAL pages holding data; a partial last page is zero-filled (guest RAM starts zeroed)."""
        if gpa % PAGE_SIZE:
            raise ValueError(f"GPA 0x{gpa:x} is not page aligned")
        view = memoryview(data)
        for off in range(0, len(view), PAGE_SIZE):
            page = view[off:off + PAGE_SIZE]
            if len(page) < PAGE_SIZE:
                page = bytes(page) + bytes(PAGE_SIZE - len(page))
            self.add_page(PAGE_NORMAL, gpa + off, hashlib.sha384(page).digest())

    def add_empty(self, page_type, gpa, size):
        """ZERO / UNMEASURED / SECRETS / CPUID pages: CONTENTS are zero."""
        if gpa % PAGE_SIZE or size % PAGE_SIZE:
            raise ValueError(f"region 0x{gpa:x}+0x{size:x} is not page aligned")
        for off in range(0, size, PAGE_SIZE):
            self.add_page(page_type, gpa + off, ZERO_CONTENTS)

    def add_vmsa(self, vmsa_page):
        if len(vmsa_page) != PAGE_SIZE:
            raise ValueError("a VMSA page is 4096 bytes")
        self.add_page(PAGE_VMSA, VMSA_GPA, hashlib.sha384(vmsa_page).digest())

    def digest(self):
        return self.value
