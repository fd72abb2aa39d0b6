"""``create``: build the container and leave init waiting for ``start``."""
from ocirt.cli import require_id


def start_cgroup_warmup():
    """Started before the container code is even imported: the kernel's
    first cgroup migration waits out an RCU grace period (see
    cgroups.MigrationWarmup), and every millisecond of head start comes off
    create's critical path."""
    from ocirt.cgroups import MigrationWarmup
    return MigrationWarmup()


def options(g, opts):
    from ocirt.container import CreateOptions
    return CreateOptions(bundle=opts["bundle"], console_socket=opts["console-socket"], pid_file=opts["pid-file"],
                         no_pivot=opts["no-pivot"], preserve_fds=opts["preserve-fds"],
                         systemd_cgroup=g.systemd_cgroup, prog=g.prog, no_new_keyring=opts["no-new-keyring"],
                         pidfd_socket=opts["pidfd-socket"])


def run(g, opts, args):
    cid = require_id(args, "create")
    warmup = start_cgroup_warmup()
    try:
        from ocirt.container import create
        from ocirt.state import StateStore
        create(StateStore(g.root), cid, options(g, opts), warmup)
    finally:
        warmup.finish()
    return 0
