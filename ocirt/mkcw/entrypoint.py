"""The image's ``/entrypoint``: a static x86-64 ELF that refuses to run.

A runtime without krun support that starts a confidential workload image runs
this program, which prints why it cannot work and exits 1 (the behaviour of
buildah's stub, confidential-workloads.md §2).  The bytes are assembled here
rather than shipped or compiled, so an installed ocirt-mkcw needs no
toolchain and the program is fully reviewable in this file:

    _start:  mov  eax, 1            ; SYS_write
             mov  edi, 2            ; stderr
             lea  rsi, [rip+msg]
             mov  edx, len
             syscall
             mov  eax, 60           ; SYS_exit
             mov  edi, 1            ; status 1
             syscall
    msg:     "This image is designed to be run as a confidential workload using libkrun.\n"

The file is one ELF64 header, one PT_LOAD program header mapping the whole
file read+execute at 0x400000, then the code and the message.
"""
import struct

MESSAGE = b"This image is designed to be run as a confidential workload using libkrun.\n"
BASE = 0x400000
_EHDR_SIZE = 64
_PHDR_SIZE = 56


def _code(msg_offset_from_next_insn, length):
    return b"".join([
        b"\xb8" + struct.pack("<I", 1),          # mov eax, 1 (write)
        b"\xbf" + struct.pack("<I", 2),          # mov edi, 2
        b"\x48\x8d\x35" + struct.pack("<i", msg_offset_from_next_insn),  # lea rsi, [rip+disp32]
        b"\xba" + struct.pack("<I", length),     # mov edx, len
        b"\x0f\x05",                             # syscall
        b"\xb8" + struct.pack("<I", 60),         # mov eax, 60 (exit)
        b"\xbf" + struct.pack("<I", 1),          # mov edi, 1
        b"\x0f\x05",                             # syscall
    ])


def build(message=MESSAGE):
    """The ELF image as bytes."""
    code_offset = _EHDR_SIZE + _PHDR_SIZE
    code_len = len(_code(0, 0))
    # rip after the lea is the lea's end: 5 + 5 + 7 bytes into the code
    lea_end = 17
    code = _code(code_len - lea_end, len(message))
    body = code + message
    file_size = code_offset + len(body)
    ehdr = struct.pack(
        "<4sBBBBB7sHHIQQQIHHHHHH",
        b"\x7fELF", 2, 1, 1, 0, 0, b"\0" * 7,   # ELFCLASS64, little-endian, version 1, SysV ABI
        2, 0x3E, 1,                              # ET_EXEC, EM_X86_64, EV_CURRENT
        BASE + code_offset,                      # e_entry
        _EHDR_SIZE, 0,                           # e_phoff, e_shoff (no sections)
        0, _EHDR_SIZE, _PHDR_SIZE, 1,            # e_flags, e_ehsize, e_phentsize, e_phnum
        64, 0, 0)                                # e_shentsize, e_shnum, e_shstrndx
    phdr = struct.pack(
        "<IIQQQQQQ",
        1, 5,                                    # PT_LOAD, PF_R | PF_X
        0, BASE, BASE,                           # p_offset, p_vaddr, p_paddr
        file_size, file_size, 0x1000)            # p_filesz, p_memsz, p_align
    return ehdr + phdr + body
