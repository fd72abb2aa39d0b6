"""OCI image layouts: read a source image, apply its layers, write the result.

Only what ocirt-mkcw needs: the image-spec layout (``oci-layout``,
``index.json``, ``blobs/<alg>/<hex>``) as a directory or a tar archive,
manifests and indexes (picking linux/amd64), and layer application with
whiteouts.  Layers are untrusted input: every path is resolved one component
at a time below the root with ``O_NOFOLLOW``, so a symlink in a layer can
never redirect a write outside the root.
"""
import errno
import hashlib
import json
import os
import shutil
import stat
import tarfile

from ocirt.errors import OcirtError

MT_INDEX = "application/vnd.oci.image.index.v1+json"
MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
REF_ANNOTATION = "org.opencontainers.image.ref.name"
_MAX_JSON = 4 << 20


class Layout:
    """Read access to an OCI layout directory or archive."""

    def __init__(self, path):
        self.path = path
        self._tar = None
        if os.path.isdir(path):
            if not os.path.exists(os.path.join(path, "oci-layout")):
                raise OcirtError(f"{path}: not an OCI layout (no oci-layout file)")
        else:
            try:
                self._tar = tarfile.open(path, "r:")
            except (OSError, tarfile.TarError) as e:
                raise OcirtError(f"{path}: not an OCI archive: {e}") from None
            self._members = {os.path.normpath(m.name).lstrip("/"): m for m in self._tar.getmembers()
                             if m.isfile()}
            if "oci-layout" not in self._members:
                self.close()
                raise OcirtError(f"{path}: not an OCI archive (no oci-layout file)")

    def close(self):
        if self._tar:
            self._tar.close()
            self._tar = None

    def open_path(self, rel):
        if self._tar is None:
            try:
                return open(os.path.join(self.path, rel), "rb")
            except OSError as e:
                raise OcirtError(f"{self.path}: {rel}: {e.strerror}") from None
        member = self._members.get(rel)
        if member is None:
            raise OcirtError(f"{self.path}: {rel} is missing")
        return self._tar.extractfile(member)

    def blob(self, digest):
        alg, _, hexpart = digest.partition(":")
        if alg not in ("sha256", "sha512") or not hexpart.isalnum():
            raise OcirtError(f"{self.path}: bad digest {digest!r}")
        return self.open_path(f"blobs/{alg}/{hexpart}")

    def json(self, rel=None, digest=None):
        with (self.blob(digest) if digest else self.open_path(rel)) as f:
            data = f.read(_MAX_JSON + 1)
        if len(data) > _MAX_JSON:
            raise OcirtError(f"{self.path}: {rel or digest} is too large")
        if digest and hashlib.new(digest.split(":")[0], data).hexdigest() != digest.split(":")[1]:
            raise OcirtError(f"{self.path}: blob {digest} does not match its digest")
        try:
            return json.loads(data), data
        except ValueError:
            raise OcirtError(f"{self.path}: {rel or digest} is not valid JSON") from None

    def image(self, ref=None):
        """(manifest, config object, raw config bytes, config digest) of the chosen image."""
        index, _ = self.json("index.json")
        descs = index.get("manifests") or []
        if ref:
            descs = [d for d in descs if (d.get("annotations") or {}).get(REF_ANNOTATION) == ref]
            if not descs:
                raise OcirtError(f"{self.path}: no image named {ref!r} in index.json")
        if not descs:
            raise OcirtError(f"{self.path}: index.json lists no image")
        desc = _pick(descs, self.path) if len(descs) > 1 else descs[0]
        for _ in range(4):          # nested indexes, bounded
            if desc.get("mediaType") not in (MT_INDEX, DOCKER_LIST):
                break
            nested, _ = self.json(digest=desc["digest"])
            desc = _pick(nested.get("manifests") or [], self.path)
        manifest, _ = self.json(digest=desc["digest"])
        if manifest.get("mediaType", MT_MANIFEST) not in (MT_MANIFEST, DOCKER_MANIFEST) or "config" not in manifest:
            raise OcirtError(f"{self.path}: {desc['digest']} is not an image manifest")
        config, raw = self.json(digest=manifest["config"]["digest"])
        return manifest, config, raw, manifest["config"]["digest"]


