"""The conversion pipeline: SOURCE → plaintext ext4 → LUKS → one-layer image → DEST.

Confidentiality rule (confidential-workloads.md §12, buildah's race): every
plaintext byte lives in a private 0700 scratch directory that is never part
of the output; the output is staged elsewhere and only ever receives
ciphertext.  The scratch directory, the staging directory and any podman
mount are removed on success, on error and on SIGINT/SIGTERM (the CLI turns
those signals into an exception so these ``finally`` blocks run).
"""
import hashlib
import json
import os
import re
import shutil
import tarfile
import time

from ocirt.errors import OcirtError
from ocirt.mkcw import disk, entrypoint, luks, oci, workload
from ocirt.mkcw.dest import classify_dest, deliver
from ocirt.mkcw.progress import Progress
from ocirt.mkcw.source import open_source

# libkrun's README limits for TDX guests, as the krun handler enforces them
TDX_MAX_CPUS, TDX_MAX_RAM_MIB = 1, 3072
RESERVED = ("entrypoint", "krun-sev.json", "disk.img", "tmp", "sev.chain")
_REFERENCE_PATH = re.compile(r"(/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)+")
_WORKLOAD_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


class Options:
    """Everything a conversion needs; ``check()`` validates it before any work."""

    def __init__(self, source, dest, tee="snp", attestation_url="", passphrase=None, cpus=None, memory=None,
                 workload_id=None, slop="25%", firmware_library=None, launch_measurement=None,
                 add_files=(), luks_version=1, token=None, insecure_http=False, kdf_seconds=None,
                 ca_file=None):
        self.source, self.dest = source, dest
        self.tee = tee
        self.attestation_url = attestation_url or ""
        self.passphrase = passphrase            # bytes or None
        self.cpus, self.memory = cpus, memory
        self.workload_id = workload_id
        self.slop = slop
        self.firmware_library = firmware_library
        self.launch_measurement = launch_measurement
        self.add_files = list(add_files)
        self.luks_version = luks_version
        self.token = token
        self.insecure_http = insecure_http
        self.ca_file = ca_file
        self.kdf_seconds = kdf_seconds if kdf_seconds is not None else luks.KDF_TARGET_SECONDS

    def check(self):
        self.tee = (self.tee or "").lower()
        if self.tee not in workload.TEE_TYPES:
            raise OcirtError(f"--type: {self.tee!r} is not one of snp, sev, tdx")
        if not self.attestation_url and not self.passphrase:
            raise OcirtError("neither --attestation-url nor --passphrase given: the disk would not be decryptable")
        if self.cpus is None:
            self.cpus = 1 if self.tee == "tdx" else 2
        if self.memory is None:
            self.memory = 512
        if self.tee == "tdx" and (self.cpus > TDX_MAX_CPUS or self.memory > TDX_MAX_RAM_MIB):
            raise OcirtError(f"--type tdx: libkrun TDX guests take at most {TDX_MAX_CPUS} vCPU and "
                             f"{TDX_MAX_RAM_MIB} MiB (got --cpus {self.cpus} --memory {self.memory})")
        if not 1 <= self.cpus <= 255:
            raise OcirtError(f"--cpus: {self.cpus} is out of range (1..255)")
        if not 1 <= self.memory <= 1 << 22:
            raise OcirtError(f"--memory: {self.memory} MiB is out of range")
        if self.luks_version not in (1, 2):
            raise OcirtError(f"--luks-version: {self.luks_version} is not 1 or 2")
        if not 0.01 <= self.kdf_seconds <= 60:
            raise OcirtError("--kdf-seconds: must be between 0.01 and 60")
        disk.parse_slop(self.slop)
        if self.workload_id is not None and not _WORKLOAD_ID.fullmatch(self.workload_id):
            raise OcirtError(f"--workload-id: {self.workload_id!r} must be 1-128 characters of A-Z a-z 0-9 . _ - "
                             "(it becomes part of the key URL)")
        if self.attestation_url:
            workload.check_url(self.attestation_url, self.insecure_http)
            if self.ca_file and not os.path.isfile(self.ca_file):
                raise OcirtError(f"--attestation-ca: {self.ca_file}: no such file")
            if self.launch_measurement and self.firmware_library:
                raise OcirtError("give either --launch-measurement or --firmware-library, not both")
            if self.launch_measurement:
                self.launch_measurement = workload.check_measurement(self.launch_measurement, self.tee)
            elif not self.firmware_library:
                raise OcirtError("--attestation-url needs the launch measurement: pass --firmware-library PATH "
                                 "or --launch-measurement HEX")
            if self.passphrase is not None:
                try:
                    self.passphrase.decode()
                except UnicodeDecodeError:
                    raise OcirtError("--passphrase: must be UTF-8 text to be registered") from None
        elif self.launch_measurement or self.firmware_library:
            raise OcirtError("--launch-measurement/--firmware-library only make sense with --attestation-url")
        if self.passphrase is not None and not self.passphrase:
            raise OcirtError("--passphrase: empty")
        checked = []
        for spec in self.add_files:
            src, _, dst = spec.partition(":")
            dst = dst or src
            if not os.path.isfile(src):
                raise OcirtError(f"--add-file: {src}: not a regular file")
            parts = [p for p in dst.split("/") if p not in ("", ".")]
            if not parts or ".." in parts:
                raise OcirtError(f"--add-file: bad destination {dst!r}")
            if parts[0] in RESERVED:
                raise OcirtError(f"--add-file: {dst!r} would replace the image's /{parts[0]}")
            checked.append((src, "/".join(parts)))
        self.add_files = checked
        self.dest_kind, self.dest_target = classify_dest(self.dest)
        if self.dest_kind != "podman":
            if os.path.lexists(self.dest_target):
                raise OcirtError(f"DEST {self.dest_target}: already exists")
            parent = os.path.dirname(os.path.abspath(self.dest_target))
            if not os.path.isdir(parent):
                raise OcirtError(f"DEST {self.dest_target}: directory {parent} does not exist")
        return self


