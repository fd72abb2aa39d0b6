"""The LUKS header and key slot 0 of ``disk.img``, built while the rest of the conversion runs.

**LUKS1** (the default, buildah's format) is built here, as luksy (the library
``buildah mkcw`` uses) builds it, in cryptsetup's layout
(confidential-workloads.md §6): aes / xts-plain64 / sha256, a 512-bit volume
key, key slot 0 with PBKDF2-SHA256, 4000 anti-forensic stripes, key material
of slot ``i`` at sectors 8, 512, 1016, ... 3536, payload at sector 4040, a
random v4 UUID, and 4000 iterations for the volume-key digest (luksy's
constant).  Like cryptsetup, every key slot's area is filled: slot 0 with its
key material, the disabled slots with random bytes.  The tests check the
result with cryptsetup itself: ``luksDump`` fields, ``open --test-passphrase``
and ``luksDump --dump-volume-key``.

**LUKS2** (``--luks-version 2``) is formatted by ``cryptsetup luksFormat`` in a
scratch file holding only the header, with the volume key handed over through
a pipe (``--volume-key-file /dev/fd/N``) and the passphrase on stdin.

**Key-derivation cost.**  The key slot's PBKDF2 iteration count is calibrated
as before: the count that OpenSSL's PBKDF2-HMAC-SHA256 (``hashlib``, the code
cryptsetup runs to open the slot) needs for ``kdf_seconds`` (default 1, as
luksy and cryptsetup) of CPU time for the 64-byte key on this host, measured
in ~25 ms of CPU time, so a busy host does not pick a cheaper slot.  That count
is what an attacker pays per guess, and what the guest pays to unlock.

What changed is how ocirt-mkcw itself computes it.  A 64-byte key is two
independent 32-byte PBKDF2 blocks (RFC 8018 §5.2: T_1 and T_2 share nothing
but the password and salt); cryptsetup and OpenSSL compute them one after the
other.  Here each block runs on its own core, in C (``_crypto_build.py``):
the same iterations, on two cores instead of one.
"""
import hashlib
import json
import os
import struct
import subprocess
import threading
import time

from ocirt.errors import OcirtError

CIPHER = "aes-xts-plain64"
KEY_BYTES = 64                    # 512-bit key = AES-256-XTS
KDF_TARGET_SECONDS = 1.0          # luksy's and cryptsetup's default
SECTOR = 512
LUKS2_PAYLOAD_OFFSET = 16 << 20   # cryptsetup's default LUKS2 data offset
_MIN_ITERATIONS = 1000            # cryptsetup's floor for PBKDF2
_MAX_ITERATIONS = (1 << 32) - 1   # LUKS1 stores the count as a u32

# LUKS1 on-disk format (LUKS1 On-Disk Format Specification 1.2.3; cryptsetup lib/luks1)
LUKS1_MAGIC = b"LUKS\xba\xbe"
LUKS1_SLOTS = 8
LUKS1_STRIPES = 4000
LUKS1_MK_ITERATIONS = 4000        # luksy: the stripe count (cryptsetup forced: 1000)
LUKS1_SALT = 32
LUKS1_DIGEST = 20
LUKS1_KEY_ENABLED = 0x00AC71F3
LUKS1_KEY_DISABLED = 0x0000DEAD
LUKS1_ALIGN_SECTORS = 4096 // SECTOR   # key slots start 4 KiB-aligned; --align-payload 8
_PHDR = struct.Struct(">6sH32s32s32sII20s32sI40s")
_KEYBLOCK = struct.Struct(">II32sII")
LUKS1_PAYLOAD_SECTORS = 4040      # luksy's layout; what luks1_layout() computes for 64-byte keys


