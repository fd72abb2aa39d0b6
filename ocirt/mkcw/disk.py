"""``/disk.img``: sizing, the plaintext ext4, and the encrypted byte stream.

Layout (confidential-workloads.md §4):

    [LUKS header + key material : payload_offset bytes]
    [AES-XTS-plain64 ciphertext of the ext4 image     ]
    [zero padding to a multiple of 4096               ]
    [krun-sev.json bytes | b"KRUN" | u64 LE length    ]
"""
import errno
import os
import re
import struct
import subprocess
import threading

from ocirt.errors import OcirtError

MIN_IMAGE_SIZE = 10 << 20          # buildah's minimumImageSize
ALIGN = 4096
FOOTER_MAGIC = b"KRUN"
FOOTER_MAX_JSON = 1 << 20          # what buildah's reader accepts
SECTOR = 512
CHUNK = 1 << 20                    # encryption granularity: bounds memory use

# Pinned so the guest kernel's ext4 support, not the build host's
# /etc/mke2fs.conf, decides what works: the defaults of e2fsprogs 1.47 add
# orphan_file and metadata_csum_seed, which older guest kernels refuse
# (confidential-workloads.md §7).
EXT4_FEATURES = ("none,has_journal,ext_attr,resize_inode,dir_index,filetype,extent,64bit,flex_bg,"
                 "sparse_super,large_file,huge_file,dir_nlink,extra_isize,metadata_csum")

