"""linux.seccomp: filters compiled by ocirt, loaded in a forked child, and the
syscalls that child makes afterwards.

Each test compiles in the parent (as the runtime side does), forks, loads the
filter in the child and reports what the kernel did: errnos, death by
SIGSYS, a notification answered by a listener over listenerPath.
"""
import errno
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading

import pytest

from tests.support import REPO, exec_under_seccomp, ocirt_bin

ocirt_bin()     # builds ocirt.linux._libc in place (constants for seccomp) on a clean checkout

from ocirt.errors import ConfigError, OcirtError  # noqa: E402
from ocirt.linux import seccomp  # noqa: E402
from ocirt.linux._libc import ffi, lib as C  # noqa: E402

ALLOW = "SCMP_ACT_ALLOW"
ERRNO = "SCMP_ACT_ERRNO"
DENIED = errno.EXDEV          # an errnoRet no syscall below returns on its own


def in_child(cfg, body, *, flt=None, nnp=False, before_load=None, pass_fd=False):
    """Load the filter for ``cfg`` in a forked child, run ``body()`` there.

    Returns (wait status, text body returned).  ``body`` runs under the filter,
    so it only uses what is already imported; with ``pass_fd`` it gets the
    notify fd ``load`` returned.
    """
    flt = flt or seccomp.compile(cfg)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            os.close(r)
            if before_load:
                before_load()
            if nnp:
                C.prctl(C.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
            notify_fd = seccomp.load(flt)
            out = str(body(notify_fd) if pass_fd else body())
        except BaseException as e:          # reported to the parent, never raised
            out, code = f"{type(e).__name__}: {e}", 3
        try:
            os.write(w, out.encode())
        finally:
            os._exit(code)
    os.close(w)
    chunks = []
    while True:
        chunk = os.read(r, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(r)
    _, status = os.waitpid(pid, 0)
    return status, b"".join(chunks).decode()


def errno_of(fn, *args):
    try:
        fn(*args)
    except OSError as e:
        return e.errno
    return 0


def expect_exit(result, out=None):
    status, text = result
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, (status, text)
    if out is not None:
        assert text == out
    return text


def killed_by(result):
    status, text = result
    assert os.WIFSIGNALED(status), (status, text)
    return os.WTERMSIG(status)


def personality(persona):
    """personality(2) straight through libc: (return value, errno)."""
    ffi.errno = 0
    ret = C.personality(persona)
    return ret, (ffi.errno if ret == -1 else 0)


@pytest.fixture
def tmp(tmp_path):
    return str(tmp_path)


# --- actions -------------------------------------------------------------------

def test_errno_uses_errnoRet(tmp):
    cfg = {"defaultAction": ALLOW, "syscalls": [{"names": ["mkdir", "mkdirat"], "action": ERRNO, "errnoRet": DENIED}]}
    target = os.path.join(tmp, "d")
    expect_exit(in_child(cfg, lambda: errno_of(os.mkdir, target)), str(DENIED))
    assert not os.path.exists(target)


def test_errno_defaults_to_eperm(tmp):
    cfg = {"defaultAction": ALLOW, "syscalls": [{"names": ["mkdir", "mkdirat"], "action": ERRNO}]}
    expect_exit(in_child(cfg, lambda: errno_of(os.mkdir, os.path.join(tmp, "d"))), str(errno.EPERM))


def test_default_errno_ret_applies_to_everything_not_allowed(tmp):
    # Only what the child needs to report back (and the allocator) is allowed.
    allowed = ["write", "exit_group", "exit", "brk", "mmap", "munmap", "mremap", "madvise", "mprotect",
               "rt_sigprocmask", "rt_sigaction", "futex", "getpid"]
    cfg = {"defaultAction": ERRNO, "defaultErrnoRet": errno.ENOSYS,
           "syscalls": [{"names": allowed, "action": ALLOW}]}
    out = expect_exit(in_child(cfg, lambda: (errno_of(os.mkdir, os.path.join(tmp, "d")),
                                             errno_of(os.open, "/etc/hostname", os.O_RDONLY), os.getpid() > 0)))
    assert out == f"({errno.ENOSYS}, {errno.ENOSYS}, True)"


@pytest.mark.parametrize("action", ["SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_KILL_PROCESS"])
def test_kill_actions_end_the_process_with_sigsys(action):
    cfg = {"defaultAction": ALLOW, "syscalls": [{"names": ["getcwd"], "action": action}]}
    assert killed_by(in_child(cfg, os.getcwd)) == signal.SIGSYS


def test_kill_process_takes_every_thread():
    # KILL_THREAD would leave the other thread alive; KILL_PROCESS must not.
    def body():
        threading.Thread(target=os.getcwd).start()
        threading.Event().wait(5)
        return "survived"
    cfg = {"defaultAction": ALLOW, "syscalls": [{"names": ["getcwd"], "action": "SCMP_ACT_KILL_PROCESS"}]}
    assert killed_by(in_child(cfg, body)) == signal.SIGSYS


def test_default_action_kill_stops_at_the_first_syscall():
    cfg = {"defaultAction": "SCMP_ACT_KILL_PROCESS"}
    assert killed_by(in_child(cfg, lambda: "never written")) == signal.SIGSYS


def test_trap_delivers_a_catchable_sigsys():
    def body():
        caught = []
        signal.signal(signal.SIGSYS, lambda *a: caught.append(1))
        errno_of(os.getcwd)
        return f"caught={len(caught)}"
    cfg = {"defaultAction": ALLOW, "syscalls": [{"names": ["getcwd"], "action": "SCMP_ACT_TRAP"}]}
    expect_exit(in_child(cfg, body), "caught=1")


def test_trace_without_a_tracer_fails_the_syscall_with_enosys():
    cfg = {"defaultAction": ALLOW, "syscalls": [{"names": ["getcwd"], "action": "SCMP_ACT_TRACE"}]}
    expect_exit(in_child(cfg, lambda: errno_of(os.getcwd)), str(errno.ENOSYS))


def test_log_allows_the_syscall(tmp):
    target = os.path.join(tmp, "logged")
    cfg = {"defaultAction": ALLOW, "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_LOG"}]}
    expect_exit(in_child(cfg, lambda: errno_of(os.mkdir, target)), "0")
    assert os.path.isdir(target)
    cfg = {"defaultAction": "SCMP_ACT_LOG", "syscalls": [{"names": ["getcwd"], "action": ERRNO}]}
    expect_exit(in_child(cfg, lambda: (errno_of(os.rmdir, target), errno_of(os.getcwd))), f"(0, {errno.EPERM})")


