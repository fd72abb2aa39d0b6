"""``run``: create + start, then (unless -d) wait and delete, exiting with the process status."""
import os

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
        proxy_sock = None
        if not opts["detach"]:
            # init is reparented to us when stage1 exits, so we can wait for it
            lsys.prctl(lsys.C.PR_SET_CHILD_SUBREAPER, 1)
            if not copts.console_socket and _wants_terminal(copts.bundle):
                import socket
                proxy_sock, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
                copts.console_fd = theirs.detach()
        container = create(store, cid, copts, warmup)
    finally:
        warmup.finish()
    if copts.console_fd is not None:
        os.close(copts.console_fd)
    try:
        start(container)
    except BaseException:
        delete(store, store.load(cid), force=True)
        raise
    if opts["detach"]:
        return 0
    if proxy_sock is not None:
        from ocirt import console
        master = console.receive_master(proxy_sock)
        status = console.proxy(master, container.pid)
    else:
        status = _wait_forwarding_signals(container.pid)
    if not opts["keep"]:
        delete(store, store.load(cid), force=True)
    return exit_code(status)


def _wants_terminal(bundle):
    from ocirt import jsonio
    try:
        with open(os.path.join(bundle, "config.json"), "rb") as f:
            return bool((jsonio.load(f).get("process") or {}).get("terminal"))
    except (OSError, ValueError):
        return False  # create reports the real problem
