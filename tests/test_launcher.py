"""The native `ocirt` launcher (ocirt/launcher): built for a probe module, it must behave as `python3 -IS script` would."""
import os
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
