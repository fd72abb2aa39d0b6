"""Shared test support: the ocirt under test and busybox bundles.

``ocirt_bin()`` builds the cffi binding in place once per session and writes
a launcher that runs this working tree exactly as the installed one runs
(real interpreter, ``-IS``).  Set ``OCIRT_BIN`` to test an installed ocirt.
"""
import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUSYBOX = "/bin/busybox"
APPLETS = ["sh", "ls", "cat", "echo", "sleep", "id", "ps", "mount", "hostname", "true", "false", "env",
           "pwd", "touch", "mkdir", "rm", "grep", "head", "tail", "wc", "stat", "readlink", "test", "kill",
           "ulimit", "umask", "uname", "domainname", "sysctl", "ip", "ifconfig", "find", "tee", "dd", "chmod",
           "ln", "cut", "tr", "sort", "printf", "seq", "od", "df", "stty", "tty", "whoami", "nproc", "wget",
           "setsid", "timeout", "nsenter", "unshare", "mknod", "cp", "mv", "xargs", "awk", "sed", "top",
           "watch", "which", "date", "basename", "dirname", "yes", "getty", "expr", "free", "dmesg"]


_CFFI_MODULES = (("ocirt/linux", "_libc"), ("ocirt/mkcw", "_crypto"))


def _build_inplace():
    """Compile the cffi modules (ocirt/linux/_libc*.so, ocirt/mkcw/_crypto*.so) in the tree if missing or stale."""
    for subdir, name in _CFFI_MODULES:
        where = os.path.join(REPO, subdir)
        build_py = os.path.join(where, f"{name}_build.py")
        so = [f for f in os.listdir(where) if f.startswith(f"{name}.") and f.endswith(".so")]
        if so and os.path.getmtime(os.path.join(where, so[0])) >= os.path.getmtime(build_py):
            continue
        subprocess.run([sys.executable, "-c", f"import sys; sys.path.insert(0, {subdir!r}); "
                        f"from {name}_build import ffibuilder; ffibuilder.compile(tmpdir='.')"],
                       cwd=REPO, check=True, stdout=subprocess.DEVNULL)


def ocirt_bin():
    if os.environ.get("OCIRT_BIN"):
        return os.environ["OCIRT_BIN"]
    build = os.path.join(REPO, "build")
    os.makedirs(build, exist_ok=True)
    launcher = os.path.join(build, "ocirt")
    with open(os.path.join(build, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        _build_inplace()
        native = _build_native_launcher(launcher)
        for name, mod in (("ocirt", "ocirt.cli"), ("ocirt-mkcw", "ocirt.mkcw.cli"), ("ocirt-kbs", "ocirt.kbs.cli"),
                          ("krun", "ocirt.cli")):
            path = os.path.join(build, name)
            if native and mod == "ocirt.cli":
                if name != "ocirt" and os.path.realpath(path) != launcher:
                    _replace(path, lambda tmp: os.symlink("ocirt", tmp))
                continue
            text = (f"#!{sys.executable} -IS\nimport sys\n"
                    f"sys.path[:0] = [{REPO!r}, '%s/lib/python%d.%d/site-packages' % (sys.prefix, *sys.version_info[:2])]\n"
                    f"from {mod} import main\nsys.exit(main())\n")
            if not os.path.exists(path) or os.path.islink(path) or open(path, "rb").read() != text.encode():
                _replace(path, lambda tmp: _write_script(tmp, text))
    return launcher


def _replace(path, make):
    tmp = path + ".tmp"
    if os.path.lexists(tmp):
        os.unlink(tmp)
    make(tmp)
    os.rename(tmp, path)


def _write_script(path, text):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o755)


def _build_native_launcher(path):
    """The in-tree build of the installed `ocirt` binary (ocirt/launcher), rebuilt when its inputs change."""
    import hashlib
    from ocirt.launcher import native
    digest = hashlib.sha256(repr((REPO, sys.executable)).encode())
    for src in (native.SOURCE, native.__file__):
        with open(src, "rb") as f:
            digest.update(f.read())
    stamp = path + ".native"
    if os.path.isfile(path) and not os.path.islink(path) and os.path.exists(stamp) and open(stamp).read() == digest.hexdigest():
        return True
    if not native.build(path, first_paths=(REPO,)):
        return False
    with open(stamp, "w") as f:
        f.write(digest.hexdigest())
    return True


def make_rootfs(rootfs, applets=APPLETS):
    os.makedirs(os.path.join(rootfs, "bin"), exist_ok=True)
    shutil.copy2(BUSYBOX, os.path.join(rootfs, "bin", "busybox"))
    for a in applets:
        link = os.path.join(rootfs, "bin", a)
        if not os.path.lexists(link):
            os.symlink("busybox", link)
    for d in ("proc", "sys", "dev", "etc", "tmp", "root", "home", "usr/bin", "var"):
        os.makedirs(os.path.join(rootfs, d), exist_ok=True)
    os.chmod(os.path.join(rootfs, "tmp"), 0o1777)
    with open(os.path.join(rootfs, "etc", "passwd"), "w") as f:
        f.write("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"
                "user:x:1000:1000:user:/home:/bin/sh\n")
    with open(os.path.join(rootfs, "etc", "group"), "w") as f:
        f.write("root:x:0:\ntty:x:5:\nnobody:x:65534:\nuser:x:1000:\n")
    return rootfs


def make_bundle(path=None, args=("sh", "-c", "true"), terminal=False, readonly=False, mutate=None):
    """A busybox bundle.  ``mutate(config)`` may edit the config in place."""
    from ocirt.spec.default import default_spec
    path = path or tempfile.mkdtemp(prefix="ocirt-bundle-")
    make_rootfs(os.path.join(path, "rootfs"))
    config = default_spec(args=args, terminal=terminal)
    config["root"]["readonly"] = readonly
    if mutate:
        mutate(config)
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(config, f, indent=1)
    return path


def run_ocirt(*args, root, check=False, **kw):
    """Run the ocirt under test with --root; returns CompletedProcess (text).

    Output is captured through files, not pipes: a created container's init
    inherits the runtime's stdio (as with runc), so a pipe would stay open
    until the container exits.
    """
    kw.setdefault("timeout", 60)
    if kw.pop("capture_output", True) and "stdout" not in kw:
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            res = subprocess.run([ocirt_bin(), "--root", root, *args], stdout=out, stderr=err, **kw)
            out.seek(0)
            err.seek(0)
            res.stdout, res.stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    else:
        kw.setdefault("text", True)
        res = subprocess.run([ocirt_bin(), "--root", root, *args], **kw)
    if check and res.returncode != 0:
        raise AssertionError(f"ocirt {' '.join(args)} failed ({res.returncode}): {res.stderr}")
    return res


def exec_under_seccomp(cfg, argv):
    """execve ``argv`` in a child under the filter compiled from ``cfg``:
    (exit code, or -signal, and its combined output)."""
    from ocirt.linux import seccomp
    flt = seccomp.compile(cfg)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.dup2(w, 1)
            os.dup2(w, 2)
            seccomp.load(flt)
            os.execv(argv[0], argv)
        finally:
            os._exit(127)
    os.close(w)
    with os.fdopen(r) as f:
        out = f.read()
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), out
