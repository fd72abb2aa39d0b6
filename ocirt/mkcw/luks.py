"""LUKS header and key slot, written by cryptsetup; never by hand.

cryptsetup formats a small scratch file that holds only the header and the
key material; the payload is encrypted in-process (``xts.py``) with the volume
key generated here and handed to cryptsetup through a pipe, so neither the
volume key nor the passphrase ever touches a disk or a command line.

Key-derivation cost matches buildah/luksy (confidential-workloads.md §6):
PBKDF2-SHA256 calibrated to about one second on the build host.  cryptsetup's
own calibration takes a second or more before the real derivation, so the
iteration count is measured here in ~50 ms of CPU time and forced with
``--pbkdf-force-iterations``.  LUKS1 geometry equals luksy's: key material of
slot 0 at sector 8, 4000 AF stripes, payload at sector 4040
(``--align-payload 8``; cryptsetup's default would be 4096).  One difference
cryptsetup does not let us remove: its master-key digest uses 1000
iterations where luksy uses 4000 (a few milliseconds either way).
"""
import hashlib
import json
import os
import subprocess
import time

from ocirt.errors import OcirtError

CIPHER = "aes-xts-plain64"
KEY_BYTES = 64                    # 512-bit key = AES-256-XTS
KDF_TARGET_SECONDS = 1.0          # luksy's calibration target
LUKS1_PAYLOAD_SECTORS = 4040      # luksy's layout; checked after formatting
SECTOR = 512
LUKS2_PAYLOAD_OFFSET = 16 << 20   # cryptsetup's default LUKS2 data offset
_MIN_ITERATIONS = 1000            # cryptsetup's floor for PBKDF2


def calibrate_iterations(target=KDF_TARGET_SECONDS):
    """PBKDF2-SHA256 iterations that take ``target`` seconds for a 64-byte key here."""
    # CPU time, not wall time: on a busy host a wall-clock probe is stretched
    # by other jobs and would pick a cheaper key slot than one second of work
    # (CPU time is not stretched by preemption, so one probe is enough)
    probe = 50000
    start = time.thread_time()
    hashlib.pbkdf2_hmac("sha256", b"calibration", b"\0" * 32, probe, KEY_BYTES)
    elapsed = max(time.thread_time() - start, 1e-6)
    return max(_MIN_ITERATIONS, int(probe * target / elapsed))


class Formatting:
    """A running ``cryptsetup luksFormat``; ``wait()`` returns the payload offset in bytes.

    The key derivation takes about a second of one core, so the pipeline lets
    it run while the ext4 image is built and encrypted.  For that, cryptsetup
    gets everything it reads at once: the volume key in one pipe, the
    passphrase in another (its stdin), both written as it starts.  (Handing
    the passphrase over in ``wait()`` kept cryptsetup blocked on stdin until
    then, so the derivation only began when its result was needed.)
    ``--keyfile-size`` makes cryptsetup fail rather than format with a
    passphrase cut short, should the pipe close early.
    """

    def __init__(self, path, passphrase, volume_key, iterations, luks_version=1):
        if len(volume_key) != KEY_BYTES:
            raise ValueError("volume key must be 64 bytes")
        self.path, self.luks_version = path, luks_version
        args = ["cryptsetup", "luksFormat", "--batch-mode", "--type", f"luks{luks_version}",
                "--cipher", CIPHER, "--key-size", str(KEY_BYTES * 8), "--hash", "sha256",
                "--pbkdf", "pbkdf2", "--pbkdf-force-iterations", str(iterations),
                "--key-file", "-", "--keyfile-size", str(len(passphrase)), "--key-slot", "0"]
        args += ["--align-payload", "8"] if luks_version == 1 else ["--sector-size", str(SECTOR)]
        fds = []
        try:
            key_r, key_w = os.pipe()
            fds += [key_r, key_w]
            pass_r, pass_w = os.pipe()
            fds += [pass_r, pass_w]
            # 64 bytes fit in any pipe buffer: the key is all there before cryptsetup reads
            os.write(key_w, volume_key)
            try:
                self.proc = subprocess.Popen(args + ["--volume-key-file", f"/dev/fd/{key_r}", path],
                                             stdin=pass_r, stdout=subprocess.DEVNULL,
                                             stderr=subprocess.PIPE, pass_fds=[key_r])
            except FileNotFoundError:
                raise OcirtError("cryptsetup not found: install cryptsetup-bin") from None
            fds.remove(pass_w)
            _feed(pass_w, passphrase)
        finally:
            for fd in fds:
                os.close(fd)

    def done(self):
        return self.proc.poll() is not None

    def wait(self):
        try:
            _, err = self.proc.communicate(timeout=300)
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


def _feed(fd, data):
    """Write ``data`` to the pipe ``fd`` and close it, without blocking the caller.

    A passphrase normally fits in the pipe's buffer; the rest of a longer one
    (``--passphrase-file`` may be big) is written by a short-lived thread.
    """
    os.set_blocking(fd, False)
    try:
        done = os.write(fd, data) if data else 0
    except BlockingIOError:
        done = 0
    except BrokenPipeError:             # cryptsetup is gone already; wait() reports why
        os.close(fd)
        return
    if done == len(data):
        os.close(fd)
        return
    os.set_blocking(fd, True)

    def rest():
        view = memoryview(data)[done:]
        try:
            while view:                 # a pipe write can be cut short by a signal
                view = view[os.write(fd, view):]
        except OSError:                 # cryptsetup is gone; with --keyfile-size it cannot use a part
            pass
        finally:
            os.close(fd)

    import threading
    threading.Thread(target=rest, name="cryptsetup-passphrase", daemon=True).start()


def format_header(path, passphrase, volume_key, iterations, luks_version=1):
    """Write a LUKS header + key slot 0 to ``path``; returns the payload offset in bytes."""
    return Formatting(path, passphrase, volume_key, iterations, luks_version).wait()


def payload_offset(path, luks_version):
    """The payload offset in bytes, as the written header says."""
    if luks_version == 1:
        # LUKS1 phdr: magic[6] version u16 cipher[32] mode[32] hash[32] payloadOffset u32 (big-endian)
        with open(path, "rb") as f:
            head = f.read(108)
        if head[:6] != b"LUKS\xba\xbe":
            raise OcirtError(f"{path}: cryptsetup did not write a LUKS header")
        return int.from_bytes(head[104:108], "big") * SECTOR
    res = subprocess.run(["cryptsetup", "luksDump", "--dump-json-metadata", path],
                         capture_output=True, text=True, timeout=60)
    if res.returncode != 0:
        raise OcirtError(f"cryptsetup luksDump failed: {res.stderr.strip()}")
    return int(json.loads(res.stdout)["segments"]["0"]["offset"])


def expected_payload_offset(luks_version):
    """The payload offset cryptsetup will choose with our parameters (checked after formatting)."""
    return LUKS1_PAYLOAD_SECTORS * SECTOR if luks_version == 1 else LUKS2_PAYLOAD_OFFSET


def read_header(path, payload_offset):
    with open(path, "rb") as f:
        header = f.read(payload_offset)
    if len(header) != payload_offset:
        raise OcirtError("LUKS header is shorter than its payload offset")
    return header


def header_scratch_size(luks_version):
    """How big the scratch file cryptsetup formats must be."""
    # LUKS2 defaults to a 16 MiB header; one more MiB of room for either version
    return (16 << 20 if luks_version == 2 else LUKS1_PAYLOAD_SECTORS * SECTOR) + (1 << 20)
