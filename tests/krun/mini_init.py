"""A stand-in for the core's create/init path, driving one handler (tests only).

    python mini_init.py [--devices kvm,sev] [--prog NAME] BUNDLE

Does what ocirt's core does around a handler, in the documented order:
select → check (runtime side) → fork → before_pivot → chroot into the rootfs
(pivot_root's effect on paths, which is all the handler sees) → enter.
Prints ``vmm-pid <pid>`` on stderr once the init process exists, exits with
the init's exit status (255 when a signal killed it), 2 for a runtime-side error, 3
when no handler was selected.

``--devices`` first enters a private mount namespace whose /dev holds only
the basic nodes and the listed ones (see private_dev.py).
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from ocirt import handlers  # noqa: E402
from ocirt.errors import OcirtError  # noqa: E402
from tests.krun.private_dev import private_dev  # noqa: E402


def main(argv):
    prog, devices = "ocirt", None
    while argv[0].startswith("--"):
        opt, value, argv = argv[0], argv[1], argv[2:]
        if opt == "--prog":
            prog = value
        elif opt == "--devices":
            devices = [d for d in value.split(",") if d]
    bundle = argv[0]
    if devices is not None:
        private_dev(devices)
    with open(os.path.join(bundle, "config.json")) as f:
        config = json.load(f)
    rootfs = os.path.join(bundle, config["root"]["path"])
    try:
        handler = handlers.select(config, rootfs, prog)
        if handler is None:
            print("no handler", file=sys.stderr)
            return 3
        handler.check(config, rootfs)
        print("devices " + json.dumps(handler.extra_devices(config)), file=sys.stderr, flush=True)
    except OcirtError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    pid = os.fork()
    if pid == 0:
        try:
            handler.before_pivot(config, rootfs)
            os.chroot(rootfs)
            os.chdir("/")
            handler.enter(config, config["process"])
        except OcirtError as exc:
            print(f"init error: {exc}", file=sys.stderr, flush=True)
        finally:
            os._exit(1)
    print(f"vmm-pid {pid}", file=sys.stderr, flush=True)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):   # distinct from a 128+n exit, which the stop policy produces
        print(f"init killed by signal {os.WTERMSIG(status)}", file=sys.stderr)
        return 255
    return os.WEXITSTATUS(status)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
