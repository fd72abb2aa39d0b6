"""OCI hooks: the state JSON on stdin, run in order, with timeouts.

Where each hook point runs (reference/oci-runtime-cli.md §9.2):
prestart/createRuntime in the runtime namespace during create,
createContainer in init before pivot_root, startContainer in init before
the user program, poststart in ``start`` after the program started,
poststop in ``delete``.
"""
import os

from ocirt import jsonio, log
from ocirt.errors import OcirtError


def run_hooks(hooks, point, state, fatal=True):
    """Run ``hooks[point]`` in order.  Non-fatal points only warn."""
    for i, hook in enumerate((hooks or {}).get(point) or []):
        try:
            run_hook(hook, state)
        except OcirtError as e:
            msg = f"{point} hook #{i} ({hook.get('path')}): {e}"
            if fatal:
                raise OcirtError(msg) from None
            log.warning(msg)


def run_hook(hook, state):
    import subprocess
    path = hook["path"]
    args = hook.get("args") or [path]
    timeout = hook.get("timeout")
    try:
        proc = subprocess.Popen(args, executable=path, env=_env(hook.get("env")), stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, close_fds=True,
                                start_new_session=True)
    except OSError as e:
        raise OcirtError(f"cannot run hook: {e.strerror}") from None
    try:
        out, err = proc.communicate(jsonio.dumps(state).encode(), timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, 9)
        except ProcessLookupError:
            pass
        proc.wait()
        raise OcirtError(f"hook ran past specified timeout of {timeout}s") from None
    except BrokenPipeError:  # the hook did not read its stdin: allowed
        out, err = proc.stdout.read(), proc.stderr.read()
        proc.wait()
    if proc.returncode != 0:
        detail = (err or out).decode(errors="replace").strip()
        raise OcirtError(f"exit status {proc.returncode}" + (f", output: {detail}" if detail else ""))


def _env(env_list):
    env = {}
    for item in env_list or []:
        k, _, v = item.partition("=")
        env[k] = v
    return env
