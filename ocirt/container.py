"""The runtime side of the lifecycle: create, start, kill, delete, exec.

``create`` validates the bundle, claims the ID, forks the container's
stage1/init (ocirt/init.py) and serves its requests over one socket: write
the user-namespace maps, run the runtime-namespace hooks, move network
devices.  It returns when init is fully set up and blocked on the exec
fifo; any failure is printed once by ``create`` and everything it made is
undone.
"""
import os
import time

from ocirt import log
from ocirt.errors import OcirtError
from ocirt.state import Container, StateStore, proc_start_time


class CreateOptions:
    def __init__(self, bundle=".", console_socket=None, pid_file=None, no_pivot=False, preserve_fds=0,
                 systemd_cgroup=False, prog="ocirt", proxy_console=False, no_new_keyring=False, pidfd_socket=None):
        self.bundle, self.console_socket, self.pid_file = bundle, console_socket, pid_file
        self.no_new_keyring, self.pidfd_socket = no_new_keyring, pidfd_socket
        self.no_pivot, self.preserve_fds, self.systemd_cgroup = no_pivot, preserve_fds, systemd_cgroup
        self.prog = prog
        # foreground `run` without --console-socket: a terminal the config asks
        # for is proxied by the caller, who receives the pty master on console_proxy
        self.proxy_console = proxy_console
        self.console_proxy = None


def create(store: StateStore, cid, opts: CreateOptions, warmup=None):
    """``warmup``: the cgroup MigrationWarmup, best started by the caller
    before it imports this module (it runs while everything below is
    prepared); one is started here otherwise."""
    if warmup is None:
        from ocirt.cgroups import MigrationWarmup
        warmup = MigrationWarmup()
    try:
        return _create(store, cid, opts, warmup)
    finally:
        warmup.finish()


