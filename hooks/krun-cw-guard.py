"""OCI hook: refuse to start a confidential-workload image outside a krun TEE.

A confidential-workload image (``buildah mkcw`` / ``ocirt-mkcw``) carries
``/krun-sev.json`` and an encrypted ``/disk.img``; its ``/entrypoint`` is a
stub that only prints that it needs libkrun.  Run by any runtime without the
krun TEE handler it can only fail late and vaguely, so this hook stops it at
create with a message saying how to run it.

It lets the container start only when the krun handler will run it, judged
from the runtime that runs this hook (its parent process) and the annotations:
* the runtime was started as ``krun`` (ocirt's or crun's ``krun`` symlink,
  which applies krun to every container) or ``krun-ocirt``; or
* the runtime is ocirt or crun and annotation ``run.oci.handler`` is ``krun``,
  ``krun-sev`` or ``krun-tdx`` (both boot a ``/krun-sev.json`` image as a TEE);
  runc and others ignore that annotation, so for them it does not count;
and never for a Kubernetes sandbox, which gets no handler.

Installed as a prestart hook through podman's hooks.d (see install.sh).  It
is run by an absolute interpreter path with ``-I -S``, never a pyenv-style
shell shim (a shell plus a version lookup on every container start), and
``-I`` keeps the caller's PYTHON* environment and the current directory out.  Only
the standard library is used; it fails closed (exit 1) on a state it cannot
read, because a guard that lets unknown input through guards nothing.
"""
import json
import os
import stat
import sys

HANDLERS = ("krun", "krun-sev", "krun-tdx")
HANDLER_RUNTIMES = ("ocirt", "crun", "krun")   # runtimes that honour run.oci.handler=krun*
KRUN_PROGRAMS = ("krun", "krun-ocirt")            # runtimes that apply krun to every container
TEE_CONFIG = "krun-sev.json"
MAX_JSON = 16 << 20


def fail(message):
    sys.stderr.write(f"krun-cw-guard: {message}\n")
    sys.exit(1)


def runtime_program():
    """Basename of the program the runtime that runs this hook was started as."""
    try:
        with open(f"/proc/{os.getppid()}/cmdline", "rb") as f:
            argv = f.read(8192).split(b"\0")
    except OSError:
        return ""
    program = os.path.basename(argv[0]).decode(errors="replace")
    if program.startswith("python"):   # a Python runtime (ocirt): its script is the program
        script = next((a for a in argv[1:3] if a and not a.startswith(b"-")), b"")
        program = os.path.basename(script).decode(errors="replace")
    return program


def tee_kind(rootfs):
    """The "tee" field of the image's krun-sev.json; never follows a link the image planted."""
    try:
        fd = os.open(os.path.join(rootfs, TEE_CONFIG), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        doc = json.loads(os.read(fd, 1 << 20))
        return doc.get("tee") if isinstance(doc, dict) else None
    except ValueError:
        return None
    finally:
        os.close(fd)


def main():
    try:
        state = json.loads(sys.stdin.buffer.read(MAX_JSON))
        bundle = state["bundle"]
        with open(os.path.join(bundle, "config.json"), "rb") as f:
            config = json.loads(f.read(MAX_JSON))
        root = config["root"]["path"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        fail(f"cannot read the container state or its config.json: {exc}")
    rootfs = root if os.path.isabs(root) else os.path.join(bundle, root)
    if not os.path.lexists(os.path.join(rootfs, TEE_CONFIG)):
        return 0
    annotations = state.get("annotations") or config.get("annotations") or {}
    sandbox = annotations.get("io.kubernetes.cri.container-type") == "sandbox"
    runtime = runtime_program()
    if not sandbox and (runtime in KRUN_PROGRAMS or (runtime in HANDLER_RUNTIMES
                                              and annotations.get("run.oci.handler") in HANDLERS)):
        return 0
    handler = "krun-tdx" if tee_kind(rootfs) == "tdx" else "krun-sev"
    fail(f"container {state.get('id', '?')}: refusing to start a confidential-workload image under {runtime or '?'} "
         f"(it has /{TEE_CONFIG}): it boots only inside a TEE through libkrun. Run it with the krun TEE handler, "
         f"e.g. `podman run --runtime ocirt --annotation run.oci.handler={handler} IMAGE` "
         f"(needs lib{handler}.so.1 and {'/dev/sev' if handler == 'krun-sev' else 'a TDX host'})")


if __name__ == "__main__":
    sys.exit(main())
