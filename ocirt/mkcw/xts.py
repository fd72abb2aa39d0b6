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
    """Encrypts whole sectors; ``key`` is 64 bytes (AES-256-XTS: K1 ‖ K2)."""

    def __init__(self, key):
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
        import numpy
        if len(key) != 64:
            raise ValueError("AES-256-XTS needs a 64-byte key")
        self._np = numpy
        self._data_ecb = Cipher(algorithms.AES(key[:32]), modes.ECB())
        self._tweak_ecb = Cipher(algorithms.AES(key[32:]), modes.ECB())

    def _tweaks(self, first_sector, count):
        """All 32 tweaks of each sector, as uint64 pairs (low, high) in data order."""
        np = self._np
        plain64 = np.zeros((count, 2), dtype="<u8")
        plain64[:, 0] = np.arange(first_sector, first_sector + count, dtype="<u8")
        enc = self._tweak_ecb.encryptor()
        first = np.frombuffer(enc.update(plain64.tobytes()) + enc.finalize(), dtype="<u8").reshape(count, 2)
        tweaks = np.empty((count, _BLOCKS_PER_SECTOR, 2), dtype="<u8")
        lo, hi = first[:, 0].copy(), first[:, 1].copy()
        for j in range(_BLOCKS_PER_SECTOR):
            tweaks[:, j, 0] = lo
            tweaks[:, j, 1] = hi
            # multiply by x: shift the 128-bit value left, fold the carry back
            # with the field polynomial x^128 + x^7 + x^2 + x + 1 (0x87)
            carry = hi >> np.uint64(63)
            hi = (hi << np.uint64(1)) | (lo >> np.uint64(63))
            lo = (lo << np.uint64(1)) ^ (carry * np.uint64(0x87))
        return tweaks.reshape(-1)

    def encrypt(self, data, first_sector):
        """Encrypt ``data`` (a multiple of 512 bytes) starting at sector ``first_sector``."""
        return self._apply(self._data_ecb.encryptor(), data, first_sector)

    def decrypt(self, data, first_sector):
        return self._apply(self._data_ecb.decryptor(), data, first_sector)

    def _apply(self, ecb, data, first_sector):
        np = self._np
        if len(data) % SECTOR:
            raise ValueError("XTS data must be whole 512-byte sectors")
        tweaks = self._tweaks(first_sector, len(data) // SECTOR)
        words = np.frombuffer(data, dtype="<u8") ^ tweaks
        out = np.frombuffer(ecb.update(words.tobytes()), dtype="<u8") ^ tweaks
        return out.tobytes()
