"""``exec``: start another process inside a running container.

The forked child joins the container's namespaces (user first) and forks
again so the process lands in the container's pid namespace; that
grandchild applies the process attributes and execs.  The runtime waits for
it as a child subreaper in the foreground, or writes the pid file and
leaves in detached mode.  Errors before execve reach the caller as one line
and exit status 255, as with runc.
"""
import os

from ocirt import jsonio
from ocirt.errors import OcirtError
from ocirt.linux import sys as lsys
from ocirt.linux.sys import C


class ExecRequest:
    def __init__(self, process, detach=False, console_socket=None, pid_file=None, preserve_fds=0,
                 ignore_paused=False, pidfd_socket=None):
        self.pidfd_socket = pidfd_socket
        self.process, self.detach, self.console_socket = process, detach, console_socket
        self.pid_file, self.preserve_fds, self.ignore_paused = pid_file, preserve_fds, ignore_paused


def build_process(container, opts, args):
    """The process to run: ``-p process.json``, or the container's process with the flags applied."""
    if opts["process"]:
        try:
            with open(opts["process"]) as f:
                process = jsonio.load(f)
        except OSError as e:
            raise OcirtError(f"cannot read process file {opts['process']}: {e.strerror}") from None
        except ValueError as e:
            raise OcirtError(f"process file {opts['process']}: invalid JSON: {e}") from None
        if not process.get("args"):
            raise OcirtError(f"process file {opts['process']}: args must not be empty")
    else:
        if not args:
            raise OcirtError("exec: missing command to run")
        process = dict(container.load_config().get("process") or {})
        process["args"] = list(args)
        process["terminal"] = opts["tty"]
        process.pop("consoleSize", None)
    if opts["cwd"]:
        process["cwd"] = opts["cwd"]
    process.setdefault("cwd", "/")
    if opts["env"]:
        process["env"] = list(process.get("env") or []) + opts["env"]
    if opts["user"]:
        uid, _, gid = opts["user"].partition(":")
        try:
            process["user"] = {"uid": int(uid), "gid": int(gid) if gid else 0}
        except ValueError:
            raise OcirtError(f"--user: expected uid[:gid], got {opts['user']!r}") from None
    if opts["additional-gids"]:
        process.setdefault("user", {"uid": 0, "gid": 0})["additionalGids"] = [int(g) for g in opts["additional-gids"]]
    if opts["cap"]:
        caps = process.setdefault("capabilities", {})
        for s in ("bounding", "effective", "permitted"):
            caps[s] = list(dict.fromkeys(list(caps.get(s) or []) + opts["cap"]))
    if opts["no-new-privs"]:
        process["noNewPrivileges"] = True
    if opts["apparmor"]:
        process["apparmorProfile"] = opts["apparmor"]
    return process


def exec_in(container, req: ExecRequest):
    from ocirt.cgroups import MigrationWarmup
    warmup = MigrationWarmup(start=bool(container.cgroup))
    if not container.cgroup:
        warmup.finish()  # the launcher's, if it started one: nothing to migrate into
        return _exec_in(container, req, None)
    try:
        return _exec_in(container, req, warmup)
    finally:
        warmup.finish()


