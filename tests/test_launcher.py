"""The native `ocirt` launcher (ocirt/launcher): built for a probe module, it must behave as `python3 -IS script` would."""
import os
import re
import subprocess
import sys
import textwrap

import pytest

from ocirt.launcher import native

PROBE = textwrap.dedent('''
    import gc, os, sys
    def main():
        mode = sys.argv[1]
        if mode == "facts":
            print(sys.executable, sys.flags.isolated, sys.flags.no_site, sys.flags.utf8_mode, gc.isenabled(),
                  "|".join(sys.argv), sep="\\n", end="")   # no newline: the launcher must flush it
            return 0
        if mode == "code":
            return int(sys.argv[2])
        if mode == "none":
            return None
        if mode == "text":
            return "fatal: text"
        if mode == "exit":
            sys.exit(int(sys.argv[2]))
        if mode == "raise":
            raise RuntimeError("probe failure")
        if sys.argv[-1] == "warmup-probe":
            pid = getattr(sys, "_ocirt_cgroup_warmup", None)
            if pid is None:
                print("none")
                return 0
            with open(f"/proc/{pid}/stat") as f:
                parent = int(f.read().rsplit(")", 1)[1].split()[1])
            same = open(f"/proc/{pid}/cgroup").read() == open("/proc/self/cgroup").read()
            fds = os.listdir(f"/proc/{pid}/fd")
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            print(parent == os.getpid(), same, len(fds))
            return 0
        if mode == "stdout-closed":
            sys.stdout.write("x" * 10)  # buffered: fails only at the final flush
            return 0
''')


@pytest.fixture(scope="module")
def probe(tmp_path_factory):
    work = tmp_path_factory.mktemp("launcher")
    (work / "launcher_probe.py").write_text(PROBE)
    exe = str(work / "probe")
    if not native.build(exe, main_module="launcher_probe", first_paths=(str(work),)):
        pytest.skip("no C compiler or Python headers: the script launcher is installed instead")
    return exe


def run(probe, *args, **kw):
    return subprocess.run([probe, *args], capture_output=True, text=True, **kw)


def test_is_an_elf_executable_not_a_script(probe):
    with open(probe, "rb") as f:
        assert f.read(4) == b"\x7fELF"


def test_interpreter_settings(probe):
    out = run(probe, "facts", "--flag=x").stdout.split("\n")
    assert out[0] == os.path.realpath(sys.executable)  # helpers that spawn sys.executable get Python
    assert out[1:5] == ["1", "1", "1", "False"]          # -I, -S, UTF-8 mode, no cyclic GC
    assert out[5] == f"{probe}|facts|--flag=x"           # argv untouched (Go-style flags reach main)


@pytest.mark.parametrize("args,code", [(("code", "0"), 0), (("code", "3"), 3), (("none",), 0),
                                       (("exit", "5"), 5), (("text",), 1), (("raise",), 1)])
def test_exit_codes_follow_sys_exit(probe, args, code):
    done = run(probe, *args)
    assert done.returncode == code
    if args[0] == "text":
        assert done.stderr == "fatal: text\n"
    if args[0] == "raise":
        assert "RuntimeError: probe failure" in done.stderr


def test_unflushable_stdout_is_an_error(probe):
    r, w = os.pipe()
    os.close(r)
    done = subprocess.run([probe, "stdout-closed"], stdout=w, stderr=subprocess.PIPE)
    os.close(w)
    assert done.returncode == 120


def test_ocirt_binary_of_the_test_suite_is_native():
    from tests.support import ocirt_bin
    if os.environ.get("OCIRT_BIN"):
        pytest.skip("OCIRT_BIN names another runtime binary")
    with open(ocirt_bin(), "rb") as f:
        assert f.read(4) == b"\x7fELF"


@pytest.mark.parametrize("argv,started", [
    (["create", "--bundle", "b"], True), (["--root", "/r", "run", "x"], True), (["--debug", "exec", "x"], True),
    (["--log=/l", "--log-format", "json", "create"], True), (["state", "x"], False), (["--root", "create", "state"], False),
    (["--", "run"], True), ([], False)])
def test_cgroup_warmup_started_before_python_for_migrating_verbs(probe, argv, started):
    """create/run/exec get MigrationWarmup's child from C before the
    interpreter starts: our child, in our cgroup, holding one fd (its
    cgroup.procs), handed over as sys._ocirt_cgroup_warmup."""
    out = run(probe, *argv, "warmup-probe").stdout.split()
    assert out == (["True", "True", "1"] if started else ["none"])


def test_launcher_knows_the_boolean_global_flags():
    """launcher.c skips the value of every global flag but the boolean ones
    when it looks for the verb: its list must be GLOBAL_FLAGS' booleans."""
    from ocirt.cli import GLOBAL_FLAGS
    with open(native.SOURCE) as f:
        listed = re.search(r"bool_global_flags\[\] = \{(.*?)NULL\}", f.read()).group(1)
    in_c = set(re.findall(r'"([^"]+)"', listed))
    in_python = {n for f in GLOBAL_FLAGS if f.kind is bool for n in (f.name, f.alias) if n}
    assert in_c == in_python
