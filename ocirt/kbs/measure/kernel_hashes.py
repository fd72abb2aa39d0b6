"""The SEV hashes table QEMU places in guest memory for measured direct boot
(-kernel/-initrd/-append with an OVMF that has the SEV hash table entry).

Layout (QEMU target/i386/sev.c, OVMF OvmfPkg/AmdSev/BlobVerifierLib):
header {GUID, u16 length}, then three entries {GUID, u16 length = 50,
SHA-256[32]} for the command line (NUL-terminated), the initrd and the
kernel; the whole table is padded to a 16-byte multiple.
"""
import hashlib
import struct
import uuid

TABLE_HEADER_GUID = uuid.UUID("9438d606-4f22-4cc9-b479-a793d411fd21")
KERNEL_ENTRY_GUID = uuid.UUID("4de79437-abd2-427f-b835-d5b172d2045b")
INITRD_ENTRY_GUID = uuid.UUID("44baf731-3a2f-4bd7-9af1-41e29169781d")
CMDLINE_ENTRY_GUID = uuid.UUID("97d02dd8-bd20-4c94-aa78-e7714d36ab2a")

_ENTRY = struct.Struct("<16sH32s")
_HEADER = struct.Struct("<16sH")


def hashes_table(kernel, initrd, append):
    """kernel/initrd: bytes (initrd None = empty); append: str or None."""
    cmdline = (append.encode() if append else b"") + b"\0"
    entries = b"".join(_ENTRY.pack(guid.bytes_le, _ENTRY.size, hashlib.sha256(blob).digest())
                       for guid, blob in ((CMDLINE_ENTRY_GUID, cmdline), (INITRD_ENTRY_GUID, initrd or b""),
                                          (KERNEL_ENTRY_GUID, kernel)))
    length = _HEADER.size + len(entries)
    table = _HEADER.pack(TABLE_HEADER_GUID.bytes_le, length) + entries
    return table + bytes(-len(table) % 16)


def hashes_page(table, offset):
    if offset + len(table) > 4096:
        raise ValueError("SEV hashes table does not fit in its page")
    return bytes(offset) + table + bytes(4096 - offset - len(table))
