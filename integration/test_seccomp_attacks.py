"""Attempts to get around an ocirt seccomp filter, and seccomp through `ocirt run`.

The first tests compile and load the filter exactly as the init does it
(compile, fork, load, execve) and the attacker is a real executable: a static
C program built here with gcc, or busybox.  The last ones run busybox
containers through the ocirt CLI: the runtime-tools ``linux_seccomp`` case and
a seccomp agent on ``listenerPath`` answering for the container.
"""
import os
import shutil
import subprocess

import pytest

from tests.support import exec_under_seccomp, ocirt_bin

ocirt_bin()     # builds ocirt.linux._libc in place (constants for seccomp) on a clean checkout

DENIED = 18    # EXDEV: what the deny rules below return, distinct from real failures

I386_MKDIR = r"""
/* mkdir(argv[1]) through the i386 syscall ABI (int $0x80) from a 64-bit
   process: the classic way around a filter that only knows x86_64. */
#include <stdio.h>
#include <string.h>
#include <asm/unistd_32.h>
static char path[4096];     /* static and non-PIE: below 4 GiB, reachable by the 32-bit ABI */
int main(int argc, char **argv)
{
    long ret;
    strncpy(path, argv[1], sizeof(path) - 1);
    __asm__ volatile ("int $0x80" : "=a"(ret) : "a"(__NR_mkdir), "b"(path), "c"(0755) : "memory");
    printf("%ld\n", ret);
    return 0;
}
"""


@pytest.fixture(scope="module")
def i386_mkdir(tmp_path_factory):
    if os.uname().machine != "x86_64":
        pytest.skip("the i386 ABI bypass exists only on x86_64 hosts")
    if not shutil.which("gcc"):
        pytest.skip("gcc is needed to build the attacker program")
    d = tmp_path_factory.mktemp("i386")
    src, exe = d / "i386_mkdir.c", d / "i386_mkdir"
    src.write_text(I386_MKDIR)
    subprocess.run(["gcc", "-O", "-static", "-no-pie", "-o", str(exe), str(src)], check=True, capture_output=True)
    probe = d / "probe"
    res = subprocess.run([str(exe), str(probe)], capture_output=True, text=True)
    if res.stdout.strip() != "0" or not probe.is_dir():
        pytest.skip(f"this kernel does not run i386 syscalls (IA32 emulation off): {res.stdout.strip()}")
    return str(exe)