def _create(store, cid, opts, warmup):
    from ocirt.spec.config import load_bundle
    from ocirt.linux.namespaces import Plan
    from ocirt.linux import caps
    from ocirt.init import Channel, InitContext, preload_for_container, run_child, stage1

    bundle, config, rootfs = load_bundle(opts.bundle)
    linux = config.get("linux") or {}
    process = config.get("process") or {}
    plan = Plan(linux)
    terminal = bool(process.get("terminal"))
    if terminal and not opts.console_socket and not opts.proxy_console:
        raise OcirtError("cannot allocate tty if runc will detach without setting console socket")
    if opts.console_socket and not terminal:
        raise OcirtError("cannot use console socket if runc will not detach or allocate tty")
    cap_masks = caps.parse(process.get("capabilities")) if process.get("capabilities") is not None else None
    refuse_unsupported(linux)
    from ocirt.process import check_apparmor
    check_apparmor(process.get("apparmorProfile"))
    handler = _select_handler(config, rootfs, opts.prog)
    seccomp_filter = None
    if linux.get("seccomp"):
        seccomp = seccomp_module()
        seccomp_filter = seccomp.compile(linux["seccomp"])

    idmapped = None
    if any(_asks_idmap(m) for m in config.get("mounts") or []):
        from ocirt.linux import idmap
        idmapped = idmap.plan(config, bundle, plan.has("user"))
    from ocirt.process import listen_fds_env
    listen_fds = listen_fds_env({})
    join_fds = plan.open_join_fds()
    store.reserve(cid)
    container = Container(store, {"id": cid, "bundle": bundle, "rootfs": rootfs, "pid": 0,
                                  "annotations": config.get("annotations") or {},
                                  "handler": handler.name if handler else None,
                                  "owner": "", "user_ns": plan.has("user")})
    cgroup = None
    cleanup_fds = list(join_fds.values())
    try:
        container.config_file = os.path.join(container.dir, "config.json")
        _freeze_config(container.config_file, config)
        # 0622 and owned by the container's root, as runc does: init opens it
        # for writing after switching to the container user.
        os.mkfifo(container.fifo_path, 0o622)
        os.chmod(container.fifo_path, 0o622)
        _chown_to_container_root(container.fifo_path, linux, plan)
        fifo_fd = os.open(container.fifo_path, os.O_PATH | os.O_CLOEXEC)
        cleanup_fds.append(fifo_fd)
        console_fd = None
        if terminal and opts.console_socket:
            from ocirt.console import connect_socket
            sock = connect_socket(opts.console_socket)
            console_fd = sock.detach()
            cleanup_fds.append(console_fd)
        elif terminal:
            import socket
            opts.console_proxy, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            console_fd = theirs.detach()
            cleanup_fds.append(console_fd)
        # Made and joined once init exists (_serve_init): by then the
        # migration warm-up has released the cgroup lock it holds meanwhile.
        cgroup = _plan_cgroup(linux, cid, opts.systemd_cgroup)
        idmapped_fds = {}
        if idmapped:
            from ocirt.linux.idmap import prepare
            idmapped_fds = prepare(idmapped)  # in the host's namespaces, before init leaves them
            cleanup_fds.extend(idmapped_fds.values())
        listener_fd = None
        if (linux.get("seccomp") or {}).get("listenerPath"):
            listener_fd = seccomp_module().open_listener(linux["seccomp"]["listenerPath"])
            cleanup_fds.append(listener_fd)

        def state_for_hooks(status, pid=None, _c=container):
            """runtime.md: pid as seen from the namespace the hook runs in."""
            state = _c.oci_state(status)
            if pid is not None:
                state["pid"] = pid
            return state

        ctx = InitContext(
            config=config, bundle=bundle, rootfs=rootfs, ns_plan=plan, join_fds=join_fds,
            no_pivot=opts.no_pivot, console_fd=console_fd, fifo_fd=fifo_fd, cap_masks=cap_masks,
            handler=handler, extra_devices=handler.extra_devices(config) if handler else [],
            seccomp_filter=seccomp_filter, idmapped_fds=idmapped_fds,
            seccomp_listener=f"/proc/self/fd/{listener_fd}" if listener_fd is not None else None,
            listen_fds=listen_fds, preserve_fds=opts.preserve_fds, state_for_hooks=state_for_hooks,
            container=container, started=False, env=None, executable=None, no_new_keyring=opts.no_new_keyring,
            in_cgroup=False)
        preload_for_container(config)
        from ocirt.linux.sys import socketpair_seqpacket
        parent_end, child_end = socketpair_seqpacket()
        stage1_pid = os.fork()
        if stage1_pid == 0:
            os.close(parent_end)
            run_child(stage1, ctx, Channel(child_end))
        os.close(child_end)
        chan = Channel(parent_end)
        try:
            chan.send("go")
            init_pid = _serve_init(chan, container, config, plan, stage1_pid, cgroup, handler, warmup)
        finally:
            chan.close()
            _reap(stage1_pid)
        container.pid = init_pid
        container.pid_start = proc_start_time(init_pid)[0]
        container.created = log.rfc3339_now()
        container.save()
        if opts.pid_file:
            write_pid_file(opts.pid_file, init_pid)
        if opts.pidfd_socket:
            send_pidfd(opts.pidfd_socket, init_pid)
    except BaseException:
        _undo_create(store, container, cgroup)
        raise
    finally:
        for fd in cleanup_fds:
            try:
                os.close(fd)
            except OSError:
                pass
    return container


def _serve_init(chan, container, config, plan, stage1_pid, cgroup, handler, warmup):
    """Answer stage1/init until init reports ready; return init's host pid.

    The cgroup is made and init moved into it as soon as init's pid is
    known, while init builds the root filesystem; init waits for "cgroup"
    only before it needs to be inside (cgroup namespace, cgroup mounts,
    hooks).
    """
    def reply(kind, **fields):
        try:
            chan.send(kind, **fields)
        except (BrokenPipeError, ConnectionResetError):
            # init failed while we were busy (making the cgroup, running
            # hooks): its last words are still queued on the socket
            last = chan.recv()
            if last and last["t"] == "error":
                raise OcirtError(last["msg"]) from None
            raise OcirtError("container init exited during setup") from None

    init_pid = 0
    while True:
        msg = chan.recv()
        if msg is None:
            raise OcirtError("container init exited during setup")
        kind = msg["t"]
        if kind == "error":
            raise OcirtError(msg["msg"])
        if kind == "userns":
            from ocirt.linux.namespaces import write_id_maps
            write_id_maps(stage1_pid, config.get("linux") or {})
            reply("ok")
        elif kind == "pid":
            init_pid = msg["pid"]
            container.pid = init_pid
            container.pid_start = proc_start_time(init_pid)[0]
            if cgroup:
                _build_cgroup(cgroup, config, handler)
                container.cgroup = cgroup.to_dict()
                cgroup.add_pid(init_pid)
            warmup.finish()
            reply("cgroup")
        elif kind == "hostmount":
            # no mount namespace: init bound the rootfs in ours (delete detaches it)
            container.host_mount = msg["mnt_id"]
        elif kind == "hooks":
            linux = config.get("linux") or {}
            if linux.get("netDevices"):
                from ocirt.linux.network import move_net_devices
                move_net_devices(linux["netDevices"], init_pid)
            hooks = config.get("hooks") or {}
            if hooks.get("prestart") or hooks.get("createRuntime"):
                from ocirt.hooks import run_hooks
                # prestart is the runtime-spec 1.0 hook of "after the create
                # operation, before the user program": its state says
                # `created` (what runtime-tools hooks_stdin and crun expect);
                # createRuntime, a step of create itself, sees `creating`.
                run_hooks(hooks, "prestart", container.oci_state("created"))
                run_hooks(hooks, "createRuntime", container.oci_state("creating"))
            reply("ok", pid=init_pid)
        elif kind == "ready":
            return init_pid


