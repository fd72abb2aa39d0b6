"""The container's side of create: stage1 → init → (start) → execve.

``stage1`` is forked by ``create``; it enters the user namespace (the parent
writes the id maps), joins/creates the other namespaces and forks ``init``,
which is pid 1 of a new pid namespace.  stage1 reports init's host pid and
exits, so init ends up a child of the caller's subreaper (conmon, the
containerd shim), as clients expect.

init builds the filesystem, runs the createContainer hooks, pivots, applies
the process attributes, reports "ready" and blocks on the exec fifo until
``start`` opens it; then startContainer hooks, seccomp, execve.

Every message to the parent travels over one SOCK_SEQPACKET socket; any
failure is sent as one error line and the process exits: the parent prints
it once and cleans up.
"""
import os

from ocirt import jsonio

from ocirt.errors import OcirtError
from ocirt.linux import sys as lsys
from ocirt.linux.sys import C


class Channel:
    """JSON messages over one end of a SOCK_SEQPACKET socketpair (a plain fd:
    each write is one message, each read returns one)."""

    def __init__(self, fd):
        self.fd = fd

    def send(self, kind, **fields):
        fields["t"] = kind
        os.write(self.fd, jsonio.dumps(fields).encode())

    def recv(self):
        try:
            data = os.read(self.fd, 65536)
        except ConnectionResetError:
            # the peer went away with our last message unread: the kernel says
            # so once, then still hands over what the peer sent before it went
            data = os.read(self.fd, 65536)
        if not data:
            return None
        return jsonio.loads(data)

    def close(self):
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def expect(self, kind):
        msg = self.recv()
        if msg is None:
            raise RuntimeGone()
        if msg["t"] != kind:
            raise OcirtError(f"protocol error: expected {kind}, got {msg['t']}")
        return msg


class RuntimeGone(Exception):
    """The runtime side closed the channel: it failed and reports why itself."""


class InitContext:
    """Everything the container side needs, computed by the runtime side."""

    def __init__(self, **kw):
        self.__dict__.update(kw)


def run_child(fn, ctx, chan):
    """Run ``fn`` in a forked child; report any failure over ``chan``; never return."""
    code = 1
    try:
        fn(ctx, chan)
        code = 0
    except RuntimeGone:
        pass  # a second error line from here would only hide the runtime's own
    except OcirtError as e:
        _report(chan, str(e))
    except OSError as e:
        _report(chan, f"{e.strerror}: {e.filename}" if e.filename else str(e))
    except BaseException as e:  # noqa: BLE001 - a child must never unwind into the parent's code
        _report(chan, f"internal error in container init: {type(e).__name__}: {e}")
    os._exit(code)


def _report(chan, msg):
    try:
        chan.send("error", msg=msg)
    except OSError:  # after "ready" nobody listens: say it on stderr, as runc does
        from ocirt import log
        log.error(msg)


