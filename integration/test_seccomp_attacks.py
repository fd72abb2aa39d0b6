"""Attempts to get around an ocirt seccomp filter from the filtered program.

The filter is compiled and loaded exactly as the init does it (compile, fork,
load, execve) and the attacker is a real executable: a static C program built
here with gcc, or busybox.
"""
import os
import shutil
import subprocess

import pytest

from ocirt.linux import seccomp

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


def run_filtered(cfg, argv):
    """execve ``argv`` under the filter for ``cfg``: (exit code or -signal, output)."""
    flt = seccomp.compile(cfg)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.dup2(w, 1)
            os.dup2(w, 2)
            seccomp.load(flt)
            os.execv(argv[0], argv)
        finally:
            os._exit(127)
    os.close(w)
    with os.fdopen(r) as f:
        out = f.read()
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), out


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
    code, out = run_filtered(deny_mkdir(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"]), [i386_mkdir, str(target)])
    assert (code, out.strip()) == (0, str(-DENIED))
    assert not target.exists()


def test_i386_abi_is_killed_when_not_listed(i386_mkdir, tmp_path):
    target = tmp_path / "via-int80"
    code, out = run_filtered(deny_mkdir(["SCMP_ARCH_X86_64"]), [i386_mkdir, str(target)])
    assert code == -31 and not target.exists(), (code, out)   # SIGSYS: bad architecture


def test_filter_is_inherited_by_everything_the_program_starts(tmp_path):
    script = f"mkdir {tmp_path}/a || echo sh-refused; busybox sh -c 'mkdir {tmp_path}/b || echo grandchild-refused'; " \
             "grep Seccomp: /proc/self/status"
    code, out = run_filtered(deny_mkdir(None), ["/bin/busybox", "sh", "-c", script])
    assert "sh-refused" in out and "grandchild-refused" in out and "Seccomp:\t2" in out, out
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_notify_fd_does_not_reach_the_container_program(tmp_path):
    cfg = {"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": str(tmp_path / "unused.sock"),
           "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]}
    code, out = run_filtered(cfg, ["/bin/busybox", "sh", "-c", "ls -l /proc/$$/fd/"])
    assert code == 0 and "-> pipe:" in out, out
    assert "seccomp" not in out, out       # the listener fd shows as anon_inode:seccomp notify