def refuse_unsupported(linux):
    """Settings ocirt cannot apply must fail create, never be ignored (spec)."""
    if linux.get("intelRdt"):
        raise OcirtError("config.json: linux.intelRdt: Intel RDT (resctrl) is not supported by ocirt")
    if linux.get("memoryPolicy"):
        raise OcirtError("config.json: linux.memoryPolicy: NUMA memory policies are not supported by ocirt yet")


def send_pidfd(path, pid):
    """--pidfd-socket (runc >= 1.2): a pidfd of the process over SCM_RIGHTS."""
    import socket
    from ocirt.console import connect_socket
    sock = connect_socket(path)
    pidfd = os.pidfd_open(pid)
    try:
        socket.send_fds(sock, [b"pidfd"], [pidfd])
    except OSError as e:
        raise OcirtError(f"cannot send the pidfd over {path}: {e.strerror}") from None
    finally:
        os.close(pidfd)
        sock.close()


def _asks_idmap(mount):
    options = mount.get("options") or ()
    return bool(mount.get("uidMappings") or mount.get("gidMappings") or "idmap" in options or "ridmap" in options)


def _chown_to_container_root(path, linux, plan):
    if "user" in plan.new:
        from ocirt.linux.namespaces import host_id
        uid = host_id(linux.get("uidMappings"), 0)
        gid = host_id(linux.get("gidMappings"), 0)
        os.chown(path, uid if uid is not None else -1, gid if gid is not None else -1)


def _select_handler(config, rootfs, prog):
    try:
        from ocirt import handlers
    except ImportError:
        return None
    handler = handlers.select(config, rootfs, prog)
    if handler is not None:
        handler.check(config, rootfs)
    return handler


def seccomp_module():
    try:
        from ocirt.linux import seccomp
    except ImportError:
        raise OcirtError("config.json: linux.seccomp: this ocirt build has no seccomp support") from None
    return seccomp


def _plan_cgroup(linux, cid, systemd):
    from ocirt import cgroups
    return cgroups.manager_for(linux, cid, systemd)


def _build_cgroup(manager, config, handler):
    """Create the container's cgroup directories and apply linux.resources."""
    linux = config.get("linux") or {}
    manager.create()  # a failure from here on is undone by _undo_create
    resources = dict(linux.get("resources") or {})
    if "devices" in resources:
        extra = list(linux.get("devices") or []) + (handler.extra_devices(config) if handler else [])
        resources["devices"] = device_rules(resources["devices"], extra)
    if resources:
        manager.apply_resources(resources)


# Allowed after the configured rules, as runc and crun do: clients such as
# podman send only "deny all" and rely on the runtime for the default devices.
DEFAULT_DEVICE_RULES = tuple(
    {"allow": True, "type": t, "major": ma, "minor": mi, "access": acc} for t, ma, mi, acc in (
        ("c", None, None, "m"), ("b", None, None, "m"), ("c", 1, 3, "rwm"), ("c", 1, 8, "rwm"),
        ("c", 1, 7, "rwm"), ("c", 5, 0, "rwm"), ("c", 1, 5, "rwm"), ("c", 1, 9, "rwm"),
        ("c", 5, 1, "rwm"), ("c", 136, None, "rwm"), ("c", 5, 2, "rwm")))