def test_rule_with_the_default_action_is_dropped_not_an_error():
    cfg = {"defaultAction": ERRNO, "defaultErrnoRet": DENIED,
           "syscalls": [{"names": ["getcwd"], "action": ERRNO, "errnoRet": DENIED},
                        {"names": ["write", "exit_group", "brk", "mmap", "munmap", "rt_sigprocmask"], "action": ALLOW}]}
    expect_exit(in_child(cfg, lambda: errno_of(os.getcwd)), str(DENIED))


def test_unknown_syscall_names_are_skipped():
    cfg = {"defaultAction": ALLOW,
           "syscalls": [{"names": ["no_such_syscall_at_all", "getcwd"], "action": ERRNO, "errnoRet": DENIED}]}
    expect_exit(in_child(cfg, lambda: errno_of(os.getcwd)), str(DENIED))


# --- argument filters -----------------------------------------------------------

CLOSE_FDS = (1000, 1001, 1002)      # never open: an allowed close() gives EBADF


@pytest.mark.parametrize("op,value,denied", [
    ("SCMP_CMP_EQ", 1001, {1001}),
    ("SCMP_CMP_NE", 1001, {1000, 1002}),
    ("SCMP_CMP_LT", 1001, {1000}),
    ("SCMP_CMP_LE", 1001, {1000, 1001}),
    ("SCMP_CMP_GT", 1001, {1002}),
    ("SCMP_CMP_GE", 1001, {1001, 1002}),
])
def test_comparison_operators(op, value, denied):
    cfg = {"defaultAction": ALLOW, "syscalls": [{"names": ["close"], "action": ERRNO, "errnoRet": DENIED,
                                                 "args": [{"index": 0, "value": value, "op": op}]}]}
    out = expect_exit(in_child(cfg, lambda: [errno_of(os.close, fd) for fd in CLOSE_FDS]))
    assert out == str([DENIED if fd in denied else errno.EBADF for fd in CLOSE_FDS])


