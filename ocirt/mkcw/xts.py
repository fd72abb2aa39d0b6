"""AES-XTS with the dm-crypt ``plain64`` IV, many sectors per call.

``cryptography`` (OpenSSL) treats one XTS call as one data unit with one
tweak, but a LUKS payload is a run of independent 512-byte sectors whose tweak
is the sector number (plain64: little-endian u64, zero-padded to 16 bytes,
counted from 0 at the payload offset; confidential-workloads.md §6).  One
OpenSSL context per sector costs microseconds each, so instead XTS is spelled
out over AES-ECB, which OpenSSL runs in bulk:

    T(s, 0) = AES(K2, plain64(s))                    one ECB call per chunk
    T(s, j) = T(s, j-1) * x  in GF(2^128)            vectorised with numpy
    C(s, j) = AES(K1, P(s, j) ^ T(s, j)) ^ T(s, j)   one ECB call per chunk

(IEEE 1619-2007 §5.3; no ciphertext stealing is needed because a sector is a
whole number of 16-byte blocks.)  The tests check this against OpenSSL's own
XTS one sector at a time.
"""
SECTOR = 512
_BLOCKS_PER_SECTOR = SECTOR // 16


class SectorCipher:
    """Encrypts whole sectors; ``key`` is 64 bytes (AES-256-XTS: K1 ‖ K2).

    Buffers are kept between calls (``update_into`` into a preallocated
    buffer is several times faster than ``update`` at this size), so one
    instance serves one thread.
    """

    def __init__(self, key):
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
        import numpy
        if len(key) != 64:
            raise ValueError("AES-256-XTS needs a 64-byte key")
        self._np = numpy
        self._enc = Cipher(algorithms.AES(key[:32]), modes.ECB()).encryptor()
        self._dec = Cipher(algorithms.AES(key[:32]), modes.ECB()).decryptor()
        self._tweak_enc = Cipher(algorithms.AES(key[32:]), modes.ECB()).encryptor()
        self._size = 0
        # x^j for j = 1..31 as shift counts, shaped to broadcast over sectors
        j = numpy.arange(1, _BLOCKS_PER_SECTOR, dtype="<u8")
        self._shift = j[None, :]
        self._rshift = (numpy.uint64(64) - j)[None, :]

    def _buffers(self, size):
        if size > self._size:
            self._mix = bytearray(size + 16)
            self._out = bytearray(size + 16)
            self._plain64 = bytearray(size // _BLOCKS_PER_SECTOR + 16)
            self._tweak0 = bytearray(size // _BLOCKS_PER_SECTOR + 16)
            self._size = size

    def _tweaks(self, first_sector, count):
        """All 32 tweaks of each sector, as little-endian u64 pairs (low, high) in data order."""
        np = self._np
        plain64 = np.frombuffer(self._plain64, dtype="<u8", count=2 * count).reshape(count, 2)
        plain64[:, 0] = np.arange(first_sector, first_sector + count, dtype="<u8")
        plain64[:, 1] = 0
        self._tweak_enc.update_into(memoryview(self._plain64)[:16 * count], self._tweak0)
        first = np.frombuffer(self._tweak0, dtype="<u8", count=2 * count).reshape(count, 2)
        lo, hi = first[:, 0:1], first[:, 1:2]
        # T * x^j for all j at once: shift the 128-bit value left by j and
        # fold the j bits that fall off the top back in with the field
        # polynomial x^128 = x^7 + x^2 + x + 1 (a carry-less multiply by 0x87;
        # for j < 32 the product stays below bit 39, so one fold suffices)
        top = hi >> self._rshift
        fold = top ^ (top << np.uint64(1)) ^ (top << np.uint64(2)) ^ (top << np.uint64(7))
        tweaks = np.empty((count, _BLOCKS_PER_SECTOR, 2), dtype="<u8")
        tweaks[:, 0, :] = first
        tweaks[:, 1:, 0] = (lo << self._shift) ^ fold
        tweaks[:, 1:, 1] = (hi << self._shift) | (lo >> self._rshift)
        return tweaks.reshape(-1)

    def encrypt(self, data, first_sector):
        """Encrypt ``data`` (a multiple of 512 bytes) starting at sector ``first_sector``."""
        return self._apply(self._enc, data, first_sector)

    def decrypt(self, data, first_sector):
        return self._apply(self._dec, data, first_sector)

    def _apply(self, ecb, data, first_sector):
        np = self._np
        size = len(data)
        if size % SECTOR:
            raise ValueError("XTS data must be whole 512-byte sectors")
        self._buffers(size)
        tweaks = self._tweaks(first_sector, size // SECTOR)
        mixed = np.frombuffer(self._mix, dtype="<u8", count=size // 8)
        np.bitwise_xor(np.frombuffer(data, dtype="<u8"), tweaks, out=mixed)
        ecb.update_into(memoryview(self._mix)[:size], self._out)
        out = np.frombuffer(self._out, dtype="<u8", count=size // 8)
        np.bitwise_xor(out, tweaks, out=out)
        return bytes(memoryview(self._out)[:size])
