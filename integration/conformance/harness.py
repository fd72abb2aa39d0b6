"""Drive any runc-compatible runtime binary the way runc's clients do.

The runtime under test is named by ``OCIRT_CONFORMANCE_RUNTIME`` (a path);
without it, the ocirt of this working tree (``tests.support.ocirt_bin()``).

Every call goes through the CLI exactly as conmon / the containerd shim call
it (reference: /work/shared/reference/oci-runtime-cli.md §3, §4):
``--root R create --bundle B --pid-file P ID``, ``start ID``, ``state ID``,
``kill ID SIG`` (signal positional), ``delete [--force] ID``.

Facts from inside a container travel over its stdio: with
``process.terminal=false`` the runtime passes its own stdin/stdout/stderr
through untouched (runtime-tools CLI spec, "create"), so we hand ``create``
host files and read them once the container's process has exited.
"""
import itertools
import json
import os
import re
import shutil
import subprocess
import tempfile
import time

from tests.support import make_bundle

RUNTIME_ENV = "OCIRT_CONFORMANCE_RUNTIME"
CALL_TIMEOUT = 30
_ids = itertools.count()


def runtime_binary():
    path = os.environ.get(RUNTIME_ENV)
    if path:
        # podman and hooks run it from other directories
        return os.path.abspath(shutil.which(path) or path)
    from tests.support import ocirt_bin
    return ocirt_bin()


def scratch_dir(prefix):
    """A world-traversable temp dir: a container's mapped or non-root user
    must be able to reach bundles and bind sources below it."""
    path = tempfile.mkdtemp(prefix=prefix, dir="/var/tmp")
    os.chmod(path, 0o755)
    return path


def process_gone(pid):
    """True once ``pid`` has exited (gone, or a zombie nobody reaped yet)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return True
    return stat[stat.rindex(")") + 2] in "ZX"


def wait_gone(pid, timeout=15.0):
    deadline = time.monotonic() + timeout
    while not process_gone(pid):
        if time.monotonic() > deadline:
            raise AssertionError(f"process {pid} still alive after {timeout}s")
        time.sleep(0.01)


class Container:
    def __init__(self, runtime, cid, bundle):
        self.runtime = runtime
        self.id = cid
        self.bundle = bundle
        self.pid_file = os.path.join(bundle, "init.pid")
        self.stdout_path = os.path.join(bundle, "stdout.txt")
        self.stderr_path = os.path.join(bundle, "stderr.txt")
        self.pid = None

    def edit_config(self, mutate):
        path = os.path.join(self.bundle, "config.json")
        with open(path) as f:
            config = json.load(f)
        mutate(config)
        with open(path, "w") as f:
            json.dump(config, f)

    @property
    def rootfs(self):
        return os.path.join(self.bundle, "rootfs")

    def create(self, *extra, check=True, stdin=subprocess.DEVNULL, pass_fds=(), wrap=(), bundle=None, cwd=None):
        """``create`` with the container's stdio on host files (never pipes:
        the container would hold them open past create's exit)."""
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            res = self.runtime.call("create", "--bundle", bundle or self.bundle, "--pid-file", self.pid_file, *extra,
                                    self.id, stdin=stdin, stdout=out, stderr=err, pass_fds=pass_fds, wrap=wrap, cwd=cwd)
        # The runtime's own words on failure land in the same file as the
        # container's stderr would; keep them for assertions and messages.
        res.stderr = self.stderr()
        if res.returncode != 0:
            # a failed create never ran the user program: this is the
            # runtime's own output, and clients show it to users verbatim
            assert "Traceback (most recent call last)" not in res.stderr, f"create crashed: {res.stderr}"
        if check and res.returncode != 0:
            raise AssertionError(f"create {self.id} failed ({res.returncode}): {res.stderr}")
        if res.returncode == 0 and os.path.exists(self.pid_file):
            with open(self.pid_file) as f:
                self.pid = int(f.read())
        return res

    def start(self, check=True):
        return self.runtime.call("start", self.id, check=check)

    def state(self):
        return self.runtime.state(self.id)

    def kill(self, sig="KILL", check=True):
        return self.runtime.call("kill", self.id, str(sig), check=check)

    def delete(self, *flags, check=True):
        return self.runtime.call("delete", *flags, self.id, check=check)

    def wait(self, timeout=15.0):
        wait_gone(self.pid, timeout)

    def stdout(self):
        with open(self.stdout_path, errors="replace") as f:
            return f.read()

    def stderr(self):
        with open(self.stderr_path, errors="replace") as f:
            return f.read()

    def run(self, *create_flags, **create_kw):
        """create → start → wait for exit → delete; returns the stdout text."""
        self.create(*create_flags, **create_kw)
        self.start()
        self.wait()
        self.delete()
        return self.stdout()