def test_masked_eq_refuses_setuid_bit_only(tmp):
    path = os.path.join(tmp, "f")
    open(path, "w").close()
    cfg = {"defaultAction": ALLOW, "syscalls": [{"names": ["fchmod"], "action": ERRNO, "errnoRet": DENIED,
                                                 "args": [{"index": 1, "value": 0o4000, "valueTwo": 0o4000,
                                                           "op": "SCMP_CMP_MASKED_EQ"}]}]}

    def body():
        fd = os.open(path, os.O_RDONLY)
        return errno_of(os.fchmod, fd, 0o4755), errno_of(os.fchmod, fd, 0o750)
    expect_exit(in_child(cfg, body), f"({DENIED}, 0)")
    assert os.stat(path).st_mode & 0o7777 == 0o750


def test_personality_equal_value_denied_others_allowed():
    cfg = {"defaultAction": ALLOW, "syscalls": [{"names": ["personality"], "action": ERRNO, "errnoRet": DENIED,
                                                 "args": [{"index": 0, "value": C.PER_LINUX32, "op": "SCMP_CMP_EQ"}]}]}
    out = expect_exit(in_child(cfg, lambda: (personality(C.PER_LINUX32)[1], personality(0xFFFFFFFF)[1])))
    assert out == f"({DENIED}, 0)"


def test_conditions_on_different_arguments_must_all_match():
    def body():
        me = os.getpid()
        return (errno_of(os.kill, me, 0), errno_of(os.kill, me, signal.SIGCONT), errno_of(os.kill, os.getppid(), 0))
    cfg = {"defaultAction": ALLOW, "syscalls": [{"names": ["kill"], "action": ERRNO, "errnoRet": DENIED, "args": [
        {"index": 1, "value": 0, "op": "SCMP_CMP_EQ"},
        {"index": 0, "value": 1, "op": "SCMP_CMP_GT"}]}]}
    # kill(me, 0) and kill(parent, 0) both match; kill(me, SIGCONT) does not.
    expect_exit(in_child(cfg, body), f"({DENIED}, 0, {DENIED})")


def test_several_conditions_on_one_argument_become_separate_rules():
    # runc's behaviour: libseccomp refuses them in one rule, each one denies.
    cfg = {"defaultAction": ALLOW, "syscalls": [{"names": ["close"], "action": ERRNO, "errnoRet": DENIED, "args": [
        {"index": 0, "value": 1000, "op": "SCMP_CMP_EQ"},
        {"index": 0, "value": 1002, "op": "SCMP_CMP_EQ"}]}]}
    out = expect_exit(in_child(cfg, lambda: [errno_of(os.close, fd) for fd in CLOSE_FDS]))
    assert out == str([DENIED, errno.EBADF, DENIED])


# --- architectures and flags -----------------------------------------------------

def _x32_getpid():
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    # Test-only numbers, x86_64 only: __X32_SYSCALL_BIT (asm/unistd.h) and
    # __NR_getpid (asm/unistd_64.h; x32 shares it).
    return libc.syscall(0x40000000 | 39)

