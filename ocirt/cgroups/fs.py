"""The cgroupfs manager: one directory per hierarchy, driven through files.

``paths`` maps a hierarchy key ("memory", "cpu,cpuacct", "name=systemd",
"unified") to the container's directory in it.  ``owned`` lists the keys
whose directory this manager created; only those are removed on destroy, so
joining an existing cgroup never deletes it.
"""
import errno
import os
import time

from ocirt.errors import OcirtError

_UNIFIED = "unified"
FREEZE_TIMEOUT = 5.0
EMPTY_TIMEOUT = 3.0


def read_file(path):
    with open(path) as f:
        return f.read()


def write_file(path, value):
    """Write one value the way the kernel wants it: a single write(2)."""
    data = value if isinstance(value, bytes) else str(value).encode()
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


# freezer kind -> (file, value to freeze, value to thaw)
_FREEZER_FILES = {"v1": ("freezer.state", "FROZEN", "THAWED"), "v2": ("cgroup.freeze", "1", "0")}


def _request_freeze(kind, path, frozen):
    name, freeze, thaw = _FREEZER_FILES[kind]
    write_file(os.path.join(path, name), freeze if frozen else thaw)


class Manager:
    def __init__(self, mode, paths, owned, cgroups_path=""):
        self.mode = mode
        self.paths = paths
        self.owned = owned
        self.cgroups_path = cgroups_path

    # -- lookup -----------------------------------------------------------------

    def path(self, controller):
        """The container's directory for a v1 controller (or "unified"), or None."""
        if controller in self.paths:
            return self.paths[controller]
        for key, path in self.paths.items():
            if controller in key.split(","):
                return path
        return None

    @property
    def unified(self):
        return self.paths.get(_UNIFIED)

    def _primary(self):
        """The directory whose cgroup.procs tells which processes are ours."""
        for key in (_UNIFIED, "pids", "freezer", "memory"):
            p = self.path(key)
            if p:
                return p
        return next(iter(self.paths.values()))

    # -- lifecycle ----------------------------------------------------------------

    def create(self):
        made = []
        try:
            for key, path in self.paths.items():
                if os.path.isdir(path):
                    self._check_fit(key, path)
                    continue
                _makedirs(path)
                made.append(key)
                if key == "cpuset" or "cpuset" in key.split(","):
                    _fill_cpuset(path)
            if self.mode == "v2":
                self._enable_v2_controllers(None)
        except BaseException:
            for key in made:
                _rmdir_tree(self.paths[key])
            raise
        self.owned = sorted(set(self.owned) | set(made))

    def _check_fit(self, key, path):
        """Refuse to join a frozen cgroup (runtime-spec allows refusing unfit cgroups)."""
        if key == _UNIFIED:
            frozen = _read_or(os.path.join(path, "cgroup.freeze"), "0").strip() == "1"
        elif "freezer" in key.split(","):
            frozen = _read_or(os.path.join(path, "freezer.state"), "THAWED").strip() != "THAWED"
        else:
            return
        if frozen:
            raise OcirtError(f"cgroup {path} is frozen: refusing to create a container in it")

    def _enable_v2_controllers(self, wanted):
        """Enable controllers on the way down from the hierarchy root to our cgroup.

        ``wanted`` None means every controller the root offers (pure v2, like
        runc and crun); otherwise only those names.  Returns the set that
        could not be enabled at the container's parent level.
        """
        leaf = self.unified
        if not leaf:
            return set(wanted or ())
        mount = _mount_of(leaf)
        parts = os.path.relpath(leaf, mount).split("/")
        missing = set()
        cur = mount
        for part in parts:
            available = set(_read_or(os.path.join(cur, "cgroup.controllers"), "").split())
            want = available if wanted is None else (set(wanted) & available)
            missing |= set(wanted or ()) - available
            enabled = set(_read_or(os.path.join(cur, "cgroup.subtree_control"), "").split())
            for ctrl in sorted(want - enabled):
                try:
                    write_file(os.path.join(cur, "cgroup.subtree_control"), f"+{ctrl}")
                except OSError:
                    missing.add(ctrl)
            cur = os.path.join(cur, part)
        return missing

    def add_pid(self, pid):
        for key, path in self.paths.items():
            try:
                write_file(os.path.join(path, "cgroup.procs"), str(int(pid)))
            except OSError as exc:
                raise OcirtError(f"cannot move pid {pid} into cgroup {path}: {exc.strerror}") from None

    def procs(self):
        """Host pids of every process in the cgroup and below it, ascending."""
        pids = set()
        for dirpath, _dirs, _files in os.walk(self._primary()):
            try:
                pids.update(int(p) for p in read_file(os.path.join(dirpath, "cgroup.procs")).split())
            except FileNotFoundError:
                continue
        return sorted(pids)

    def kill_all(self, sig):
        """Signal every process; a frozen v1 cgroup is thawed so SIGKILL lands."""
        import _signal as signal  # the C module: signal.py imports enum (~5 ms)
        sig = int(sig)
        unified = self.unified
        if sig == signal.SIGKILL and unified and os.path.exists(os.path.join(unified, "cgroup.kill")):
            try:
                write_file(os.path.join(unified, "cgroup.kill"), "1")
            except FileNotFoundError:
                return
            if self.path("freezer"):
                self._thaw_quietly()
            return
        frozen_before = self._safe_is_frozen()
        # Freeze so nothing forks past the signal (runc signalAllProcesses does the same).
        froze = False
        if not frozen_before:
            try:
                self.freeze()
                froze = True
            except OcirtError:
                pass
        for pid in self.procs():
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        if froze or sig == signal.SIGKILL:
            self._thaw_quietly()

    def _safe_is_frozen(self):
        try:
            return self.is_frozen()
        except OSError:
            return False

    def _thaw_quietly(self):
        try:
            self.thaw()
        except (OSError, OcirtError):
            pass

    # -- freezer ------------------------------------------------------------------

    def _freezer(self):
        """("v1", dir) or ("v2", dir) or (None, None)."""
        p = self.path("freezer")
        if p and self.mode != "v2":
            return "v1", p
        if self.unified and os.path.exists(os.path.join(self.unified, "cgroup.freeze")):
            return "v2", self.unified
        return None, None

    def freeze(self):
        kind, path = self._freezer()
        if kind is None:
            raise OcirtError("cannot pause: no freezer (v1 freezer controller or v2 cgroup.freeze) is available")
        try:
            _request_freeze(kind, path, True)
        except OSError as exc:
            raise OcirtError(f"cannot freeze cgroup {path}: {exc.strerror}") from None
        deadline = time.monotonic() + FREEZE_TIMEOUT
        delay = 0.0005
        while not self._frozen_settled(kind, path):
            if time.monotonic() > deadline:
                self._thaw_quietly()
                raise OcirtError(f"cgroup {path} did not freeze within {FREEZE_TIMEOUT:g}s")
            time.sleep(delay)
            delay = min(delay * 2, 0.02)
            if kind == "v1":  # a FREEZING cgroup needs the state re-written to make progress
                try:
                    _request_freeze(kind, path, True)
                except OSError:
                    pass

    @staticmethod
    def _frozen_settled(kind, path):
        if kind == "v1":
            return read_file(os.path.join(path, "freezer.state")).strip() == "FROZEN"
        for line in read_file(os.path.join(path, "cgroup.events")).splitlines():
            if line.startswith("frozen "):
                return line.split()[1] == "1"
        return True

    def thaw(self):
        kind, path = self._freezer()
        if kind is None:
            raise OcirtError("cannot resume: no freezer (v1 freezer controller or v2 cgroup.freeze) is available")
        try:
            _request_freeze(kind, path, False)
        except OSError as exc:
            raise OcirtError(f"cannot thaw cgroup {path}: {exc.strerror}") from None

    def is_frozen(self):
        """True once a freeze was asked for (FREEZING counts: the container is not running)."""
        kind, path = self._freezer()
        try:
            if kind == "v1":
                return read_file(os.path.join(path, "freezer.state")).strip() in ("FROZEN", "FREEZING")
            if kind == "v2":
                return read_file(os.path.join(path, "cgroup.freeze")).strip() == "1"
        except FileNotFoundError:
            return False
        return False

    # -- resources, stats, events (kept in their own modules) -----------------------

    def apply_resources(self, resources):
        from ocirt.cgroups.resources import apply
        apply(self, resources or {})

    def stats(self):
        from ocirt.cgroups.stats import collect
        return collect(self)

    def oom_watcher(self):
        from ocirt.cgroups.oom import OomWatcher
        return OomWatcher(self)

    # -- removal --------------------------------------------------------------------

    def destroy(self):
        """Remove every cgroup this manager made, killing stragglers if it must."""
        owned = [k for k in self.owned if k in self.paths]
        if not owned:
            return
        if self._try_remove(owned):
            return
        import _signal as signal
        self.kill_all(signal.SIGKILL)
        deadline = time.monotonic() + EMPTY_TIMEOUT
        delay = 0.001
        while True:
            if self._try_remove(owned):
                return
            if time.monotonic() > deadline:
                left = [self.paths[k] for k in owned if os.path.isdir(self.paths[k])]
                raise OcirtError(f"cannot remove cgroup {left[0]}: processes {self.procs()} are still in it")
            if self.procs():
                self.kill_all(signal.SIGKILL)
            time.sleep(delay)
            delay = min(delay * 2, 0.05)

    def _try_remove(self, keys):
        done = True
        for key in keys:
            try:
                _rmdir_tree(self.paths[key])
            except OSError as exc:
                if exc.errno not in (errno.EBUSY, errno.ENOTEMPTY):
                    raise OcirtError(f"cannot remove cgroup {self.paths[key]}: {exc.strerror}") from None
                done = False
        return done

    def to_dict(self):
        return {"mode": self.mode, "cgroupsPath": self.cgroups_path, "paths": dict(self.paths),
                "owned": list(self.owned)}


