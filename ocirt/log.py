"""Runtime logging in the format clients parse (reference/oci-runtime-cli.md §8).

The log defaults to stderr.  With ``--log FILE`` the file is opened the way
runc does (append, sync) and errors also go to stderr.  ``--log-format json``
writes logrus lines ``{"level","msg","time"}``; podman parses the whole file as
one object, so a failed command writes exactly one error line and warnings
or debug lines appear only with ``--debug``.
"""
import os
import sys
import time

_state = {"path": None, "json": False, "debug": False, "fd": None}


def configure(path=None, fmt="text", debug=False):
    _state.update(path=path, json=(fmt == "json"), debug=debug, fd=None)


def rfc3339_now():
    ns = time.time_ns()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 1_000_000_000)) + ".%09dZ" % (ns % 1_000_000_000)


def _log_fd():
    if _state["fd"] is None:
        if _state["path"]:
            _state["fd"] = os.open(_state["path"], os.O_CREAT | os.O_WRONLY | os.O_APPEND | os.O_SYNC | os.O_CLOEXEC, 0o644)
        else:
            _state["fd"] = 2
    return _state["fd"]


def _format(level, msg):
    # jsonio, not json: this also runs in the container's init after
    # pivot_root, where nothing new can be imported from the host.
    from ocirt import jsonio
    if _state["json"]:
        return jsonio.dumps({"level": level, "msg": msg, "time": rfc3339_now()}) + "\n"
    return f'time="{rfc3339_now()}" level={level} msg={jsonio.dumps(msg)}\n'


def _write(level, msg):
    try:
        os.write(_log_fd(), _format(level, msg).encode())
    except OSError:
        pass


def error(msg):
    _write("error", msg)
    if _state["path"]:
        try:
            os.write(2, (msg + "\n").encode())
        except OSError:
            pass


def warning(msg):
    # Under conmon and the containerd shim stderr *is* the container's log
    # stream, so warnings are written only when --debug asks for them.
    if _state["debug"]:
        _write("warning", msg)


def debug(msg):
    if _state["debug"]:
        _write("debug", msg)


def debug_enabled():
    return _state["debug"]


def reopen_after_fork():
    """A forked child must not share the parent's cached fd decision blindly."""
    _state["fd"] = None


def exit_with(code):
    sys.stdout.flush()
    os._exit(code)