def _rfc3339(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def _private_dir(parent, prefix):
    """A new 0700 directory named ``prefix`` + 16 hex digits."""
    for _ in range(8):
        path = os.path.join(parent, prefix + os.urandom(8).hex())
        try:
            os.mkdir(path, 0o700)
            return path
        except FileExistsError:
            continue
        except OSError as e:
            raise OcirtError(f"cannot create a scratch directory in {parent}: {e.strerror}") from None
    raise OcirtError(f"cannot create a scratch directory in {parent}")


def scratch_parent():
    return os.environ.get("TMPDIR") or "/var/tmp"


def convert(opts, progress=None):
    """Run the conversion; returns a dict describing the result."""
    progress = progress or Progress(enabled=False)
    opts.check()
    scratch = stage = None
    try:
        scratch = _private_dir(scratch_parent(), "ocirt-mkcw-")
        plain_dir = os.path.join(scratch, "plain")
        os.mkdir(plain_dir, 0o700)
        if opts.dest_kind == "podman":
            # podman load names the image after this directory's path, so it
            # must spell a valid reference (lowercase; no odd separators)
            base = scratch if _REFERENCE_PATH.fullmatch(scratch) else "/var/tmp"
            stage = os.path.join(base, "ocirt-mkcw-" + os.urandom(8).hex())
            os.mkdir(stage, 0o700)
        else:
            stage = _private_dir(os.path.dirname(os.path.abspath(opts.dest_target)), ".ocirt-mkcw-out-")
        return _convert(opts, progress, scratch, plain_dir, stage)
    finally:
        with _signals_held():           # a second Ctrl-C must not cut the cleanup short
            progress.finish()
            for path in (stage, scratch):
                if path and os.path.exists(path):
                    shutil.rmtree(path, ignore_errors=True)


class _signals_held:
    """Defer SIGINT/SIGTERM/SIGHUP for the duration of a cleanup (main thread only)."""

    SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")

    def __enter__(self):
        import signal
        self._signal = signal
        try:
            self._mask = signal.pthread_sigmask(signal.SIG_BLOCK, [getattr(signal, n) for n in self.SIGNALS])
        except (ValueError, OSError):
            self._mask = None

    def __exit__(self, *exc):
        if self._mask is not None:
            self._signal.pthread_sigmask(self._signal.SIG_SETMASK, self._mask)
        return False


def _convert(opts, progress, scratch, plain_dir, stage):
    now = time.time()
    passphrase = opts.passphrase or os.urandom(32).hex().encode()
    volume_key = os.urandom(luks.KEY_BYTES)
    iterations = luks.calibrate_iterations(opts.kdf_seconds)
    # The key slot's PBKDF2 (about a second of one core) is the longest step
    # for small images: cryptsetup starts first and runs while the source is
    # read, the filesystem built and encrypted; its header goes in last.
    # Plaintext and key material live in files without names (disk.AnonymousFile).
    header = disk.AnonymousFile(plain_dir, luks.header_scratch_size(opts.luks_version))
    header_path = header.path
    formatting = plain = None
    try:
        formatting = luks.Formatting(header_path, passphrase, volume_key, iterations, opts.luks_version)
        progress.mark("cryptsetup started")
        measurement = None
        if opts.attestation_url:     # before any heavy work: a bad firmware library fails fast
            measurement = opts.launch_measurement or workload.measure(opts.firmware_library, opts.tee,
                                                                      opts.cpus, opts.memory)
        progress.start("reading source")
        with open_source(opts.source, plain_dir) as src:
            size = disk.image_size(src.content_size, opts.slop)
            progress.start("making ext4")
            plain = disk.AnonymousFile(plain_dir, size)
            disk.make_ext4(plain.path, src.rootfs, json.dumps(src.config, separators=(",", ":")).encode(),
                           plain_dir)
            source_ident = src.ident
        unpacked = os.path.join(plain_dir, "rootfs")
        if os.path.exists(unpacked):
            shutil.rmtree(unpacked)          # plaintext no longer needed: drop it early

        workload_id = opts.workload_id or hashlib.sha256(
            f"{source_ident}ext4{time.time_ns()}".encode()).hexdigest()
        config_json = workload.workload_json(opts.tee, workload_id, opts.cpus, opts.memory,
                                             opts.attestation_url)
        if opts.attestation_url:
            progress.start("registering")
            workload.register(opts.attestation_url, workload_id, measurement, passphrase, opts.tee, opts.token,
                              ca_file=opts.ca_file)

        from ocirt.mkcw.xts import SectorCipher
        payload_offset = luks.expected_payload_offset(opts.luks_version)
        encrypted = disk.EncryptedDisk(payload_offset, plain.path, SectorCipher(volume_key), config_json)
        layer_digest, layer_size = _write_layer(opts, progress, stage, encrypted, formatting, header_path, now)
    finally:
        if formatting is not None:
            formatting.cancel()
        header.close()
        if plain:
            plain.close()          # the plaintext is gone as soon as it is encrypted
    created = _rfc3339(now)
    image_config = {"created": created, "architecture": "amd64", "os": "linux",
                    "config": {"Entrypoint": ["/entrypoint"]},
                    "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
                    "history": [{"created": created,
                                 "created_by": f': convert "{source_ident}" for use with "{opts.tee}"'}]}
    config_bytes = json.dumps(image_config, separators=(",", ":")).encode()
    manifest_digest, config_digest = oci.write_layout(stage, layer_digest, layer_size, config_bytes)

    progress.start("writing destination")
    result = {"workload_id": workload_id, "layer": layer_digest, "manifest": manifest_digest,
              "image_id": config_digest.split(":")[1], "disk_size": encrypted.size,
              "registered": bool(opts.attestation_url)}
    deliver(opts.dest_kind, opts.dest_target, stage, config_digest, layer_size, scratch)
    return result


def _write_layer(opts, progress, stage, encrypted, formatting, header_path, now):
    """Write the single layer into ``stage``; returns (digest, size)."""
    blobs = os.path.join(stage, "blobs", "sha256")
    os.makedirs(blobs)
    layer_tmp = os.path.join(blobs, "layer.partial")
    mtime = int(now)
    writer = oci.LayerWriter(layer_tmp)
    try:
        def entry(name, data, mode):
            writer.write(oci.tar_header(name, len(data), mode, mtime=mtime) + data + oci.tar_pad(len(data)))

        entry("entrypoint", entrypoint.build(), 0o755)
        entry("krun-sev.json", encrypted.workload_json, 0o600)
        writer.write(oci.tar_header("tmp/", 0, 0o1777, tarfile.DIRTYPE, mtime=mtime))
        made_dirs = set()
        for src_path, dst in opts.add_files:
            parts = dst.split("/")
            for i in range(1, len(parts)):
                d = "/".join(parts[:i]) + "/"
                if d not in made_dirs:
                    made_dirs.add(d)
                    writer.write(oci.tar_header(d, 0, 0o755, tarfile.DIRTYPE, mtime=mtime))
            with open(src_path, "rb") as f:          # streamed: an added file may be large
                size = os.fstat(f.fileno()).st_size
                writer.write(oci.tar_header(dst, size, 0o644, mtime=mtime))
                copied = 0
                while copied < size:
                    block = f.read(min(disk.CHUNK, size - copied))
                    if not block:
                        raise OcirtError(f"--add-file: {src_path}: changed while being read")
                    writer.write(block)
                    copied += len(block)
                writer.write(oci.tar_pad(size))
        writer.write(oci.tar_header("disk.img", encrypted.size, 0o600, mtime=mtime))
        # The key slot is usually still being derived: its header's place is
        # left as a hole and filled as soon as cryptsetup is done, while the
        # payload goes on (the writer then hashes what it skipped).
        header = None
        if formatting.done():
            header = _finished_header(formatting, header_path, encrypted.payload_offset)
            progress.mark("key slot ready")
            writer.write(header)
        else:
            writer.hole(encrypted.payload_offset)
        progress.start("encrypting", encrypted.image_len)
        for chunk in encrypted.payload_chunks(progress.advance):
            writer.write(chunk)
            if header is None and formatting.done():
                header = _finished_header(formatting, header_path, encrypted.payload_offset)
                progress.mark("key slot ready")
                writer.fill_hole(header)
        writer.write(encrypted.tail() + oci.tar_pad(encrypted.size) + oci.TAR_END)
        if header is None:
            progress.start("deriving key")
            writer.fill_hole(_finished_header(formatting, header_path, encrypted.payload_offset))
            progress.mark("key slot ready")
        writer.finish()
    except BaseException:
        writer.abort()
        raise
    digest = writer.digest
    os.rename(layer_tmp, os.path.join(blobs, digest.split(":")[1]))
    return digest, writer.size


def _finished_header(formatting, header_path, expected_offset):
    offset = formatting.wait()
    if offset != expected_offset:
        raise OcirtError(f"cryptsetup put the LUKS payload at {offset}, expected {expected_offset}")
    return luks.read_header(header_path, offset)