# ------------------------------------------------------------------------------ helpers

def _read_or(path, default):
    try:
        return read_file(path)
    except OSError:
        return default


def _makedirs(path):
    try:
        os.makedirs(path, mode=0o755)
    except FileExistsError:
        pass
    except OSError as exc:
        raise OcirtError(f"cannot create cgroup {path}: {exc.strerror}") from None


def _mount_of(path):
    """The mountpoint above ``path`` (cgroupfs directories are never mountpoints)."""
    cur = path
    while cur != "/" and not os.path.ismount(cur):
        cur = os.path.dirname(cur)
    return cur


def _fill_cpuset(leaf):
    """A new v1 cpuset has empty cpus/mems; copy them down from the nearest parent."""
    mount = _mount_of(leaf)
    chain = []
    cur = leaf
    while cur != mount and cur != "/":
        chain.append(cur)
        cur = os.path.dirname(cur)
    for directory in reversed(chain):
        parent = os.path.dirname(directory)
        for name in ("cpuset.cpus", "cpuset.mems"):
            target = os.path.join(directory, name)
            if not _read_or(target, "").strip():
                write_file(target, read_file(os.path.join(parent, name)).strip() or "\n")


def _rmdir_tree(top):
    """rmdir ``top`` and every cgroup below it, leaves first; gone already is fine."""
    for dirpath, dirnames, _files in os.walk(top, topdown=False):
        try:
            os.rmdir(dirpath)
        except FileNotFoundError:
            pass