def device_rules(configured, devices):
    """The device cgroup rules: configured ones, then defaults and linux.devices."""
    rules = list(configured or []) + [{k: v for k, v in r.items() if v is not None} for r in DEFAULT_DEVICE_RULES]
    for d in devices:
        if d.get("type") in ("c", "b", "u"):
            rules.append({"allow": True, "type": "b" if d["type"] == "b" else "c", "major": d.get("major"),
                          "minor": d.get("minor"), "access": "rwm"})
    return rules


def _freeze_config(path, config):
    """Later edits to the bundle's config.json must not matter (spec)."""
    from ocirt import jsonio
    with open(path, "w") as f:
        f.write(jsonio.dumps(config))


def _undo_create(store, container, cgroup):
    import _signal as signal  # the C module: signal.py imports enum (~5 ms)
    if container.pid:
        _kill_and_wait(container.pid, container.pid_start)
    _release_host_mount(container)
    if cgroup and cgroup.owned:  # a joined cgroup's other processes are not ours to kill
        try:
            cgroup.kill_all(signal.SIGKILL)
        except (OSError, AttributeError):
            pass
        try:
            cgroup.destroy()
        except OSError as e:
            log.warning(f"cannot remove cgroup: {e}")
    store.remove(container.id)


def _release_host_mount(container):
    """A container without a mount namespace left its mounts in ours, all
    on the rootfs bind init reported: detach it (and them)."""
    if not container.host_mount or not container.rootfs:
        return
    from ocirt.linux.rootfs import release_host_bind
    try:
        release_host_bind(container.rootfs, container.host_mount)
    except OSError as e:
        log.warning(f"cannot unmount the rootfs of {container.id}: {e}")


def _reap(pid):
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def _kill_and_wait(pid, start_time, timeout=5.0):
    """SIGKILL a process we started (checked by start time) and wait for it to go."""
    import _signal as signal  # the C module: signal.py imports enum (~5 ms)
    if proc_start_time(pid)[0] != start_time:
        return
    try:
        pidfd = os.pidfd_open(pid)
    except (ProcessLookupError, OSError):
        return
    try:
        if proc_start_time(pid)[0] != start_time:
            return
        signal.pidfd_send_signal(pidfd, signal.SIGKILL)
        import select
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        poller.poll(timeout * 1000)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:  # an orphan's zombie is reaped by its new parent
            st = proc_start_time(pid)
            if st[0] != start_time or st[1] in ("Z", "X"):
                break
            time.sleep(0.002)
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
    except ProcessLookupError:
        pass
    finally:
        os.close(pidfd)


def write_pid_file(path, pid):
    """runc's way: write .<name> with O_EXCL, no newline, then rename."""
    path = os.path.abspath(path)
    d, name = os.path.split(path)
    tmp = os.path.join(d, "." + name)
    try:
        fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_SYNC | os.O_CLOEXEC, 0o644)
    except FileExistsError:
        os.unlink(tmp)
        fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_SYNC | os.O_CLOEXEC, 0o644)
    except OSError as e:
        raise OcirtError(f"cannot write pid file {path}: {e.strerror}") from None
    try:
        os.write(fd, str(pid).encode())
    finally:
        os.close(fd)
    os.rename(tmp, path)


# -- start ---------------------------------------------------------------------

def start(container: Container):
    status = container.status()
    if status != "created":
        if status == "stopped":
            raise OcirtError("cannot start a container that has stopped")
        raise OcirtError("cannot start an already running container")
    config = container.load_config()
    if not config.get("process"):
        raise OcirtError("config.json: process: start needs a process")
    _release_init(container)
    try:
        os.unlink(container.fifo_path)
    except FileNotFoundError:
        pass
    if (config.get("hooks") or {}).get("poststart"):
        from ocirt.hooks import run_hooks
        run_hooks(config["hooks"], "poststart", container.oci_state("running"), fatal=False)


