"""The state store under ``--root``: one directory per container.

``state.json`` is the single source of truth between commands; the status is
derived at read time (DESIGN-NOTES: never trust a stored status).  Writers
hold the container's ``lock`` (flock) so concurrent commands never corrupt
it, and the directory is created with ``mkdir`` so two creates of one ID race
safely: exactly one wins.
"""
import fcntl
import os

from ocirt import jsonio

from ocirt.errors import ContainerNotFound, OcirtError

# runc's rule: [A-Za-z0-9_+.-]+ and not a path such as "..".  Checked without
# `re`, whose import is a measurable part of a `state` call.
_ID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_+.-")


def validate_id(container_id):
    if not container_id or not _ID_CHARS.issuperset(container_id) or container_id in (".", ".."):
        raise OcirtError(f"invalid container ID format: {container_id}")
    return container_id


def proc_start_time(pid):
    """Start time (clock ticks since boot) and state letter of a pid, or (None, None)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None, None
    fields = stat[stat.rindex(b")") + 2:].split()
    return int(fields[19]), fields[0].decode()


class Container:
    """One container's persisted state.  Status is derived, never stored."""

    FIELDS = ("id", "bundle", "rootfs", "pid", "pid_start", "created", "annotations", "cgroup",
              "handler", "owner", "ns_paths", "config_file", "user_ns", "creating", "host_mount")

    def __init__(self, store, data):
        self.store = store
        for k in self.FIELDS:
            setattr(self, k, data.get(k))
        self.annotations = self.annotations or {}

    @property
    def dir(self):
        return os.path.join(self.store.root, self.id)

    @property
    def fifo_path(self):
        return os.path.join(self.dir, "exec.fifo")

    def to_dict(self):
        return {k: getattr(self, k) for k in self.FIELDS}

    def save(self):
        tmp = os.path.join(self.dir, ".state.json.tmp")
        with open(tmp, "w") as f:
            f.write(jsonio.dumps(self.to_dict()))
        os.rename(tmp, os.path.join(self.dir, "state.json"))

    def init_alive(self):
        if not self.pid:
            return False
        start, letter = proc_start_time(self.pid)
        return start is not None and start == self.pid_start and letter not in ("Z", "X")

    def status(self):
        if self.creating:
            return "creating"
        if not self.init_alive():
            return "stopped"
        if os.path.exists(self.fifo_path):
            return "created"
        if self.cgroup:
            from ocirt import cgroups
            try:
                if cgroups.manager_from_dict(self.cgroup).is_frozen():
                    return "paused"
            except (OSError, AttributeError):
                pass
        return "running"

    def oci_state(self, status=None):
        """The runtime-spec state object (plus runc's created/owner fields)."""
        from ocirt import OCI_VERSION
        status = status or self.status()
        return {"ociVersion": OCI_VERSION, "id": self.id, "pid": self.pid if status != "stopped" else 0,
                "status": status, "bundle": self.bundle, "rootfs": self.rootfs, "created": self.created,
                "annotations": self.annotations, "owner": self.owner or ""}

    def load_config(self):
        with open(self.config_file) as f:
            return jsonio.load(f)

    def lock(self):
        return _Lock(self.dir)


class _Lock:
    """flock on the container directory: serialises verbs on one container."""

    def __init__(self, path):
        self.path = path
        self.fd = None

    def __enter__(self):
        try:
            self.fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise ContainerNotFound(os.path.basename(self.path)) from None
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        os.close(self.fd)


class StateStore:
    def __init__(self, root):
        self.root = os.path.abspath(root)

    def reserve(self, container_id):
        """Atomically claim an ID: exactly one of two racing creates wins."""
        validate_id(container_id)
        os.makedirs(self.root, mode=0o700, exist_ok=True)
        path = os.path.join(self.root, container_id)
        try:
            os.mkdir(path, 0o711)
        except FileExistsError:
            raise OcirtError("container with given ID already exists") from None
        return path

    def load(self, container_id):
        validate_id(container_id)
        path = os.path.join(self.root, container_id, "state.json")
        try:
            with open(path) as f:
                data = jsonio.load(f)
        except FileNotFoundError:
            if os.path.isdir(os.path.dirname(path)):
                return Container(self, {"id": container_id, "pid": 0, "creating": True})
            raise ContainerNotFound(container_id) from None
        except ValueError:
            raise OcirtError(f"state of container {container_id} is corrupt: {path}") from None
        return Container(self, data)

    def exists(self, container_id):
        return os.path.isdir(os.path.join(self.root, container_id))

    def list(self):
        try:
            names = sorted(os.listdir(self.root))
        except FileNotFoundError:
            return []
        out = []
        for name in names:
            try:
                out.append(self.load(name))
            except OcirtError:
                continue
        return out

    def remove(self, container_id):
        validate_id(container_id)
        try:
            fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:
            return
        try:
            _remove_tree(fd, container_id)
        except OSError as e:
            raise OcirtError(f"cannot remove the state of container {container_id}: {e.strerror}: "
                             f"{os.path.join(self.root, container_id)}") from None
        finally:
            os.close(fd)


def _remove_tree(parent_fd, name):
    """Remove ``name`` under ``parent_fd`` without following symlinks, ignoring
    what is already gone.  shutil.rmtree would import fnmatch and re (~8 ms
    on every delete) for a directory of three or four files."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent_fd)
    except FileNotFoundError:
        return
    except NotADirectoryError:
        os.unlink(name, dir_fd=parent_fd)
        return
    try:
        for entry in os.scandir(fd):
            if entry.is_dir(follow_symlinks=False):
                _remove_tree(fd, entry.name)
            else:
                try:
                    os.unlink(entry.name, dir_fd=fd)
                except FileNotFoundError:
                    pass
    finally:
        os.close(fd)
    try:
        os.rmdir(name, dir_fd=parent_fd)
    except FileNotFoundError:
        pass
