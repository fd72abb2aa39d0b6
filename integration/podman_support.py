"""A private podman for integration tests: its own storage, run and tmp
dirs under /var/tmp, a test-only containers.conf, and a tiny busybox image
imported from a tarball (no registry here).

The OCI runtime podman drives is ``OCIRT_PODMAN_RUNTIME`` (a path), by
default the ocirt of this working tree.
"""
import os
import shutil
import subprocess
import tarfile
import tempfile

from tests.support import make_rootfs

RUNTIME_ENV = "OCIRT_PODMAN_RUNTIME"
IMAGE = "localhost/ocirt-busybox:test"

# Root here cannot raise RLIMIT_NOFILE above 20000 and podman's default asks
# for 1048576; there is no systemd, so cgroupfs and a file events log.
CONTAINERS_CONF = """\
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
"""


def runtime_binary():
    path = os.environ.get(RUNTIME_ENV)
    if path:
        # podman and hooks run it from other directories
        return os.path.abspath(shutil.which(path) or path)
    from tests.support import ocirt_bin
    return ocirt_bin()


def mounts_under(path):
    prefix = os.path.realpath(path).rstrip("/") + "/"
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if line.split()[4].startswith(prefix)]


class Podman:
    def __init__(self, runtime, base):
        self.runtime = runtime
        self.base = base
        self.conf = os.path.join(base, "containers.conf")
        with open(self.conf, "w") as f:
            f.write(CONTAINERS_CONF)
        self.env = dict(os.environ, CONTAINERS_CONF=self.conf)
        # vfs: plain directories, so a crash leaves no overlay mounts behind
        self.global_args = ["--root", os.path.join(base, "root"), "--runroot", os.path.join(base, "runroot"),
                            "--tmpdir", os.path.join(base, "tmp"), "--storage-driver", "vfs",
                            "--runtime", runtime, "--cgroup-manager", "cgroupfs", "--events-backend", "file"]

    def cmd(self, *args):
        return ["podman", *self.global_args, *args]

    def __call__(self, *args, timeout=60, check=False, **kw):
        kw.setdefault("capture_output", True)
        kw.setdefault("text", True)
        if "input" not in kw:
            kw.setdefault("stdin", subprocess.DEVNULL)
        res = subprocess.run(self.cmd(*args), env=self.env, timeout=timeout, **kw)
        if check and res.returncode != 0:
            raise AssertionError(f"podman {' '.join(args)} failed ({res.returncode}): {res.stderr}")
        return res

    def import_image(self):
        """A busybox rootfs tarball imported as IMAGE."""
        staging = tempfile.mkdtemp(prefix="rootfs-", dir=self.base)
        make_rootfs(os.path.join(staging, "rootfs"))
        tarball = os.path.join(staging, "rootfs.tar")
        with tarfile.open(tarball, "w") as tar:
            tar.add(os.path.join(staging, "rootfs"), arcname=".")
        self("import", tarball, IMAGE, check=True)
        shutil.rmtree(staging)

    def cleanup(self):
        self("rm", "--all", "--force", "--time", "0", timeout=120)
        self("system", "reset", "--force", timeout=120)
        leaked = mounts_under(self.base)
        for mount_point in reversed(leaked):
            subprocess.run(["umount", "-l", mount_point])
        shutil.rmtree(self.base, ignore_errors=True)
        if leaked:
            raise AssertionError(f"mounts left under the podman test dirs: {leaked}")


def make_podman():
    base = tempfile.mkdtemp(prefix="ocirt-podman-", dir="/var/tmp")
    return Podman(runtime_binary(), base)
