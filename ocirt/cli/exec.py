from ocirt.cli import require_id
from ocirt.enter import ExecRequest, build_process, exec_in
from ocirt.errors import OcirtError
from ocirt.state import StateStore


def run(g, opts, args):
    cid = require_id(args[:1], "exec")
    try:
        container = StateStore(g.root).load(cid)
        process = build_process(container, opts, args[1:])
    except OcirtError as e:
        # runc: any runtime failure of exec exits 255 ("exec failed: ...")
        raise OcirtError(f"exec failed: {e}", exit_code=255) from None
    req = ExecRequest(process, detach=opts["detach"], console_socket=opts["console-socket"],
                      pid_file=opts["pid-file"], preserve_fds=opts["preserve-fds"],
                      ignore_paused=opts["ignore-paused"], pidfd_socket=opts["pidfd-socket"])
    try:
        return exec_in(container, req)
    except OcirtError as e:
        if e.exit_code == 255:
            raise
        raise OcirtError(f"exec failed: {e}", exit_code=255) from None