def calibrate_iterations(target=KDF_TARGET_SECONDS):
    """PBKDF2-SHA256 iterations that take OpenSSL ``target`` seconds of CPU for a 64-byte key here."""
    # CPU time, not wall time: on a busy host a wall-clock probe is stretched
    # by other jobs and would pick a cheaper key slot than one second of work
    # (CPU time is not stretched by preemption, so one probe is enough)
    probe = 50000
    start = time.thread_time()
    hashlib.pbkdf2_hmac("sha256", b"calibration", b"\0" * 32, probe, KEY_BYTES)
    elapsed = max(time.thread_time() - start, 1e-6)
    return min(_MAX_ITERATIONS, max(_MIN_ITERATIONS, int(probe * target / elapsed)))


def pbkdf2_sha256(password, salt, iterations, dklen):
    """PBKDF2-HMAC-SHA256 (equal to ``hashlib.pbkdf2_hmac``), its 32-byte blocks on parallel threads."""
    from ocirt.mkcw.xts import crypto_lib
    ffi, lib = crypto_lib()
    if not 1 <= iterations <= _MAX_ITERATIONS or dklen < 1:
        raise ValueError("PBKDF2: bad iteration count or key length")
    password, salt = bytes(password), bytes(salt)
    blocks = [None] * -(-dklen // 32)

    def block(i):
        out = ffi.new("unsigned char[32]")
        lib.pbkdf2_sha256_block(password, len(password), salt, len(salt), iterations, i + 1, out)
        blocks[i] = bytes(ffi.buffer(out))
        ffi.memmove(out, bytes(32), 32)

    helpers = [threading.Thread(target=block, args=(i,), name=f"pbkdf2-block-{i + 1}", daemon=True)
               for i in range(1, len(blocks))]
    for t in helpers:
        t.start()
    block(0)
    for t in helpers:
        t.join()
    if any(b is None for b in blocks):
        raise OcirtError("PBKDF2: a block was not computed")
    return b"".join(blocks)[:dklen]


# -- LUKS1 ---------------------------------------------------------------------

def luks1_layout(key_bytes=KEY_BYTES):
    """(key material sector of each slot, payload sector): cryptsetup's and luksy's arithmetic."""
    material = -(-key_bytes * LUKS1_STRIPES // SECTOR)
    offsets, sector = [], LUKS1_ALIGN_SECTORS
    for _ in range(LUKS1_SLOTS):
        offsets.append(sector)
        sector = -(-(sector + material) // LUKS1_ALIGN_SECTORS) * LUKS1_ALIGN_SECTORS
    return offsets, sector


def _xor(a, b):
    return (int.from_bytes(a, "little") ^ int.from_bytes(b, "little")).to_bytes(len(a), "little")


def _diffuse(block):
    """LUKS AF diffusion with SHA-256: each 32-byte piece i becomes SHA256(be32(i) ‖ piece)."""
    out = []
    for i in range(0, len(block), 32):
        piece = block[i:i + 32]
        out.append(hashlib.sha256(struct.pack(">I", i // 32) + piece).digest()[:len(piece)])
    return b"".join(out)


def af_split(key, stripes=LUKS1_STRIPES):
    """Anti-forensic split of ``key`` into ``stripes`` blocks (cryptsetup lib/luks1/af.c AF_split)."""
    n = len(key)
    randomness = os.urandom(n * (stripes - 1))
    acc = bytes(n)
    for s in range(stripes - 1):
        acc = _diffuse(_xor(acc, randomness[s * n:(s + 1) * n]))
    return randomness + _xor(acc, key)


def af_merge(material, key_bytes, stripes=LUKS1_STRIPES):
    """The inverse of ``af_split`` (what cryptsetup does to open a slot)."""
    acc = bytes(key_bytes)
    for s in range(stripes - 1):
        acc = _diffuse(_xor(acc, material[s * key_bytes:(s + 1) * key_bytes]))
    return _xor(acc, material[(stripes - 1) * key_bytes:stripes * key_bytes])


def luks1_header(passphrase, volume_key, iterations):
    """The LUKS1 header and all key slot areas: ``payload offset`` bytes, slot 0 opened by ``passphrase``."""
    from ocirt.mkcw.xts import SectorCipher
    import uuid
    if len(volume_key) != KEY_BYTES:
        raise ValueError("volume key must be 64 bytes")
    if not _MIN_ITERATIONS <= iterations <= _MAX_ITERATIONS:
        raise ValueError(f"key slot iterations {iterations} out of range")
    offsets, payload = luks1_layout(KEY_BYTES)
    material_len = KEY_BYTES * LUKS1_STRIPES
    mk_salt, slot_salt = os.urandom(LUKS1_SALT), os.urandom(LUKS1_SALT)
    mk_digest = hashlib.pbkdf2_hmac("sha256", volume_key, mk_salt, LUKS1_MK_ITERATIONS, LUKS1_DIGEST)
    split = af_split(volume_key)
    derived = pbkdf2_sha256(passphrase, slot_salt, iterations, KEY_BYTES)      # the long part
    material = SectorCipher(derived).encrypt(split, 0)      # key material sectors count from 0
    del derived, split

    header = bytearray(payload * SECTOR)
    phdr = _PHDR.pack(LUKS1_MAGIC, 1, b"aes", b"xts-plain64", b"sha256", payload, KEY_BYTES, mk_digest, mk_salt,
                      LUKS1_MK_ITERATIONS, str(uuid.uuid4()).encode())
    slots = [_KEYBLOCK.pack(LUKS1_KEY_ENABLED, iterations, slot_salt, offsets[0], LUKS1_STRIPES)]
    slots += [_KEYBLOCK.pack(LUKS1_KEY_DISABLED, 0, bytes(LUKS1_SALT), off, LUKS1_STRIPES) for off in offsets[1:]]
    head = phdr + b"".join(slots)
    header[:len(head)] = head
    header[offsets[0] * SECTOR:offsets[0] * SECTOR + material_len] = material
    for off in offsets[1:]:         # as cryptsetup does: unused slot areas hold random bytes, not zeros
        header[off * SECTOR:off * SECTOR + material_len] = os.urandom(material_len)
    return bytes(header)


# -- LUKS2: cryptsetup ---------------------------------------------------------------

class Formatting:
    """A running ``cryptsetup luksFormat`` of a header scratch file; ``wait()`` returns the payload offset."""

    def __init__(self, path, passphrase, volume_key, iterations, luks_version=2):
        if len(volume_key) != KEY_BYTES:
            raise ValueError("volume key must be 64 bytes")
        self.path, self.luks_version = path, luks_version
        args = ["cryptsetup", "luksFormat", "--batch-mode", "--type", f"luks{luks_version}",
                "--cipher", CIPHER, "--key-size", str(KEY_BYTES * 8), "--hash", "sha256",
                "--pbkdf", "pbkdf2", "--pbkdf-force-iterations", str(iterations),
                "--key-file", "-", "--key-slot", "0"]
        args += ["--align-payload", "8"] if luks_version == 1 else ["--sector-size", str(SECTOR)]
        rfd, wfd = os.pipe()
        try:
            # 64 bytes fit in any pipe buffer: the key is all there before cryptsetup reads
            os.write(wfd, volume_key)
            os.close(wfd)
            wfd = -1
            try:
                self.proc = subprocess.Popen(args + ["--volume-key-file", f"/dev/fd/{rfd}", path],
                                             stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                             stderr=subprocess.PIPE, pass_fds=[rfd])
            except FileNotFoundError:
                raise OcirtError("cryptsetup not found: install cryptsetup-bin") from None
        finally:
            os.close(rfd)
            if wfd >= 0:
                os.close(wfd)
        self._passphrase = passphrase

    def wait(self):
        try:
            _, err = self.proc.communicate(self._passphrase, timeout=300)
        except BaseException:
            self.cancel()
            raise
        if self.proc.returncode != 0:
            msg = err.decode(errors="replace").strip().splitlines()
            raise OcirtError(f"cryptsetup luksFormat failed: {msg[-1] if msg else 'exit %d' % self.proc.returncode}")
        return payload_offset(self.path, self.luks_version)

    def cancel(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def payload_offset(path, luks_version):
    """The payload offset in bytes, as the written header says."""
    if luks_version == 1:
        # LUKS1 phdr: magic[6] version u16 cipher[32] mode[32] hash[32] payloadOffset u32 (big-endian)
        with open(path, "rb") as f:
            head = f.read(108)
        if head[:6] != LUKS1_MAGIC:
            raise OcirtError(f"{path}: cryptsetup did not write a LUKS header")
        return int.from_bytes(head[104:108], "big") * SECTOR
    res = subprocess.run(["cryptsetup", "luksDump", "--dump-json-metadata", path],
                         capture_output=True, text=True, timeout=60)
    if res.returncode != 0:
        raise OcirtError(f"cryptsetup luksDump failed: {res.stderr.strip()}")
    return int(json.loads(res.stdout)["segments"]["0"]["offset"])


def expected_payload_offset(luks_version):
    """Where the payload starts: LUKS1 by our layout, LUKS2 as cryptsetup chooses with our parameters."""
    return LUKS1_PAYLOAD_SECTORS * SECTOR if luks_version == 1 else LUKS2_PAYLOAD_OFFSET


def header_scratch_size(luks_version):
    """How big the scratch file cryptsetup formats must be."""
    # LUKS2 defaults to a 16 MiB header; one more MiB of room for either version
    return (16 << 20 if luks_version == 2 else LUKS1_PAYLOAD_SECTORS * SECTOR) + (1 << 20)


# -- the background job ---------------------------------------------------------------

class HeaderJob:
    """Calibrates the key slot and builds the header in a background thread.

    ``done()`` says whether it finished; ``wait()`` returns the header bytes
    (exactly the payload offset long) or raises what went wrong; ``cancel()``
    stops a running cryptsetup (the LUKS1 derivation is left to finish in its
    daemon threads: it holds no file and writes nothing).  ``scratch_dir``
    holds cryptsetup's nameless header file for LUKS2.
    """

    def __init__(self, luks_version, passphrase, volume_key, kdf_seconds, scratch_dir):
        if len(volume_key) != KEY_BYTES:
            raise ValueError("volume key must be 64 bytes")
        self.luks_version = luks_version
        self.iterations = None
        self._args = (passphrase, volume_key, kdf_seconds, scratch_dir)
        self._lock = threading.Lock()
        self._cancelled = False
        self._formatting = None
        self._header = self._error = None
        self._thread = threading.Thread(target=self._run, name="luks-header", daemon=True)
        self._thread.start()

    def _run(self):
        passphrase, volume_key, kdf_seconds, scratch_dir = self._args
        self._args = None
        try:
            self.iterations = calibrate_iterations(kdf_seconds)
            if self.luks_version == 1:
                self._header = luks1_header(passphrase, volume_key, self.iterations)
            else:
                self._header = self._cryptsetup(passphrase, volume_key, scratch_dir)
        except BaseException as e:          # handed to wait() in the main thread
            self._error = e

    def _cryptsetup(self, passphrase, volume_key, scratch_dir):
        from ocirt.mkcw.disk import AnonymousFile
        with AnonymousFile(scratch_dir, header_scratch_size(self.luks_version)) as scratch:
            with self._lock:
                if self._cancelled:
                    raise OcirtError("cancelled")
                self._formatting = Formatting(scratch.path, passphrase, volume_key, self.iterations,
                                              self.luks_version)
            offset = self._formatting.wait()
            expected = expected_payload_offset(self.luks_version)
            if offset != expected:
                raise OcirtError(f"cryptsetup put the LUKS payload at {offset}, expected {expected}")
            header = os.pread(scratch.fd, offset, 0)
        if len(header) != offset:
            raise OcirtError("LUKS header is shorter than its payload offset")
        return header

    def done(self):
        return not self._thread.is_alive()

    def wait(self):
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._header

    def cancel(self):
        with self._lock:
            self._cancelled = True
            if self._formatting is not None:
                self._formatting.cancel()
