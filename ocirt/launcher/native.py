"""Compile the native ``ocirt`` launcher (launcher.c) for this interpreter.

Used by setup.py when it installs the scripts and by the test suite for the
in-tree build.  Links libpython statically and as a non-PIE executable when
the interpreter ships ``libpython3.X.a`` (pyenv, Debian's libpython3.X-dev),
otherwise against the shared libpython.  Returns False, leaving nothing
behind, when no compiler or no Python headers are available: the caller then
installs the ``#!python -IS`` script instead.
"""
import os
import shlex
import subprocess
import sys
import sysconfig

SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "launcher.c")


def interpreter_search_path():
    """The stdlib directories of ``python -I -S`` plus the install's site-packages."""
    out = subprocess.run([sys.executable, "-I", "-S", "-c", "import sys; print('\\n'.join(sys.path))"],
                         check=True, capture_output=True, text=True).stdout.split("\n")
    paths = [p for p in out if p and os.path.isdir(p)]
    for key in ("purelib", "platlib"):
        path = sysconfig.get_path(key)
        if path not in paths:
            paths.append(path)
    return paths


def _c_string(text):
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def link_arguments():
    var = sysconfig.get_config_var
    static = os.path.join(var("LIBPL") or "", var("LIBRARY") or "")
    extra = shlex.split(var("LIBS") or "") + shlex.split(var("SYSLIBS") or "") + shlex.split(var("LINKFORSHARED") or "")
    if os.path.isfile(static):
        return ["-no-pie", static] + extra
    libdir = var("LIBDIR")
    return [f"-L{libdir}", f"-Wl,-rpath,{libdir}", f"-lpython{var('LDVERSION')}"] + extra


def build(output, main_module="ocirt.cli", first_paths=()):
    """Write the launcher for ``main_module`` to ``output``; True on success."""
    if any(":" in p for p in first_paths):
        return False
    search = list(first_paths) + [p for p in interpreter_search_path() if p not in first_paths]
    defines = {
        "OCIRT_MAIN_MODULE": main_module,
        "OCIRT_PYTHON_EXECUTABLE": os.path.realpath(sys.executable),
        "OCIRT_PYTHON_HOME": sys.prefix,
        "OCIRT_SEARCH_PATH": ":".join(search),
    }
    cc = shlex.split(sysconfig.get_config_var("CC") or "cc")
    tmp = f"{output}.tmp{os.getpid()}"
    argv = cc + ["-O2", "-s", "-o", tmp, f"-I{sysconfig.get_paths()['include']}",
                 *[f"-D{k}={_c_string(v)}" for k, v in defines.items()], SOURCE] + link_arguments()
    try:
        done = subprocess.run(argv, capture_output=True, text=True)
    except OSError:
        return False
    if done.returncode != 0:
        if os.path.exists(tmp):
            os.unlink(tmp)
        sys.stderr.write(f"ocirt: native launcher not built, using the script launcher:\n{done.stderr}")
        return False
    os.chmod(tmp, 0o755)
    os.rename(tmp, output)
    return True


if __name__ == "__main__":
    sys.exit(0 if build(*sys.argv[1:2], *sys.argv[2:3]) else 1)
