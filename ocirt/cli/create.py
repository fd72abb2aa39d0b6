from ocirt.cli import require_id
from ocirt.container import CreateOptions, create
from ocirt.state import StateStore


def options(g, opts):
    return CreateOptions(bundle=opts["bundle"], console_socket=opts["console-socket"], pid_file=opts["pid-file"],
                         no_pivot=opts["no-pivot"], preserve_fds=opts["preserve-fds"],
                         systemd_cgroup=g.systemd_cgroup, prog=g.prog, no_new_keyring=opts["no-new-keyring"],
                         pidfd_socket=opts["pidfd-socket"])


def run(g, opts, args):
    cid = require_id(args, "create")
    create(StateStore(g.root), cid, options(g, opts))
    return 0