def fork_reporting_pid(chan):
    """fork(); the parent reports the child's pid *before* the child runs, so
    the runtime always learns the pid before anything the child sends."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(w)
        os.read(r, 1)
        os.close(r)
        return 0
    os.close(r)
    chan.send("pid", pid=pid)
    os.write(w, b"1")
    os.close(w)
    return pid


def stage1(ctx, chan):
    lsys.prctl(C.PR_SET_DUMPABLE, 0)
    chan.expect("go")
    plan = ctx.ns_plan
    if "user" in ctx.join_fds:
        lsys.setns(ctx.join_fds.pop("user"), C.CLONE_NEWUSER)
    elif "user" in plan.new:
        lsys.unshare(C.CLONE_NEWUSER)
        chan.send("userns")
        chan.expect("ok")  # maps written
    if plan.has("user"):
        os.setresgid(0, 0, 0)
        os.setresuid(0, 0, 0)
    for t in ("ipc", "uts", "network", "pid", "cgroup", "time", "mount"):
        if t in ctx.join_fds:
            from ocirt.linux.namespaces import TYPES
            lsys.setns(ctx.join_fds.pop(t), TYPES[t][0])
    lsys.unshare(plan.unshare_flags(exclude=("user", "cgroup")))  # cgroup: once init is inside it
    if "time" in plan.new:
        from ocirt.linux.namespaces import write_time_offsets
        write_time_offsets(ctx.config.get("linux", {}).get("timeOffsets"))
    if fork_reporting_pid(chan) == 0:
        run_child(init, ctx, chan)


def init(ctx, chan):
    config, linux, process = ctx.config, ctx.config.get("linux") or {}, ctx.config.get("process") or {}
    plan = ctx.ns_plan
    lsys.prctl(C.PR_SET_DUMPABLE, 0)
    os.setsid()

    def enter_cgroup():
        """Wait until the runtime has moved us into the container's cgroup."""
        if not ctx.in_cgroup:
            chan.expect("cgroup")
            if "cgroup" in plan.new:
                lsys.unshare(C.CLONE_NEWCGROUP)
            ctx.in_cgroup = True

    from ocirt.linux.rootfs import Rootfs
    # Without a mount namespace of its own the container shares the runtime's
    # (config-linux.md "Namespaces"): its mounts go there, on a bind of the
    # rootfs that `delete` detaches (the runtime is told its mount id first).
    rootfs = Rootfs(ctx.rootfs, ctx.bundle, user_ns=plan.has("user"), host_ns=not plan.has("mount"))
    rootfs.prepare(linux.get("rootfsPropagation"))
    if rootfs.host_ns:
        chan.send("hostmount", mnt_id=rootfs.mount_id())
    rootfs.mount_all(config.get("mounts"), cgroup_ns=plan.has("cgroup"), before_cgroup_mount=enter_cgroup,
                     idmapped_fds=ctx.idmapped_fds)
    rootfs.create_devices(list(linux.get("devices") or []) + ctx.extra_devices)
    enter_cgroup()

    if "uts" in plan.new or "uts" in plan.join:
        if config.get("hostname"):
            lsys.sethostname(config["hostname"])
        if config.get("domainname"):
            lsys.setdomainname(config["domainname"])
    elif config.get("hostname"):
        raise OcirtError("config.json: hostname: setting the hostname needs a new uts namespace")
    if "network" in plan.new:
        from ocirt.linux.network import loopback_up
        loopback_up()
    if linux.get("sysctl"):
        apply_sysctl(linux["sysctl"], plan)

    # prestart / createRuntime hooks run by the runtime now; netDevices moved in.
    chan.send("hooks")
    ctx.container.pid = chan.expect("ok")["pid"]  # our host pid, for the state hooks receive
    if (config.get("hooks") or {}).get("createContainer"):
        from ocirt.hooks import run_hooks
        run_hooks(config["hooks"], "createContainer", ctx.state_for_hooks("creating", os.getpid()))
    if ctx.handler is not None:
        ctx.handler.before_pivot(config, ctx.rootfs)

    rootfs.pivot(no_pivot=ctx.no_pivot)
    from ocirt.linux import rootfs as rootfs_ops
    if process.get("terminal") and ctx.console_fd is not None:
        setup_console(ctx, rootfs, process)
    rootfs_ops.mask_paths(linux.get("maskedPaths"))
    rootfs_ops.readonly_paths(linux.get("readonlyPaths"))
    if (config.get("root") or {}).get("readonly"):
        rootfs_ops.remount_root_readonly()
    # last: once unbindable, nothing can be bound from the tree any more
    rootfs_ops.set_root_propagation(linux.get("rootfsPropagation"))

    if linux.get("personality"):
        domain = linux["personality"].get("domain")
        lsys.personality(C.PER_LINUX32 if domain == "LINUX32" else C.PER_LINUX)
    finish_process(ctx, process, config, in_user_ns=plan.has("user"))

    chan.send("ready")
    chan.close()
    fifo = wait_for_start(ctx.fifo_fd)
    try:
        if (config.get("hooks") or {}).get("startContainer"):
            from ocirt.hooks import run_hooks
            run_hooks(config["hooks"], "startContainer", ctx.state_for_hooks("created", os.getpid()))
    except OcirtError as e:
        os.write(fifo, b"1" + str(e).encode()[:4000])  # `start` reports it and fails
        os._exit(1)
    os.write(fifo, b"0")
    os.close(fifo)
    ctx.started = True
    execute(ctx, process)


def preload_for_container(config):
    """Import, before forking, everything the container side may need: once
    in a user namespace (uid no longer root on the host) or after
    pivot_root / setns(mnt), the host's Python library is out of reach."""
    import ocirt.log  # noqa: F401 - errors after pivot_root are still reported
    import ocirt.process  # noqa: F401
    import ocirt.linux.caps  # noqa: F401
    import ocirt.cgroups  # noqa: F401
    import ocirt.linux.network  # noqa: F401
    import ocirt.linux.namespaces  # noqa: F401
    import ocirt.linux.rootfs  # noqa: F401
    process = config.get("process") or {}
    if process.get("terminal"):
        import termios  # noqa: F401
        import tty  # noqa: F401
        import ocirt.console  # noqa: F401
    hooks = config.get("hooks") or {}
    if hooks.get("createContainer") or hooks.get("startContainer"):
        import subprocess  # noqa: F401
        import ocirt.hooks  # noqa: F401
    seccomp = (config.get("linux") or {}).get("seccomp")
    if seccomp:
        import ocirt.linux.seccomp  # noqa: F401
        if seccomp.get("listenerPath"):
            import socket  # noqa: F401 - send_listener's send_fds


