"""AES-XTS with the dm-crypt ``plain64`` IV, many sectors per call.

A LUKS payload is a run of independent 512-byte sectors whose XTS tweak is the
sector number (plain64: little-endian u64, zero-padded to 16 bytes, counted
from 0 at the payload offset; confidential-workloads.md §6).  ``cryptography``
treats one XTS call as one data unit, and one Python call per sector costs
~15 µs, so the sector loop runs in C (``ocirt.mkcw._crypto.xts_plain64``):
OpenSSL's own XTS, one ``EVP_CipherUpdate`` per sector, about 2.5 GB/s here.
The tests check it against ``cryptography``'s XTS one sector at a time.
"""
from ocirt.errors import OcirtError

SECTOR = 512


def crypto_lib():
    """(ffi, lib) of the compiled ``ocirt.mkcw._crypto`` module."""
    try:
        from ocirt.mkcw._crypto import ffi, lib
    except ImportError as e:
        raise OcirtError(f"ocirt.mkcw._crypto is not built ({e}); reinstall ocirt (pip install .), "
                         "which compiles it against libcrypto (libssl-dev)") from None
    return ffi, lib


class SectorCipher:
    """Encrypts whole sectors; ``key`` is 64 bytes (AES-256-XTS: K1 ‖ K2).

    The output buffer is kept between calls, so one instance serves one thread.
    """

    def __init__(self, key):
        if len(key) != 64:
            raise ValueError("AES-256-XTS needs a 64-byte key")
        self._ffi, self._lib = crypto_lib()
        self._key = bytes(key)
        self._out = bytearray(0)

    def encrypt(self, data, first_sector):
        """Encrypt ``data`` (a multiple of 512 bytes) starting at sector ``first_sector``."""
        return self._apply(data, first_sector, 1)

    def decrypt(self, data, first_sector):
        return self._apply(data, first_sector, 0)

    def _apply(self, data, first_sector, encrypt):
        size = len(data)
        if size % SECTOR:
            raise ValueError("XTS data must be whole 512-byte sectors")
        if not 0 <= first_sector < 1 << 64:
            raise ValueError("sector number out of range")
        if size > len(self._out):
            self._out = bytearray(size)
        out = self._ffi.from_buffer(self._out)
        if self._lib.xts_plain64(self._key, len(self._key), self._ffi.from_buffer(data), out, size,
                                 first_sector, encrypt) != 0:
            raise OcirtError("OpenSSL AES-XTS failed")
        return bytes(memoryview(self._out)[:size])
