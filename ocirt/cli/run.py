"""``run``: create + start, then (unless -d) wait and delete, exiting with the process status."""

from ocirt.cli import require_id
from ocirt.cli.create import options, start_cgroup_warmup


def run(g, opts, args):
    cid = require_id(args, "run")
    warmup = start_cgroup_warmup()
    try:
        from ocirt.container import create, delete, start
        from ocirt.enter import _wait_forwarding_signals, exit_code
        from ocirt.linux import sys as lsys
        from ocirt.state import StateStore
        store = StateStore(g.root)
        copts = options(g, opts)
        if not opts["detach"]:
            # init is reparented to us when stage1 exits, so we can wait for it
            lsys.prctl(lsys.C.PR_SET_CHILD_SUBREAPER, 1)
            copts.proxy_console = not copts.console_socket
        container = create(store, cid, copts, warmup)
    finally:
        warmup.finish()
    try:
        start(container)
    except BaseException:
        delete(store, store.load(cid), force=True)
        raise
    if opts["detach"]:
        return 0
    if copts.console_proxy is not None:
        from ocirt import console
        master = console.receive_master(copts.console_proxy)
        status = console.proxy(master, container.pid)
    else:
        status = _wait_forwarding_signals(container.pid)
    if not opts["keep"]:
        delete(store, store.load(cid), force=True)
    return exit_code(status)