def _release_init(container):
    """Open the exec fifo: init's blocked open returns, it runs the
    startContainer hooks and answers "0" (exec'ing) or "1<error>"."""
    import select
    fd = os.open(container.fifo_path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    answer = b""
    try:
        while True:
            try:
                data = os.read(fd, 4096)
            except BlockingIOError:
                data = None
            if data:
                answer += data
                if answer[:1] == b"0":
                    return
                continue
            if data == b"" and answer:
                break  # init wrote its error and closed
            # nothing yet: init has not reopened its end, or runs its hooks, or died
            if not container.init_alive():
                # it may have answered and exec'd a process that already
                # exited since the read above: the answer is still buffered
                try:
                    answer += os.read(fd, 4096)
                except BlockingIOError:
                    pass
                if answer[:1] == b"0":
                    return
                break
            select.select([fd], [], [], 0.05)
            if data == b"":
                time.sleep(0.0005)  # EOF before init opened its end: poll gently
    finally:
        os.close(fd)
    if answer[:1] == b"1":
        raise OcirtError(answer[1:].decode(errors="replace"))
    raise OcirtError("cannot start container: its init process exited")


# -- kill ----------------------------------------------------------------------

def parse_signal(text):
    """runc's parseSignal: a number, or a name with or without SIG, any case."""
    import _signal as signal  # the C module: signal.py imports enum (~5 ms)
    if text is None:
        return signal.SIGTERM
    if text.isdigit():
        num = int(text)
        if 0 < num < signal.NSIG:
            return num
    else:
        name = text.upper()
        if not name.startswith("SIG"):
            name = "SIG" + name
        if name[3:].isalnum() and isinstance(getattr(signal, name, None), int):
            return getattr(signal, name)
        if name.startswith("SIGRTMIN+") or name.startswith("SIGRTMAX-"):
            try:
                off = int(name[9:])
                num = signal.SIGRTMIN + off if "+" in name else signal.SIGRTMAX - off
                if signal.SIGRTMIN <= num <= signal.SIGRTMAX:
                    return num
            except ValueError:
                pass
    raise OcirtError(f"unknown signal {text!r}")


def kill(container: Container, sig, all_processes=False):
    import _signal as signal  # the C module: signal.py imports enum (~5 ms)
    status = container.status()
    if status not in ("created", "running", "paused"):
        raise OcirtError("container not running")
    if all_processes and container.cgroup:
        from ocirt import cgroups
        manager = cgroups.manager_from_dict(container.cgroup)
        manager.kill_all(sig)
        if status == "paused" and sig == signal.SIGKILL:
            manager.thaw()
        return
    try:
        pidfd = os.pidfd_open(container.pid)
    except ProcessLookupError:
        raise OcirtError("container not running") from None
    try:
        if proc_start_time(container.pid)[0] != container.pid_start:
            raise OcirtError("container not running")
        signal.pidfd_send_signal(pidfd, sig)
    except ProcessLookupError:
        raise OcirtError("container not running") from None
    finally:
        os.close(pidfd)


# -- delete --------------------------------------------------------------------

def delete(store: StateStore, container: Container, force=False):
    import _signal as signal  # the C module: signal.py imports enum (~5 ms)
    if container.creating:
        if not force:
            raise OcirtError(f"cannot delete container {container.id} that is not stopped: creating")
        store.remove(container.id)
        return
    status = container.status()
    if status != "stopped" and not force:
        raise OcirtError(f"cannot delete container {container.id} that is not stopped: {status}")
    if status != "stopped":
        # With a private pid namespace, killing its init kills every process
        # in it; cgroup-wide kills take the cgroup threadgroup lock (an RCU
        # grace period), so they are kept for shared pid namespaces and
        # frozen containers.
        if container.cgroup and (status == "paused" or not _owns_pid_namespace(container)):
            from ocirt import cgroups
            manager = cgroups.manager_from_dict(container.cgroup)
            try:
                manager.kill_all(signal.SIGKILL)
                if status == "paused":
                    manager.thaw()
            except OSError:
                pass
        _kill_and_wait(container.pid, container.pid_start)
    destroy(store, container)


def _owns_pid_namespace(container):
    try:
        namespaces = (container.load_config().get("linux") or {}).get("namespaces") or []
    except (OSError, ValueError):
        return False
    return any(ns.get("type") == "pid" and not ns.get("path") for ns in namespaces)


def destroy(store: StateStore, container: Container):
    """Undo everything create made, then the poststop hooks (warnings only)."""
    try:
        config = container.load_config()
    except (OSError, ValueError):
        config = {}
    _release_host_mount(container)
    if container.cgroup:
        from ocirt import cgroups
        try:
            cgroups.manager_from_dict(container.cgroup).destroy()
        except OSError as e:
            log.warning(f"cannot remove the cgroup of {container.id}: {e}")
    if (config.get("hooks") or {}).get("poststop"):
        from ocirt.hooks import run_hooks
        run_hooks(config["hooks"], "poststop", container.oci_state("stopped"), fatal=False)
    store.remove(container.id)