needs_x86_64 = pytest.mark.skipif(os.uname().machine != "x86_64", reason="x32 syscalls exist only on x86_64")


@needs_x86_64
def test_architectures_decide_which_abis_get_through():
    import ctypes  # noqa: F401  (imported before the filter is loaded)
    native_only = {"defaultAction": ALLOW, "architectures": ["SCMP_ARCH_X86_64"]}
    with_x32 = {"defaultAction": ALLOW, "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X32"]}
    # An ABI missing from the filter is a "bad arch": the process is killed.
    assert killed_by(in_child(native_only, _x32_getpid)) == signal.SIGSYS
    status, out = in_child(with_x32, _x32_getpid)
    assert os.WIFEXITED(status), out    # allowed through (ENOSYS if the kernel lacks x32)


def test_profile_for_three_abis_compiles_and_filters_native():
    # The generator runtime-tools uses lists x86_64, x86 and x32 and names
    # that exist only on some of them (chown32, socketcall).
    cfg = {"defaultAction": ALLOW, "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
           "syscalls": [{"names": ["chown32", "socketcall", "getcwd"], "action": ERRNO, "errnoRet": DENIED}]}
    expect_exit(in_child(cfg, lambda: errno_of(os.getcwd)), str(DENIED))


def _seccomp_mode_of(tid):
    with open(f"/proc/self/task/{tid}/status") as f:
        return next(line.split()[1] for line in f if line.startswith("Seccomp:"))


@pytest.mark.parametrize("flags,other_thread_mode", [([], "0"), (["SECCOMP_FILTER_FLAG_TSYNC"], "2")])
def test_tsync_puts_every_thread_under_the_filter(flags, other_thread_mode):
    started, done, tids = threading.Event(), threading.Event(), []

    def spawn():
        def worker():
            tids.append(threading.get_native_id())
            started.set()
            done.wait(10)
        threading.Thread(target=worker, daemon=True).start()
        started.wait(10)

    def body():
        try:
            return _seccomp_mode_of(tids[0])
        finally:
            done.set()
    cfg = {"defaultAction": ALLOW, "flags": flags}
    expect_exit(in_child(cfg, body, before_load=spawn), other_thread_mode)


def test_log_and_spec_allow_flags_load():
    def body():
        with open("/proc/self/status") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("Speculation_Store_Bypass"))
    plain = expect_exit(in_child({"defaultAction": ALLOW}, body))
    spec_allow = expect_exit(in_child({"defaultAction": ALLOW, "flags": ["SECCOMP_FILTER_FLAG_SPEC_ALLOW",
                                                                          "SECCOMP_FILTER_FLAG_LOG"]}, body))
    # SPEC_ALLOW keeps the kernel from forcing the SSB mitigation a filter
    # otherwise brings (where the CPU is affected and the policy is "seccomp").
    assert "force" not in spec_allow
    if "force" in plain:
        assert spec_allow != plain


def waitkill_supported():
    """libseccomp >= 2.6.0 both at build time (header) and at run time."""
    running = tuple(int(part) for part in seccomp.library_version().split("."))
    return running >= (2, 6, 0) and C.OCIRT_SCMP_FLTATR_CTL_WAITKILL >= 0