_SIZE_TERM = re.compile(r"^(\d+(?:\.\d+)?) ?([kmgtp])?i?b?$", re.IGNORECASE)
_UNITS = {None: 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


class AnonymousFile:
    """A scratch file with no name (O_TMPFILE) for plaintext and key material.

    The kernel frees it when the last descriptor closes -- also when ocirt-mkcw
    is SIGKILLed, which no cleanup handler survives.  Child processes (mkfs,
    debugfs, cryptsetup) reach it as ``/proc/<pid>/fd/<n>``.  On a filesystem
    without O_TMPFILE it falls back to a named 0600 file, unlinked on close.
    """

    def __init__(self, directory, size=0):
        self._named = None
        try:
            self.fd = os.open(directory, os.O_TMPFILE | os.O_RDWR, 0o600)
        except OSError as e:
            if e.errno not in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL):
                raise
            self._named = os.path.join(directory, "scratch-" + os.urandom(8).hex())
            self.fd = os.open(self._named, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        os.ftruncate(self.fd, size)
        self.path = self._named or f"/proc/{os.getpid()}/fd/{self.fd}"

    def close(self):
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
            if self._named:
                os.unlink(self._named)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def parse_slop(spec):
    """Check a ``--slop`` value; returns the list of terms ('pct', n) / ('add', bytes)."""
    terms = []
    for raw in (spec or "25%").split("+"):
        term = raw.strip()
        if term.endswith("%"):
            try:
                pct = int(term[:-1])
            except ValueError:
                raise OcirtError(f"--slop: {raw!r} is not a percentage") from None
            if not -100 < pct <= 127:      # buildah parses the number as an int8
                raise OcirtError(f"--slop: {raw!r} is out of range (-99%..127%)")
            terms.append(("pct", pct))
            continue
        m = _SIZE_TERM.match(term)
        if not m:
            raise OcirtError(f"--slop: {raw!r} is neither N% nor a size such as 512MB")
        unit = m.group(2).lower() if m.group(2) else None
        terms.append(("add", int(float(m.group(1)) * _UNITS[unit])))
    return terms


def image_size(content_size, slop):
    """Size of the ext4 image: the slop rule, rounded up to 4 KiB, at least 10 MiB."""
    size = content_size
    for kind, n in parse_slop(slop):
        size = size * (100 + n) // 100 if kind == "pct" else size + n
    size = -(-size // ALIGN) * ALIGN
    return max(size, MIN_IMAGE_SIZE)


# fsync & co. of the processes that write the plaintext filesystem
_SYNC_CALLS = ("fsync", "fdatasync", "sync", "syncfs", "sync_file_range", "msync")
_no_sync = []           # [compiled filter or None], made once


def _no_sync_filter():
    if not _no_sync:
        try:
            from ocirt.linux import seccomp
            _no_sync.append((seccomp, seccomp.compile({
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": list(_SYNC_CALLS), "action": "SCMP_ACT_ERRNO", "errnoRet": 0}]})))
        except Exception:            # no libseccomp (or no compiled binding): the children just sync
            _no_sync.append(None)
    return _no_sync[0]


def run_unsynced(args, input=None):
    """``subprocess.run(args, capture_output=True, text=True)``, but the child's syncs do nothing.

    mkfs.ext4 ends with an fsync that forces the whole plaintext image out to
    the disk (~0.2 s for 270 MB).  The image is a nameless scratch file that
    is encrypted and closed seconds later, so no sync is needed; without it
    the plaintext pages are usually dropped before writeback ever reaches the
    disk.  The child is started from a short-lived thread that first installs
    a seccomp filter (thread-local: this process and its other children are
    untouched) under which fsync, fdatasync, sync, syncfs, sync_file_range and
    msync return 0 at once; the child inherits it.  Without libseccomp or the
    privilege to load a filter, the child runs normally.
    """
    box = {}
    lock = threading.Lock()

    def spawn():
        try:
            unsynced = _no_sync_filter()
            if unsynced is not None:
                try:
                    unsynced[0].load(unsynced[1])
                except Exception:
                    pass
            proc = subprocess.Popen(args, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        except BaseException as e:
            box["error"] = e
            return
        with lock:
            box["proc"] = proc
            if box.get("abandoned"):     # the caller was interrupted while this thread started it
                proc.kill()
                proc.wait()

    spawner = threading.Thread(target=spawn, name="unsynced-spawn", daemon=True)
    spawner.start()
    try:
        spawner.join()
    except BaseException:
        with lock:
            box["abandoned"] = True
            if "proc" in box:
                box["proc"].kill()
                box["proc"].wait()
        raise
    if "error" in box:
        raise box["error"]
    proc = box["proc"]
    with proc:
        try:
            out, err = proc.communicate(input)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
    return subprocess.CompletedProcess(args, proc.returncode, out, err)


def make_ext4(path, rootfs, krun_config, scratch_dir):
    """Build the plaintext ext4 in ``path`` (already sized) from ``rootfs``, mounting nothing.

    ``krun_config`` (bytes) becomes ``/.krun_config.json`` (0600, 0:0); it is
    written with debugfs so the source tree is never modified.
    """
    size = os.path.getsize(path)
    res = run_unsynced(["mkfs.ext4", "-q", "-F", "-O", EXT4_FEATURES, "-m", "0", "-I", "256", "-d", rootfs, path])
    if res.returncode != 0:
        err = res.stderr.strip()
        if "allocate" in err or "space" in err.lower() or "inode" in err.lower():
            raise OcirtError(f"disk.img: the image's files do not fit in {size} bytes; raise --slop ({err.splitlines()[-1]})")
        raise OcirtError(f"mkfs.ext4 failed: {err.splitlines()[-1] if err else res.returncode}")
    with AnonymousFile(scratch_dir) as config:      # the image config may hold secrets (Env)
        os.write(config.fd, krun_config)
        res = run_unsynced(["debugfs", "-w", "-f", "-", path],
                           input=f"rm /.krun_config.json\nwrite {config.path} /.krun_config.json\n"
                                 "sif /.krun_config.json uid 0\nsif /.krun_config.json gid 0\n"
                                 "sif /.krun_config.json mode 0100600\n")
    if res.returncode != 0 or "Allocated inode" not in res.stdout:
        raise OcirtError(f"debugfs could not add /.krun_config.json to disk.img: {res.stderr.strip()[-200:]}")


def footer(workload_json):
    """The trailer the guest reads to find its TEE config."""
    return workload_json + FOOTER_MAGIC + struct.pack("<Q", len(workload_json))


def read_footer(tail):
    """Parse the footer from the end of a disk image; returns the JSON bytes."""
    if len(tail) < 12 or tail[-12:-8] != FOOTER_MAGIC:
        raise OcirtError("disk.img: no KRUN footer")
    (length,) = struct.unpack("<Q", tail[-8:])
    if length > FOOTER_MAX_JSON or length > len(tail) - 12:
        raise OcirtError(f"disk.img: footer length {length} is out of range")
    return tail[-12 - length:-12]


def padding(header_len, image_len, footer_len):
    return (ALIGN - (header_len + image_len + footer_len) % ALIGN) % ALIGN


class EncryptedDisk:
    """The bytes of ``/disk.img`` after the LUKS header, produced chunk by chunk."""

    def __init__(self, payload_offset, plain_path, cipher, workload_json):
        self.payload_offset = payload_offset
        self.plain_path = plain_path
        self.cipher = cipher                # an xts.SectorCipher holding the volume key
        self.image_len = os.path.getsize(plain_path)
        self.workload_json = workload_json
        self.footer = footer(workload_json)
        self.padding = padding(payload_offset, self.image_len, len(self.footer))
        self.size = payload_offset + self.image_len + self.padding + len(self.footer)

    def payload_chunks(self, progress=None):
        """Ciphertext of the ext4 image; at most CHUNK bytes of plaintext in memory."""
        sector = 0
        with open(self.plain_path, "rb", buffering=0) as plain:
            while True:
                block = plain.read(CHUNK)
                if not block:
                    break
                if len(block) % SECTOR:
                    raise OcirtError(f"{self.plain_path}: short read")
                yield self.cipher.encrypt(block, sector)
                sector += len(block) // SECTOR
                if progress:
                    progress(len(block))

    def tail(self):
        return b"\0" * self.padding + self.footer