class Runtime:
    """One runtime binary with a private ``--root``; tracks what it made."""

    def __init__(self, binary, root, workdir):
        self.binary = binary
        self.root = root
        self.workdir = workdir
        self.created = []

    def call(self, *args, check=False, timeout=CALL_TIMEOUT, wrap=(), **kw):
        if "stdout" not in kw and "stderr" not in kw:
            kw["capture_output"] = True
        kw.setdefault("stdin", subprocess.DEVNULL)
        res = subprocess.run([*wrap, self.binary, "--root", self.root, *args], timeout=timeout, **kw)
        for name in ("stdout", "stderr"):
            if isinstance(getattr(res, name), bytes):
                setattr(res, name, getattr(res, name).decode(errors="replace"))
        if check and res.returncode != 0:
            raise AssertionError(f"{os.path.basename(self.binary)} {' '.join(args)} failed "
                                 f"({res.returncode}): {res.stderr}")
        return res

    def state(self, cid):
        res = self.call("state", cid, check=True)
        return json.loads(res.stdout)

    def new_id(self, stem="c"):
        return f"conf-{stem}-{os.getpid()}-{next(_ids)}"

    def container(self, args=("true",), terminal=False, readonly=False, mutate=None, stem="c"):
        """A fresh busybox bundle (tests/support.make_bundle) and a unique id."""
        cid = self.new_id(stem)
        bundle = os.path.join(self.workdir, cid)
        make_bundle(bundle, args=list(args), terminal=terminal, readonly=readonly, mutate=mutate)
        os.chmod(bundle, 0o755)
        ctr = Container(self, cid, bundle)
        self.created.append(ctr)
        return ctr

    def cleanup(self):
        for ctr in self.created:
            self.call("delete", "--force", ctr.id)
        safe_rmtree(self.root)


def mounts_under(path):
    path = os.path.realpath(path).rstrip("/") + "/"
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if line.split()[4].startswith(path)]


def safe_rmtree(path):
    """rmtree, unless a mount a runtime leaked sits below ``path``: deleting
    through a leaked bind mount would delete the host files behind it."""
    leaked = mounts_under(path)
    if leaked:
        raise AssertionError(f"runtime left mounts behind in the host namespace: {leaked}")
    shutil.rmtree(path, ignore_errors=True)


# -- small helpers shared by the tests ---------------------------------------------------------

def sh(script):
    """process.args running a busybox shell script."""
    return ["sh", "-c", script]


def status_fields(text):
    """``/proc/<pid>/status`` text → {field: value}."""
    fields = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields[key] = value.strip()
    return fields


def mountinfo_entry(text, mount_point):
    """The last (topmost) /proc/self/mountinfo entry for ``mount_point``:
    {"options": [...], "optional": [...], "fstype": str, "super": [...]}."""
    found = None
    for line in text.splitlines():
        pre, sep, post = line.partition(" - ")
        if not sep:
            continue
        fields = pre.split()
        if len(fields) >= 6 and fields[4] == mount_point:
            post_fields = post.split()
            found = {"options": fields[5].split(","), "optional": fields[6:], "fstype": post_fields[0],
                     "super": post_fields[2].split(",") if len(post_fields) > 2 else []}
    return found


RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


def capability_numbers():
    """CAP_* name → bit, read from the kernel header rather than copied."""
    caps = {}
    with open("/usr/include/linux/capability.h") as f:
        for m in re.finditer(r"^#define\s+(CAP_[A-Z_]+)\s+(\d+)\s*$", f.read(), re.M):
            caps[m.group(1)] = int(m.group(2))
    return caps


def cap_mask(names):
    numbers = capability_numbers()
    mask = 0
    for name in names:
        mask |= 1 << numbers[name]
    return mask