def test_wait_killable_recv_is_refused_clearly_by_old_libseccomp():
    cfg = {"defaultAction": ALLOW, "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]}
    if waitkill_supported():
        expect_exit(in_child(cfg, lambda: "ok"), "ok")
        return
    with pytest.raises(OcirtError, match=r"linux\.seccomp\.flags\[0\]: SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV "
                                         r"needs libseccomp >= 2\.6\.0"):
        seccomp.compile(cfg)


# --- no_new_privs and capabilities ---------------------------------------------

def _nnp_now():
    with open("/proc/self/status") as f:
        return next(line.split()[1] for line in f if line.startswith("NoNewPrivs:"))


def test_load_does_not_set_no_new_privs():
    expect_exit(in_child({"defaultAction": ALLOW}, _nnp_now), "0")
    expect_exit(in_child({"defaultAction": ALLOW}, _nnp_now, nnp=True), "1")


def _drop_all_capabilities():
    hdr = ffi.new("cap_user_header *", {"version": C._LINUX_CAPABILITY_VERSION_3, "pid": 0})
    data = ffi.new("cap_user_data[2]")
    assert C.ocirt_capset(hdr, data) == 0


def test_without_nnp_and_cap_sys_admin_load_explains_itself():
    status, out = in_child({"defaultAction": ALLOW}, lambda: "loaded", before_load=_drop_all_capabilities)
    assert os.WEXITSTATUS(status) == 3
    assert out.startswith("OcirtError: seccomp: the kernel refused the filter: without noNewPrivileges")
    # The same process with no_new_privs set loads fine without any capability.
    expect_exit(in_child({"defaultAction": ALLOW}, lambda: "loaded", nnp=True,
                         before_load=_drop_all_capabilities), "loaded")


def test_load_before_capabilities_decision():
    assert seccomp.load_before_capabilities({"noNewPrivileges": False,
                                             "capabilities": {"effective": ["CAP_KILL"]}})
    assert seccomp.load_before_capabilities({})
    assert not seccomp.load_before_capabilities({"noNewPrivileges": True})
    assert not seccomp.load_before_capabilities({"capabilities": {"effective": ["CAP_SYS_ADMIN"]}})


# --- SCMP_ACT_NOTIFY and listenerPath ----------------------------------------------

def _recv_notification(fd):
    req = bytearray(ffi.sizeof("struct seccomp_notif"))
    fcntl.ioctl(fd, C.SECCOMP_IOCTL_NOTIF_RECV, req, True)
    notif = ffi.from_buffer("struct seccomp_notif *", req)
    return notif.id, notif.pid, notif.data.nr


def _respond(fd, notif_id, error=0, flags=0):
    resp = ffi.new("struct seccomp_notif_resp *", {"id": notif_id, "val": 0, "error": error, "flags": flags})
    fcntl.ioctl(fd, C.SECCOMP_IOCTL_NOTIF_SEND, ffi.buffer(resp), True)


def _notify_round_trip(tmp, answer, flags=()):
    """A listener on listenerPath gets the state and the fd, then answers one mkdir."""
    sock_path = os.path.join(tmp, "agent.sock")
    target = os.path.join(tmp, "made-by-child")
    cfg = {"defaultAction": ALLOW, "listenerPath": sock_path, "listenerMetadata": "agent-args", "flags": list(flags),
           "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]}
    flt = seccomp.compile(cfg)
    assert flt.uses_notify and flt.listener_path == sock_path and flt.listener_metadata == "agent-args"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(sock_path)
    listener.listen(1)
    result = {}

    def child(fd):
        state = {"ociVersion": "1.2.0", "id": "ctr", "status": "creating", "pid": os.getpid(), "bundle": "/b"}
        seccomp.send_listener(flt.listener_path, state, fd, metadata=flt.listener_metadata)
        cloexec = bool(fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC)
        os.close(fd)
        return cloexec, errno_of(os.mkdir, target)

    def agent():
        conn, _ = listener.accept()
        with conn:
            msg, fds, _, _ = socket.recv_fds(conn, 65536, 4)
            while True:
                more = conn.recv(65536)
                if not more:
                    break
                msg += more
        result["state"], result["fds"] = json.loads(msg), fds
        notif_id, pid, nr = _recv_notification(fds[0])
        result["pid"], result["nr"] = pid, nr
        answer(fds[0], notif_id)
        os.close(fds[0])

    t = threading.Thread(target=agent, daemon=True)
    t.start()
    try:
        status, out = in_child(cfg, child, flt=flt, pass_fd=True)
    finally:
        listener.close()
    t.join(10)
    return status, out, result, target


def test_notify_listener_gets_state_and_fd_and_answers_with_an_errno(tmp):
    status, out, result, target = _notify_round_trip(
        tmp, lambda fd, notif_id: _respond(fd, notif_id, error=-DENIED))
    expect_exit((status, out), f"(True, {DENIED})")
    state = result["state"]
    assert state["fds"] == ["seccompFd"] and len(result["fds"]) == 1
    assert state["metadata"] == "agent-args" and state["ociVersion"] == "1.2.0"
    assert state["state"]["status"] == "creating" and state["state"]["id"] == "ctr"
    assert state["pid"] == state["state"]["pid"] == result["pid"]
    resolve = seccomp._binding()[2].seccomp_syscall_resolve_name
    assert result["nr"] in (resolve(b"mkdir"), resolve(b"mkdirat"))
    assert not os.path.exists(target)


def test_notify_listener_can_let_the_syscall_continue(tmp):
    # With TSYNC too: libseccomp must then ask for TSYNC_ESRCH to get a listener.
    status, out, result, target = _notify_round_trip(
        tmp, lambda fd, notif_id: _respond(fd, notif_id, flags=C.SECCOMP_USER_NOTIF_FLAG_CONTINUE),
        flags=["SECCOMP_FILTER_FLAG_TSYNC"])
    expect_exit((status, out), "(True, 0)")
    assert os.path.isdir(target)


def test_send_listener_failure_is_an_error_naming_the_field(tmp):
    r, w = os.pipe()
    try:
        with pytest.raises(OcirtError, match=r"^linux\.seccomp\.listenerPath: sending the seccomp fd to "):
            seccomp.send_listener(os.path.join(tmp, "nobody-listens"), {"pid": 1, "id": "x"}, r)
    finally:
        os.close(r)
        os.close(w)


# --- execve under a filter: what runtime-tools' linux_seccomp checks ----------------


def test_linux_seccomp_case_getcwd_denied_for_the_container_process():
    # defaultAction allow + getcwd errno, as runtime-tools generates it.
    cfg = {"defaultAction": ALLOW, "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
           "syscalls": [{"names": ["getcwd"], "action": ERRNO}]}
    code, out = exec_under_seccomp(cfg, ["/bin/busybox", "pwd", "-P"])
    assert code != 0 and "Operation not permitted" in out, (code, out)


def test_allowlist_profile_runs_a_real_program():
    # A docker-style profile: deny by default, allow what busybox needs,
    # allow clone only without namespace flags, personality only for queries.
    names = ["execve", "brk", "arch_prctl", "set_tid_address", "set_robust_list", "rseq", "prlimit64",
             "mmap", "munmap", "mprotect", "read", "write", "writev", "close", "exit", "exit_group", "getuid",
             "geteuid", "getpid", "getppid", "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "wait4", "ioctl",
             "fstat", "newfstatat", "uname", "getcwd", "openat", "fcntl", "dup2", "getrandom", "futex"]
    clone_ns = (C.CLONE_NEWNS | C.CLONE_NEWUTS | C.CLONE_NEWIPC | C.CLONE_NEWUSER | C.CLONE_NEWPID
                | C.CLONE_NEWNET | C.CLONE_NEWCGROUP)
    cfg = {"defaultAction": ERRNO, "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
           "syscalls": [{"names": names + ["chown32", "fstat64", "_llseek"], "action": ALLOW},
                        {"names": ["clone", "fork", "vfork"], "action": ALLOW,
                         "args": [{"index": 0, "value": clone_ns, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]},
                        {"names": ["personality"], "action": ALLOW,
                         "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]},
                        {"names": ["personality"], "action": ALLOW,
                         "args": [{"index": 0, "value": 0xFFFFFFFF, "op": "SCMP_CMP_EQ"}]},
                        {"names": ["mkdir", "mkdirat"], "action": ERRNO, "errnoRet": DENIED}]}
    code, out = exec_under_seccomp(cfg, ["/bin/busybox", "sh", "-c", "echo hello; mkdir /tmp/x-$$ || echo refused"])
    assert code == 0 and out.splitlines()[0] == "hello" and "refused" in out, (code, out)
    code, out = exec_under_seccomp(cfg, ["/bin/busybox", "unshare", "-n", "true"])
    assert code != 0, out


# --- configuration errors --------------------------------------------------------

def bad(cfg, message):
    with pytest.raises(ConfigError) as exc:
        seccomp.compile(cfg)
    assert str(exc.value) == message


def test_config_errors_name_the_field():
    ok_rule = {"names": ["getcwd"], "action": ERRNO}
    bad([], "linux.seccomp: must be an object")
    bad({}, "linux.seccomp.defaultAction: required")
    bad({"defaultAction": "SCMP_ACT_FOO"}, "linux.seccomp.defaultAction: unknown action SCMP_ACT_FOO")
    bad({"defaultAction": "SCMP_ACT_NOTIFY"},
        "linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default action")
    bad({"defaultAction": "SCMP_ACT_KILL", "defaultErrnoRet": 1},
        "linux.seccomp.defaultErrnoRet: SCMP_ACT_KILL does not take an errno return code")
    bad({"defaultAction": ERRNO, "defaultErrnoRet": -1},
        "linux.seccomp.defaultErrnoRet: must be an integer between 0 and 65535, not -1")
    bad({"defaultAction": ALLOW, "architectures": ["SCMP_ARCH_VAX"]},
        "linux.seccomp.architectures[0]: unknown architecture SCMP_ARCH_VAX")
    bad({"defaultAction": ALLOW, "architectures": "SCMP_ARCH_X86"},
        "linux.seccomp.architectures: must be an array of strings")
    bad({"defaultAction": ALLOW, "flags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_NOPE"]},
        "linux.seccomp.flags[1]: unknown flag SECCOMP_FILTER_FLAG_NOPE")
    bad({"defaultAction": ALLOW, "syscalls": [ok_rule, ok_rule, ok_rule, {"names": ["getcwd"], "action": "SCMP_ACT_FOO"}]},
        "linux.seccomp.syscalls[3].action: unknown action SCMP_ACT_FOO")
    bad({"defaultAction": ALLOW, "syscalls": [{"names": [], "action": ERRNO}]},
        "linux.seccomp.syscalls[0].names: must be a non-empty array of strings")
    bad({"defaultAction": ALLOW, "syscalls": [{"action": ERRNO}]}, "linux.seccomp.syscalls[0].names: required")
    bad({"defaultAction": ALLOW, "syscalls": [{"names": ["getcwd\0x"], "action": ERRNO}]},
        "linux.seccomp.syscalls[0].names[0]: must be a non-empty string without NUL, not 'getcwd\\x00x'")
    bad({"defaultAction": ALLOW, "syscalls": [{"names": ["getcwd"], "action": ALLOW, "errnoRet": 5}]},
        "linux.seccomp.syscalls[0].errnoRet: SCMP_ACT_ALLOW does not take an errno return code")
    bad({"defaultAction": ALLOW, "syscalls": [{"names": ["getcwd"], "action": ERRNO, "errnoRet": True}]},
        "linux.seccomp.syscalls[0].errnoRet: must be an integer between 0 and 65535, not True")
    bad({"defaultAction": ALLOW, "syscalls": [dict(ok_rule, args=[{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}])]},
        "linux.seccomp.syscalls[0].args[0].index: must be an integer between 0 and 5, not 6")
    bad({"defaultAction": ALLOW, "syscalls": [dict(ok_rule, args=[{"index": 0, "value": 1 << 64, "op": "SCMP_CMP_EQ"}])]},
        "linux.seccomp.syscalls[0].args[0].value: must be an integer between 0 and 18446744073709551615, "
        "not 18446744073709551616")
    bad({"defaultAction": ALLOW, "syscalls": [dict(ok_rule, args=[{"index": 0, "value": 1, "op": "SCMP_CMP_XX"}])]},
        "linux.seccomp.syscalls[0].args[0].op: unknown operator SCMP_CMP_XX")
    bad({"defaultAction": ALLOW, "syscalls": [dict(ok_rule, args=[{"index": 0, "op": "SCMP_CMP_EQ"}])]},
        "linux.seccomp.syscalls[0].args[0].value: required")
    bad({"defaultAction": ALLOW, "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]},
        "linux.seccomp.listenerPath: required when a rule uses SCMP_ACT_NOTIFY")
    bad({"defaultAction": ALLOW, "listenerPath": "/run/a.sock",
         "syscalls": [{"names": ["mkdir", "connect"], "action": "SCMP_ACT_NOTIFY"}]},
        "linux.seccomp.syscalls[0].names[1]: SCMP_ACT_NOTIFY cannot be used for connect: "
        "ocirt needs it to hand the notify fd over")
    bad({"defaultAction": ALLOW, "listenerMetadata": "x"},
        "linux.seccomp.listenerMetadata: allowed only together with listenerPath")


# --- process-level properties ------------------------------------------------------

def _python(code, env=None):
    return subprocess.run([sys.executable, "-IS", "-c", f"import sys; sys.path[:0] = [{REPO!r}] + {sys.path!r}\n" + code],
                          capture_output=True, text=True, timeout=60, env=env)


def test_import_and_compile_stay_cheap():
    res = _python("import ocirt.linux.seccomp as s\n"
                  "heavy = ('cffi', 'pycparser', 'json', 'socket', 'ctypes')\n"
                  "print(sorted(m for m in heavy if m in sys.modules))\n"
                  "s.compile({'defaultAction': 'SCMP_ACT_ERRNO', 'syscalls': [{'names': ['read'], 'action': 'SCMP_ACT_ALLOW'}]})\n"
                  "print(sorted(m for m in heavy if m in sys.modules))\n")
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == ["[]", "[]"]


def test_missing_library_is_one_clear_error_and_features_say_disabled():
    res = _python("import ocirt.linux.seccomp as s\n"
                  "s.LIBRARY = 'libseccomp-not-here.so.2'\n"
                  "print(s.features())\n"
                  "try:\n"
                  "    s.compile({'defaultAction': 'SCMP_ACT_ALLOW'})\n"
                  "except s.OcirtError as e:\n"
                  "    print(e)\n")
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == ["{'enabled': False}",
                                       "seccomp requested but libseccomp-not-here.so.2 is not installed"]


def test_library_without_the_entry_points_is_a_clear_error():
    res = _python("import ocirt.linux.seccomp as s\n"
                  "s.LIBRARY = 'libc.so.6'\n"
                  "try:\n"
                  "    s.compile({'defaultAction': 'SCMP_ACT_ALLOW'})\n"
                  "except s.OcirtError as e:\n"
                  "    print(e)\n")
    assert res.stdout.strip() == "seccomp requested but libc.so.6 is too old (no seccomp_version)", res.stderr


def test_features_document():
    f = seccomp.features()
    assert f["enabled"] is True
    assert set(f["actions"]) == set(seccomp.ACTIONS) and set(f["operators"]) == set(seccomp.OPERATORS)
    assert {"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64"} <= set(f["archs"])
    assert "SCMP_ARCH_VAX" not in f["archs"]
    assert f["knownFlags"] == list(seccomp.FLAGS)
    # This kernel (6.x) knows all four; libseccomp decides about WAIT_KILLABLE_RECV.
    assert {"SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"} <= set(f["supportedFlags"])
    assert ("SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV" in f["supportedFlags"]) == waitkill_supported()
    json.dumps(f)