def finish_process(ctx, process, config, in_user_ns):
    """Everything about the process that can fail is done before "ready"."""
    from ocirt import process as proc
    proc.set_rlimits(process.get("rlimits"))
    proc.set_oom_score_adj(process.get("oomScoreAdj"))
    if process.get("ioPriority"):
        io = process["ioPriority"]
        classes = {"IOPRIO_CLASS_RT": C.IOPRIO_CLASS_RT, "IOPRIO_CLASS_BE": C.IOPRIO_CLASS_BE,
                   "IOPRIO_CLASS_IDLE": C.IOPRIO_CLASS_IDLE}
        lsys.ioprio_set(classes[io["class"]], io.get("priority", 0))
    proc.set_scheduler(process.get("scheduler"))
    if not ctx.no_new_keyring:
        join_session_keyring(ctx.container.id)
    user = process.get("user") or {}
    env = proc.environment(process, user.get("uid", 0))
    ctx.env = env
    if ctx.listen_fds:
        env["LISTEN_FDS"], env["LISTEN_PID"] = str(ctx.listen_fds), "1"
    proc.chdir_in_root(process.get("cwd") or "/")
    proc.set_apparmor_profile(process.get("apparmorProfile"))
    proc.seal_fds(ctx.listen_fds + ctx.preserve_fds)  # close_range may be outside the container's filter
    load_seccomp_early(ctx, process)
    proc.switch_user(user, ctx.cap_masks, process.get("noNewPrivileges", False), in_user_ns)
    if ctx.handler is None:
        ctx.executable = proc.find_executable((process.get("args") or [""])[0], env)


def load_seccomp_early(ctx, process):
    """Without no_new_privs the kernel accepts a filter only from a task that
    has CAP_SYS_ADMIN: then it is loaded before capabilities are dropped (as
    runc does), otherwise as the last step before execve."""
    if ctx.seccomp_filter is None:
        return
    from ocirt.linux import seccomp
    if seccomp.load_before_capabilities(process):
        load_seccomp(ctx)


def load_seccomp(ctx):
    from ocirt.linux import seccomp
    flt, ctx.seccomp_filter = ctx.seccomp_filter, None
    state = ctx.state_for_hooks("running" if ctx.started else "creating") if ctx.seccomp_listener else None
    seccomp.load_and_hand_over(flt, ctx.seccomp_listener, state,
                               (ctx.config.get("linux") or {}).get("seccomp", {}).get("listenerMetadata"))


def join_session_keyring(container_id):
    """Each container gets its own session keyring, as with runc (unless
    --no-new-keyring); kernels without keyrings simply have none."""
    import errno
    try:
        lsys.keyctl_join_session(f"_ses.{container_id}")
    except OSError as e:
        if e.errno not in (errno.ENOSYS, errno.EPERM, errno.EACCES):
            raise OcirtError(f"cannot join a new session keyring: {e.strerror}") from None


def setup_console(ctx, rootfs, process):
    from ocirt import console
    master, peer, name = console.open_pty_in_container(process.get("consoleSize"))
    if rootfs is not None:
        from ocirt.linux.rootfs import bind_console
        bind_console(name)
    import socket
    sock = socket.socket(fileno=ctx.console_fd)
    try:
        console.send_master(sock, name, master)
    except OSError as e:
        raise OcirtError(f"cannot send the pty master over the console socket: {e.strerror}") from None
    finally:
        sock.close()
        os.close(master)
    console.make_controlling_tty(peer)


def apply_sysctl(sysctl, plan):
    """Only namespaced sysctls, and only for namespaces the container owns."""
    for key, value in sysctl.items():
        if not _sysctl_allowed(key, plan):
            raise OcirtError(f"config.json: linux.sysctl: {key} is not namespaced for this container "
                             f"and would change the host")
        path = "/proc/sys/" + key.replace(".", "/")
        try:
            with open(path, "w") as f:
                f.write(str(value))
        except OSError as e:
            raise OcirtError(f"config.json: linux.sysctl: {key}={value}: {e.strerror}") from None


def _sysctl_allowed(key, plan):
    if ".." in key or key.startswith("/"):
        return False
    if key in ("kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall",
               "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced") or key.startswith("fs.mqueue."):
        return plan.has("ipc")
    if key.startswith("net."):
        return plan.has("network")
    if key in ("kernel.hostname", "kernel.domainname"):
        return plan.has("uts")
    return False


def wait_for_start(fifo_fd):
    """Block until ``start`` opens the exec fifo; return our (write) end.

    The caller writes "0" when the process is about to run, or "1<error>"
    when a startContainer hook failed, so ``start`` can fail as it must.
    """
    fd = os.open(f"/proc/self/fd/{fifo_fd}", os.O_WRONLY | os.O_CLOEXEC)
    os.close(fifo_fd)
    return fd


def execute(ctx, process):
    from ocirt import process as proc
    from ocirt import log
    if ctx.seccomp_filter is not None:
        load_seccomp(ctx)
    if ctx.handler is not None:
        ctx.handler.enter(ctx.config, process)
        raise OcirtError(f"{ctx.handler.name} handler returned without running the container")
    try:
        os.execve(ctx.executable, process["args"], ctx.env)
    except OSError as e:
        # too late to reach create: the process simply fails, as with runc
        log.error(f'exec: "{process["args"][0]}": {e.strerror.lower()}')
        os._exit(127 if e.errno == 2 else 126)