def _pick(descs, where):
    for d in descs:
        p = d.get("platform") or {}
        if p.get("os", "linux") == "linux" and p.get("architecture", "amd64") == "amd64":
            return d
    raise OcirtError(f"{where}: no linux/amd64 image in the index")


# -- layer application -------------------------------------------------------

def _open_layer(fileobj, where):
    head = fileobj.read(4)
    rest = _Prefixed(head, fileobj)
    if head[:2] == b"\x1f\x8b":
        return tarfile.open(fileobj=rest, mode="r|gz")
    if head == b"\x28\xb5\x2f\xfd":
        raise OcirtError(f"{where}: zstd-compressed layers are not supported; convert the image to gzip first")
    return tarfile.open(fileobj=rest, mode="r|")


class _Prefixed:
    """A stream with some already-read bytes put back in front."""

    def __init__(self, head, f):
        self._head, self._f = head, f

    def read(self, n=-1):
        if self._head:
            if n is None or n < 0:
                data, self._head = self._head + self._f.read(), b""
                return data
            data, self._head = self._head[:n], self._head[n:]
            return data + (self._f.read(n - len(data)) if n > len(data) else b"")
        return self._f.read(n)


def _components(name):
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        return None
    return parts


def _walk_parent(root_fd, parts, create):
    """An fd for the directory holding ``parts[-1]``, never following symlinks."""
    fd = os.dup(root_fd)
    try:
        for p in parts[:-1]:
            try:
                nfd = os.open(p, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise
                os.mkdir(p, 0o755, dir_fd=fd)
                nfd = os.open(p, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            except OSError as e:
                if e.errno in (errno.ENOTDIR, errno.ELOOP):
                    # a layer replaced a directory with a non-directory; the
                    # later entry wins, as when the runtime applies layers
                    os.unlink(p, dir_fd=fd)
                    os.mkdir(p, 0o755, dir_fd=fd)
                    nfd = os.open(p, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
                else:
                    raise
            os.close(fd)
            fd = nfd
        return fd
    except BaseException:
        os.close(fd)
        raise


def _remove(name, dir_fd):
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(name, dir_fd=dir_fd)
    else:
        os.unlink(name, dir_fd=dir_fd)


def apply_layer(root, fileobj, where="layer"):
    """Extract one layer tar stream onto ``root`` (as root: owners, modes, devices kept)."""
    root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with _open_layer(fileobj, where) as tar:
            for m in tar:
                parts = _components(m.name)
                if parts is None:
                    raise OcirtError(f"{where}: entry {m.name!r} escapes the root")
                if not parts:
                    continue
                base = parts[-1]
                pfd = _walk_parent(root_fd, parts, create=True)
                try:
                    if base == ".wh..wh..opq":
                        for child in os.listdir(pfd):
                            _remove(child, pfd)
                    elif base.startswith(".wh."):
                        _remove(base[4:], pfd)
                    else:
                        _extract_member(tar, m, pfd, base, root_fd, where)
                finally:
                    os.close(pfd)
    except tarfile.TarError as e:
        raise OcirtError(f"{where}: {e}") from None
    finally:
        os.close(root_fd)


def _extract_member(tar, m, pfd, base, root_fd, where):
    mode = m.mode & 0o7777
    if m.isdir():
        try:
            st = os.stat(base, dir_fd=pfd, follow_symlinks=False)
            if not stat.S_ISDIR(st.st_mode):
                os.unlink(base, dir_fd=pfd)
                os.mkdir(base, 0o700, dir_fd=pfd)
        except FileNotFoundError:
            os.mkdir(base, 0o700, dir_fd=pfd)
    else:
        _remove(base, pfd)
        if m.isreg():
            fd = os.open(base, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600, dir_fd=pfd)
            with os.fdopen(fd, "wb") as out, tar.extractfile(m) as src:
                shutil.copyfileobj(src, out, 1 << 20)
        elif m.issym():
            os.symlink(m.linkname, base, dir_fd=pfd)
        elif m.islnk():
            target = _components(m.linkname)
            if not target:
                raise OcirtError(f"{where}: hard link {m.name!r} has a bad target {m.linkname!r}")
            tfd = _walk_parent(root_fd, target, create=False)
            try:
                os.link(target[-1], base, src_dir_fd=tfd, dst_dir_fd=pfd, follow_symlinks=False)
            finally:
                os.close(tfd)
            return              # a hard link shares the target's owner, mode and times
        elif m.ischr() or m.isblk():
            kind = stat.S_IFCHR if m.ischr() else stat.S_IFBLK
            os.mknod(base, kind | 0o600, os.makedev(m.devmajor, m.devminor), dir_fd=pfd)
        elif m.isfifo():
            os.mkfifo(base, 0o600, dir_fd=pfd)
        else:
            return
    os.chown(base, m.uid, m.gid, dir_fd=pfd, follow_symlinks=False)
    if not m.issym():
        os.chmod(base, mode, dir_fd=pfd)
    os.utime(base, (m.mtime, m.mtime), dir_fd=pfd, follow_symlinks=False)


class _Digesting:
    """Reads through to ``f`` while hashing, so a layer is checked against its digest."""

    def __init__(self, f, algorithm):
        self.f = f
        self.hash = hashlib.new(algorithm)

    def read(self, n=-1):
        data = self.f.read(n)
        self.hash.update(data)
        return data

    def drain(self):
        while self.read(1 << 20):
            pass
        return self.hash.hexdigest()


def unpack_image(layout, manifest, root):
    for i, layer in enumerate(manifest.get("layers") or []):
        digest = layer.get("digest", "")
        where = f"{layout.path}: layer {i}"
        with layout.blob(digest) as f:
            reader = _Digesting(f, digest.split(":")[0])
            apply_layer(root, reader, where)
            if reader.drain() != digest.split(":")[1]:
                raise OcirtError(f"{where}: content does not match its digest {digest}")


# -- writing -------------------------------------------------------------------

class LayerWriter:
    """Writes a layer file and its sha256, hashing and writing in a second thread.

    Encryption (main thread) and hashing + writing (this thread) both release
    the GIL in OpenSSL/hashlib, so on two cores they overlap.  The queue
    is bounded, which bounds memory.

    ``hole(n)`` leaves ``n`` bytes (the LUKS header, while cryptsetup still
    derives its key slot) to be filled later with ``fill_hole``.  Bytes after
    the hole are written at once but hashed only when it is filled: the
    writer thread then hashes the hole's data, reads back what it wrote after
    it (still in the page cache) and hashes on in step with the writes.  So
    filling the hole early costs almost nothing; filling it in ``finish``
    means hashing everything after it at the end.
    """

    _FILL = object()

    def __init__(self, path, depth=4):
        import queue
        import threading
        self.path = path
        self.f = open(path, "wb")
        self.sha = hashlib.sha256()
        self.size = 0
        self._hole = None           # (offset, length): set by hole(), cleared by fill_hole()
        self._unhashed_from = None  # writer thread: where hashing stopped at a hole not yet filled
        self._queue = queue.Queue(depth)
        self._error = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while True:
            item = self._queue.get()
            if item is None:
                return
            if self._error:
                continue
            try:
                if item[0] is self._FILL:
                    self._fill(item[1], item[2])
                    continue
                data, hashed = item
                if hashed and self._unhashed_from is None:
                    self.sha.update(data)
                elif hashed is None:        # the hole
                    self._unhashed_from = self.f.tell() + len(data)
                self.f.write(data)
            except BaseException as e:     # reported by the next call in the main thread
                self._error = e

    def _fill(self, offset, data):
        """Writer thread: put ``data`` in the hole at ``offset``, then catch the hash up."""
        self.f.flush()
        os.pwrite(self.f.fileno(), data, offset)
        self.sha.update(data)
        pos, end = self._unhashed_from, self.f.tell()
        back = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            while pos < end:
                block = os.pread(back, min(4 << 20, end - pos), pos)
                if not block:
                    raise OSError(f"{self.path}: short read while hashing")
                self.sha.update(block)
                pos += len(block)
        finally:
            os.close(back)
        self._unhashed_from = None

    def write(self, data):
        if self._error:
            raise self._error
        self._queue.put((data, True))
        self.size += len(data)

    def hole(self, length):
        if self._hole:
            raise ValueError("one hole at a time")
        self._hole = (self.size, length)
        self._queue.put((b"\0" * length, None))
        self.size += length

    def fill_hole(self, data):
        """Fill the hole; may be called while writing goes on."""
        if self._error:
            raise self._error
        if not self._hole:
            raise ValueError("no hole to fill")
        offset, length = self._hole
        if len(data) != length:
            raise ValueError("hole not filled with the right length")
        self._hole = None
        self._queue.put((self._FILL, offset, data))

    def _drain(self):
        self._queue.put(None)
        self._thread.join()
        if self._error:
            raise self._error

    def finish(self, hole_data=None):
        """Flush (filling the hole with ``hole_data`` if it is still open) and close."""
        if self._hole:
            if hole_data is None:
                raise ValueError("hole not filled")
            self.fill_hole(hole_data)
        self._drain()
        self.f.close()

    def abort(self):
        if self._thread.is_alive():
            try:
                while True:
                    self._queue.get_nowait()
            except Exception:
                pass
            self._queue.put(None)
            self._thread.join()
        self.f.close()

    @property
    def digest(self):
        return "sha256:" + self.sha.hexdigest()


def tar_header(name, size=0, mode=0o644, kind=tarfile.REGTYPE, mtime=0):
    info = tarfile.TarInfo(name)
    info.size = size if kind == tarfile.REGTYPE else 0
    info.mode = mode
    info.type = kind
    info.mtime = mtime
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


def tar_pad(size):
    return b"\0" * ((512 - size % 512) % 512)


TAR_END = b"\0" * 1024


def write_blob(blobs_dir, data):
    digest = hashlib.sha256(data).hexdigest()
    with open(os.path.join(blobs_dir, digest), "wb") as f:
        f.write(data)
    return "sha256:" + digest


def write_layout(layout_dir, layer_digest, layer_size, config_bytes, ref=None):
    """Turn a directory holding ``blobs/sha256/<layer>`` into a complete OCI layout."""
    blobs = os.path.join(layout_dir, "blobs", "sha256")
    config_digest = write_blob(blobs, config_bytes)
    manifest = {"schemaVersion": 2, "mediaType": MT_MANIFEST,
                "config": {"mediaType": MT_CONFIG, "digest": config_digest, "size": len(config_bytes)},
                "layers": [{"mediaType": MT_LAYER_TAR, "digest": layer_digest, "size": layer_size}]}
    manifest_bytes = json.dumps(manifest, separators=(",", ":")).encode()
    manifest_digest = write_blob(blobs, manifest_bytes)
    desc = {"mediaType": MT_MANIFEST, "digest": manifest_digest, "size": len(manifest_bytes)}
    if ref:
        desc["annotations"] = {REF_ANNOTATION: ref}
    with open(os.path.join(layout_dir, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [desc]}, f, separators=(",", ":"))
    with open(os.path.join(layout_dir, "oci-layout"), "w") as f:
        f.write('{"imageLayoutVersion":"1.0.0"}')
    return manifest_digest, config_digest