def _exec_in(container, req, warmup):
    from ocirt import cgroups
    from ocirt.container import seccomp_module
    from ocirt.init import Channel, run_child
    from ocirt.linux import caps
    status = container.status()
    if status == "stopped":
        raise OcirtError("cannot exec in a stopped container")
    if status == "paused" and not req.ignore_paused:
        raise OcirtError("cannot exec in a paused container (use --ignore-paused to override)")
    if container.handler:
        from ocirt import handlers
        raise OcirtError(handlers.exec_refusal(container.handler))
    process = req.process
    terminal = bool(process.get("terminal"))
    if terminal and req.detach and not req.console_socket:
        raise OcirtError("cannot allocate tty if runc will detach without setting console socket")
    if req.console_socket and not terminal:
        raise OcirtError("cannot use console socket if runc will not detach or allocate tty")
    config = container.load_config()
    from ocirt.process import check_apparmor
    check_apparmor(process.get("apparmorProfile"))
    cap_masks = caps.parse(process.get("capabilities")) if process.get("capabilities") is not None else None
    seccomp_filter = listener = None
    seccomp_config = (config.get("linux") or {}).get("seccomp")
    if seccomp_config:
        seccomp = seccomp_module()
        seccomp_filter = seccomp.compile(seccomp_config)
        if seccomp_config.get("listenerPath"):
            fd = seccomp.open_listener(seccomp_config["listenerPath"])
            listener = {"fd": fd, "path": f"/proc/self/fd/{fd}", "state": container.oci_state("running"),
                        "metadata": seccomp_config.get("listenerMetadata")}
    from ocirt.init import preload_for_container
    preload_for_container({"process": process, "linux": config.get("linux") or {}})
    ns_fds = _open_namespaces(container.pid)
    root_fd = None
    if "mount" not in ns_fds and container.host_mount:
        # the container shares our mount namespace: its root is a chroot
        root_fd = os.open(f"/proc/{container.pid}/root", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    if container.pid_start != _start_time(container.pid):
        raise OcirtError("container not running")

    console_fd = proxy_sock = None
    if terminal:
        if req.console_socket:
            from ocirt.console import connect_socket
            console_fd = connect_socket(req.console_socket).detach()
        else:
            import socket
            proxy_sock, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            console_fd = theirs.detach()
    if not req.detach:
        lsys.prctl(C.PR_SET_CHILD_SUBREAPER, 1)
    parent_end, child_end = lsys.socketpair_seqpacket()
    ctx = _Ctx(process=process, ns_fds=ns_fds, cap_masks=cap_masks, seccomp_filter=seccomp_filter,
               console_fd=console_fd, preserve_fds=req.preserve_fds, in_user_ns=bool(container.user_ns),
               listener=listener, root_fd=root_fd)
    pid = os.fork()
    if pid == 0:
        os.close(parent_end)
        run_child(_join, ctx, Channel(child_end))
    os.close(child_end)
    for fd in ns_fds.values():
        os.close(fd)
    if root_fd is not None:
        os.close(root_fd)
    if console_fd is not None:
        os.close(console_fd)
    if listener:
        os.close(listener["fd"])
    chan = Channel(parent_end)
    target = 0
    try:
        if container.cgroup:
            cgroups.manager_from_dict(container.cgroup).add_pid(pid)
            warmup.finish()  # reaped here, before the wait below collects any child
        chan.send("go")
        while True:
            msg = chan.recv()
            if msg is None:
                raise OcirtError("exec: the process exited during setup")
            if msg["t"] == "error":
                raise OcirtError(msg["msg"])
            if msg["t"] == "pid":
                target = msg["pid"]
                if listener:
                    chan.send("pid", pid=target)  # the process's pid as the runtime sees it, for the listener
            elif msg["t"] == "ready":
                break
    except OcirtError as e:
        _wait(pid)
        if target:
            _wait(target)
        raise OcirtError(f"exec failed: {e}", exit_code=255) from None
    finally:
        chan.close()
    _wait(pid)
    if req.pid_file:
        from ocirt.container import write_pid_file
        write_pid_file(req.pid_file, target)
    if req.pidfd_socket:
        from ocirt.container import send_pidfd
        send_pidfd(req.pidfd_socket, target)
    if req.detach:
        return 0
    if proxy_sock is not None:
        from ocirt import console
        master = console.receive_master(proxy_sock)
        proxy_sock.close()
        status = console.proxy(master, target)
    else:
        status = _wait_forwarding_signals(target)
    return exit_code(status)


class _Ctx:
    def __init__(self, **kw):
        self.__dict__.update(kw)


def _open_namespaces(pid):
    """fds of the container's namespaces that differ from ours (joining our own user ns fails)."""
    from ocirt.linux.namespaces import JOIN_ORDER, TYPES
    fds = {}
    for t in JOIN_ORDER:
        name = TYPES[t][1]
        try:
            if os.stat(f"/proc/{pid}/ns/{name}").st_ino == os.stat(f"/proc/self/ns/{name}").st_ino:
                continue
            fds[t] = os.open(f"/proc/{pid}/ns/{name}", os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            continue
        except ProcessLookupError:
            raise OcirtError("container not running") from None
    return fds


def _start_time(pid):
    from ocirt.state import proc_start_time
    return proc_start_time(pid)[0]


def _join(ctx, chan):
    from ocirt.init import fork_reporting_pid, run_child
    from ocirt.linux.namespaces import JOIN_ORDER, TYPES
    lsys.prctl(C.PR_SET_DUMPABLE, 0)  # before joining: /proc/<pid>/exe stays out of reach
    chan.expect("go")
    from ocirt import process as proc
    proc.set_cpu_affinity((ctx.process.get("execCPUAffinity") or {}).get("initial"), "process.execCPUAffinity.initial")
    for t in JOIN_ORDER:
        if t in ctx.ns_fds:
            lsys.setns(ctx.ns_fds.pop(t), TYPES[t][0])
            if t == "user":
                os.setresgid(0, 0, 0)
                os.setresuid(0, 0, 0)
    if ctx.root_fd is not None:
        os.fchdir(ctx.root_fd)
        os.chroot(".")
        os.close(ctx.root_fd)
    if fork_reporting_pid(chan) == 0:
        run_child(_prepare_and_exec, ctx, chan)


def _prepare_and_exec(ctx, chan):
    from ocirt import process as proc
    process = ctx.process
    if ctx.listener:
        ctx.listener["state"]["pid"] = chan.expect("pid")["pid"]
    user = process.get("user") or {}
    proc.set_rlimits(process.get("rlimits"))
    proc.set_scheduler(process.get("scheduler"))
    proc.set_cpu_affinity((process.get("execCPUAffinity") or {}).get("final"), "process.execCPUAffinity.final")
    env = proc.environment(process, user.get("uid", 0))
    proc.chdir_in_root(process.get("cwd") or "/")
    proc.set_apparmor_profile(process.get("apparmorProfile"))
    peer = None
    if ctx.console_fd is not None:
        from ocirt import console
        master, peer, name = console.open_pty_in_container(process.get("consoleSize"))
        import socket  # imported before the fork with ocirt.console (preload_for_container)
        sock = socket.socket(fileno=ctx.console_fd)
        console.send_master(sock, name, master)
        sock.close()
        os.close(master)
    proc.seal_fds(ctx.preserve_fds)  # close_range may be outside the container's filter
    if ctx.seccomp_filter is not None:
        from ocirt.linux import seccomp
        if seccomp.load_before_capabilities(process):
            _load_seccomp(ctx)
    proc.switch_user(user, ctx.cap_masks, process.get("noNewPrivileges", False), ctx.in_user_ns)
    executable = proc.find_executable(process["args"][0], env)
    if peer is not None:
        from ocirt import console
        console.make_controlling_tty(peer)
    chan.send("ready")
    chan.close()
    if ctx.seccomp_filter is not None:
        _load_seccomp(ctx)
    os.execve(executable, process["args"], env)


def _load_seccomp(ctx):
    from ocirt.linux import seccomp
    flt, ctx.seccomp_filter = ctx.seccomp_filter, None
    listener = ctx.listener or {}
    seccomp.load_and_hand_over(flt, listener.get("path"), listener.get("state"), listener.get("metadata"))


def _wait(pid):
    try:
        return os.waitpid(pid, 0)[1]
    except ChildProcessError:
        return 0


def _wait_forwarding_signals(pid):
    """Wait for ``pid`` (our child or an orphan we reap as subreaper), forwarding signals."""
    import _signal as signal  # the C module: signal.py imports enum (~5 ms)

    def forward(signum, _frame):
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2,
              signal.SIGWINCH):
        signal.signal(s, forward)
    while True:
        try:
            got, status = os.waitpid(-1, 0)
        except ChildProcessError:
            return 0
        except InterruptedError:
            continue
        if got == pid:
            return status


def exit_code(status):
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)
