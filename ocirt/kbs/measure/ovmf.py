"""OVMF firmware metadata used by SEV launch measurement.

OVMF ends with a GUIDed table that the reset vector code publishes
(edk2 OvmfPkg/ResetVector): the table footer sits 32 bytes before the end of
the image as {u16 size, GUID}; entries are packed backwards from there, each
ending with {u16 size, GUID}.  The SEV metadata entry points (as an offset
from the end of the image) to an "ASEV" header {sig, u32 size, u32 version,
u32 count} followed by {u32 gpa, u32 size, u32 type} section descriptors.
"""
import struct
import uuid

from ocirt.errors import OcirtError

FOUR_GB = 1 << 32

TABLE_FOOTER_GUID = uuid.UUID("96b582de-1fb2-45f7-baea-a366c55a082d")
SEV_HASH_TABLE_RV_GUID = uuid.UUID("7255371f-3a3b-4b04-927b-1da6efa8d454")
SEV_ES_RESET_BLOCK_GUID = uuid.UUID("00f771de-1a7e-4fcb-890e-68c77e2fb44e")
SEV_METADATA_GUID = uuid.UUID("dc886566-984a-4798-a75e-5585a7bf67cc")

SECTION_SNP_SEC_MEM = 1
SECTION_SNP_SECRETS = 2
SECTION_CPUID = 3
SECTION_SVSM_CAA = 4
SECTION_SNP_KERNEL_HASHES = 0x10
SECTION_NAMES = {SECTION_SNP_SEC_MEM: "SNP_SEC_MEM", SECTION_SNP_SECRETS: "SNP_SECRETS", SECTION_CPUID: "CPUID",
                 SECTION_SVSM_CAA: "SVSM_CAA", SECTION_SNP_KERNEL_HASHES: "SNP_KERNEL_HASHES"}

_ENTRY_HEADER = struct.Struct("<H16s")
_META_HEADER = struct.Struct("<4sIII")
_SECTION = struct.Struct("<III")


class OvmfError(OcirtError):
    pass


class Ovmf:
    def __init__(self, data, name="OVMF"):
        self.data = bytes(data)
        self.name = name
        if not self.data or len(self.data) % 4096:
            raise OvmfError(f"{name}: size {len(self.data)} is not a non-zero multiple of 4096")
        if len(self.data) > FOUR_GB:
            raise OvmfError(f"{name}: larger than 4 GiB")
        self.gpa = FOUR_GB - len(self.data)
        self.table = self._parse_table()
        self.sections = self._parse_metadata()

    @classmethod
    def load(cls, path):
        try:
            with open(path, "rb") as f:
                return cls(f.read(), path)
        except OSError as e:
            raise OvmfError(f"{path}: {e.strerror}") from None

    def _parse_table(self):
        data = self.data
        footer_at = len(data) - 32 - _ENTRY_HEADER.size
        size, guid = _ENTRY_HEADER.unpack_from(data, footer_at)
        if uuid.UUID(bytes_le=guid) != TABLE_FOOTER_GUID:
            return {}
        body_len = size - _ENTRY_HEADER.size
        if body_len < 0 or body_len > footer_at:
            raise OvmfError(f"{self.name}: bad GUIDed table size {size}")
        table = {}
        end = footer_at
        start = footer_at - body_len
        while end - start >= _ENTRY_HEADER.size:
            esize, eguid = _ENTRY_HEADER.unpack_from(data, end - _ENTRY_HEADER.size)
            if esize < _ENTRY_HEADER.size or esize > end - start:
                raise OvmfError(f"{self.name}: bad GUIDed table entry size {esize}")
            table[uuid.UUID(bytes_le=eguid)] = data[end - esize:end - _ENTRY_HEADER.size]
            end -= esize
        return table

    def _u32_entry(self, guid, what):
        entry = self.table.get(guid)
        if entry is None or len(entry) < 4:
            raise OvmfError(f"{self.name}: no {what} entry in the OVMF GUIDed table")
        return int.from_bytes(entry[:4], "little")

    def _parse_metadata(self):
        if SEV_METADATA_GUID not in self.table:
            return []
        offset = self._u32_entry(SEV_METADATA_GUID, "SEV metadata")
        start = len(self.data) - offset
        if not 0 <= start <= len(self.data) - _META_HEADER.size:
            raise OvmfError(f"{self.name}: SEV metadata offset {offset} outside the image")
        sig, size, version, count = _META_HEADER.unpack_from(self.data, start)
        if sig != b"ASEV":
            raise OvmfError(f"{self.name}: wrong SEV metadata signature {sig!r}")
        if version != 1:
            raise OvmfError(f"{self.name}: SEV metadata version {version} (expected 1)")
        if _META_HEADER.size + count * _SECTION.size > size or start + size > len(self.data):
            raise OvmfError(f"{self.name}: SEV metadata overruns its declared size")
        sections = []
        for i in range(count):
            gpa, length, kind = _SECTION.unpack_from(self.data, start + _META_HEADER.size + i * _SECTION.size)
            if kind not in SECTION_NAMES:
                raise OvmfError(f"{self.name}: unknown SEV metadata section type {kind}")
            sections.append((gpa, length, kind))
        return sections

    def has_section(self, kind):
        return any(k == kind for _, _, k in self.sections)

    def sev_es_reset_eip(self):
        return self._u32_entry(SEV_ES_RESET_BLOCK_GUID, "SEV-ES reset block")

    def sev_hashes_table_gpa(self):
        return self._u32_entry(SEV_HASH_TABLE_RV_GUID, "SEV hash table")

    def supports_kernel_hashes(self):
        return SEV_HASH_TABLE_RV_GUID in self.table and self.sev_hashes_table_gpa() != 0
