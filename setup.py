"""Build glue that setup.cfg cannot express.

* ``cffi_modules`` compiles the libc binding (API mode, constants from the
  system headers) and ocirt-mkcw's two OpenSSL loops (``ocirt.mkcw._crypto``)
  once at install time instead of at every start.
* ``build_scripts`` is overridden so the installed launchers start the real
  interpreter with ``-IS``: no shell shim (pyenv), no ``site`` scan of .pth
  files.  pip only rewrites shebangs that begin with ``#!python`` and drops
  their flags, so we write the final line ourselves.  ``ocirt`` itself, run
  once per verb, becomes the native launcher of ocirt/launcher/ where a C
  compiler and the Python headers are present (the script otherwise).
"""
import os
import sys

from setuptools import setup


def _load_launcher_builder():
    """ocirt/launcher/native.py, loaded by path: the package is not importable before its cffi modules exist."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        "ocirt_native_launcher", os.path.join(os.path.dirname(os.path.abspath(__file__)), "ocirt", "launcher", "native.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module

try:
    from setuptools.command.build_scripts import build_scripts
except ImportError:  # setuptools < 66
    from distutils.command.build_scripts import build_scripts


class BuildFastLaunchers(build_scripts):
    def copy_scripts(self):
        self.mkpath(self.build_dir)
        outfiles = []
        for script in self.scripts:
            with open(script, "rb") as src:
                first, body = src.readline(), src.read()
            if not first.startswith(b"#!"):
                body, first = first + body, b""
            target = os.path.join(self.build_dir, os.path.basename(script))
            outfiles.append(target)
            if os.path.basename(script) == "ocirt" and _load_launcher_builder().build(target):
                continue
            with open(target, "wb") as dst:
                dst.write(b"#!" + os.fsencode(sys.executable) + b" -IS\n" + body)
            os.chmod(target, 0o755)
        return outfiles, outfiles


setup(
    cffi_modules=["ocirt/linux/_libc_build.py:ffibuilder", "ocirt/mkcw/_crypto_build.py:ffibuilder"],
    cmdclass={"build_scripts": BuildFastLaunchers},
)