def deny_mkdir(architectures):
    return {"defaultAction": "SCMP_ACT_ALLOW", "architectures": architectures,
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": DENIED}]}


def test_i386_abi_is_denied_too_when_listed(i386_mkdir, tmp_path):
    target = tmp_path / "via-int80"
    code, out = exec_under_seccomp(deny_mkdir(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"]), [i386_mkdir, str(target)])
    assert (code, out.strip()) == (0, str(-DENIED))
    assert not target.exists()


def test_i386_abi_is_killed_when_not_listed(i386_mkdir, tmp_path):
    target = tmp_path / "via-int80"
    code, out = exec_under_seccomp(deny_mkdir(["SCMP_ARCH_X86_64"]), [i386_mkdir, str(target)])
    assert code == -31 and not target.exists(), (code, out)   # SIGSYS: bad architecture


def test_filter_is_inherited_by_everything_the_program_starts(tmp_path):
    script = f"mkdir {tmp_path}/a || echo sh-refused; busybox sh -c 'mkdir {tmp_path}/b || echo grandchild-refused'; " \
             "grep Seccomp: /proc/self/status"
    code, out = exec_under_seccomp(deny_mkdir(None), ["/bin/busybox", "sh", "-c", script])
    assert "sh-refused" in out and "grandchild-refused" in out and "Seccomp:\t2" in out, out
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_notify_fd_does_not_reach_the_container_program(tmp_path):
    cfg = {"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": str(tmp_path / "unused.sock"),
           "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]}
    code, out = exec_under_seccomp(cfg, ["/bin/busybox", "sh", "-c", "ls -l /proc/$$/fd/"])
    assert code == 0 and "-> pipe:" in out, out
    assert "seccomp" not in out, out       # the listener fd shows as anon_inode:seccomp notify


# --- through the ocirt CLI -------------------------------------------------------

def _run_container(tmp_path, seccomp_cfg, script, **process):
    from tests.support import make_bundle, run_ocirt

    def mutate(config):
        config["process"].update(terminal=False, **process)
        config["linux"]["seccomp"] = seccomp_cfg
    bundle = make_bundle(str(tmp_path / "bundle"), args=["sh", "-c", script], mutate=mutate)
    root = str(tmp_path / "root")
    try:
        return run_ocirt("run", "--bundle", bundle, "seccomp-" + tmp_path.name[-20:], root=root, timeout=60)
    finally:
        run_ocirt("delete", "-f", "seccomp-" + tmp_path.name[-20:], root=root)


def test_runtime_tools_linux_seccomp_case_through_ocirt(tmp_path):
    # runtime-tools' generator: allow by default, getcwd -> ERRNO, three ABIs,
    # noNewPrivileges false and no CAP_SYS_ADMIN, so the filter must be loaded
    # before the capabilities are dropped and nothing may call getcwd after.
    cfg = {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
           "syscalls": [{"names": ["getcwd"], "action": "SCMP_ACT_ERRNO"}]}
    res = _run_container(tmp_path, cfg, "busybox pwd -P; echo pwd=$?; grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status",
                         noNewPrivileges=False)
    assert res.returncode == 0, res.stderr
    assert "pwd=1" in res.stdout and "Operation not permitted" in res.stderr, (res.stdout, res.stderr)
    assert "NoNewPrivs:\t0" in res.stdout and "Seccomp:\t2" in res.stdout, res.stdout


def _agent(listener, result, errno_ret):
    """A minimal seccomp agent: take the state and fd, deny one syscall."""
    import fcntl
    import json
    import socket
    from ocirt.linux._libc import ffi, lib as C
    conn, _ = listener.accept()
    with conn:
        msg, fds, _, _ = socket.recv_fds(conn, 65536, 4)
    result["state"] = json.loads(msg)
    req = bytearray(ffi.sizeof("struct seccomp_notif"))
    fcntl.ioctl(fds[0], C.SECCOMP_IOCTL_NOTIF_RECV, req, True)
    notif = ffi.from_buffer("struct seccomp_notif *", req)
    result["notified_pid"] = notif.pid
    resp = ffi.new("struct seccomp_notif_resp *", {"id": notif.id, "val": 0, "error": -errno_ret, "flags": 0})
    fcntl.ioctl(fds[0], C.SECCOMP_IOCTL_NOTIF_SEND, ffi.buffer(resp), True)
    os.close(fds[0])


def _notify_through_ocirt(tmp_path, script="mkdir /tmp/by-agent; echo mkdir=$?"):
    import socket
    import threading
    sock_path = str(tmp_path / "agent.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(sock_path)
    listener.listen(1)
    result = {}
    agent = threading.Thread(target=_agent, args=(listener, result, DENIED), daemon=True)
    agent.start()
    cfg = {"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": sock_path, "listenerMetadata": "from-config",
           "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]}
    try:
        res = _run_container(tmp_path, cfg, script)
    finally:
        listener.close()
    agent.join(10)
    return res, result


def test_notify_agent_on_listener_path_answers_for_the_container(tmp_path):
    res, result = _notify_through_ocirt(tmp_path)
    assert res.returncode == 0, res.stderr
    assert "mkdir=1" in res.stdout and "Invalid cross-device link" in res.stderr, (res.stdout, res.stderr)
    state = result["state"]
    assert state["fds"] == ["seccompFd"] and state["metadata"] == "from-config"
    assert state["state"]["id"].startswith("seccomp-") and os.path.isabs(state["state"]["bundle"])


def test_listener_state_pid_is_the_container_process(tmp_path):
    # exec: the container process itself (not a child of sh) makes the call
    res, result = _notify_through_ocirt(tmp_path, script="exec mkdir /tmp/by-agent")
    assert result["state"]["pid"] == result["state"]["state"]["pid"] == result["notified_pid"] > 0


UNISTD_64 = "/usr/include/x86_64-linux-gnu/asm/unistd_64.h"
# What a docker-era allowlist (runtime-tools' generator, podman's older
# profiles) does not know about, plus what containers are usually denied.
NOT_IN_OLD_ALLOWLISTS = {"close_range", "clone3", "openat2", "faccessat2", "epoll_pwait2", "pidfd_open",
                         "pidfd_getfd", "pidfd_send_signal", "mount", "umount2", "unshare", "setns", "pivot_root",
                         "mount_setattr", "open_tree", "move_mount", "fsopen", "fsmount", "fsconfig", "fspick",
                         "bpf", "perf_event_open", "kexec_load", "kexec_file_load", "reboot", "chroot", "clone"}


def test_deny_by_default_allowlist_without_new_privileges_runs(tmp_path):
    if not os.path.exists(UNISTD_64):
        pytest.skip(f"{UNISTD_64} (linux-libc-dev) lists the syscall names this profile allows")
    with open(UNISTD_64) as f:
        names = [line.split()[1][len("__NR_"):] for line in f if line.startswith("#define __NR_")]
    from ocirt.linux._libc import lib as C
    clone_namespaces = (C.CLONE_NEWNS | C.CLONE_NEWCGROUP | C.CLONE_NEWUTS | C.CLONE_NEWIPC | C.CLONE_NEWUSER
                        | C.CLONE_NEWPID | C.CLONE_NEWNET)    # clone only without them
    cfg = {"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
           "syscalls": [{"names": [n for n in names if n not in NOT_IN_OLD_ALLOWLISTS], "action": "SCMP_ACT_ALLOW"},
                        {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
                         "args": [{"index": 0, "value": clone_namespaces, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]}]}
    res = _run_container(tmp_path, cfg, "echo hello; busybox unshare -n true || echo unshare-refused",
                         noNewPrivileges=False)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["hello", "unshare-refused"], res.stdout


def test_ocirt_features_reports_seccomp(tmp_path):
    import json
    from tests.support import run_ocirt
    res = run_ocirt("features", root=str(tmp_path / "root"), check=True)
    doc = json.loads(res.stdout)["linux"]["seccomp"]
    assert doc["enabled"] is True and "SCMP_ACT_NOTIFY" in doc["actions"] and "SCMP_CMP_MASKED_EQ" in doc["operators"]
    assert "SCMP_ARCH_X86_64" in doc["archs"] or os.uname().machine != "x86_64"
    assert set(doc["supportedFlags"]) <= set(doc["knownFlags"]) and "SECCOMP_FILTER_FLAG_TSYNC" in doc["supportedFlags"]
