"""Build glue that setup.cfg cannot express.

* ``cffi_modules`` compiles the libc binding (API mode, constants from the
  system headers) and ocirt-mkcw's two OpenSSL loops (``ocirt.mkcw._crypto``)
  once at install time instead of at every start.
* ``build_scripts`` is overridden so the installed launchers start the real
  interpreter with ``-IS``: no shell shim (pyenv), no ``site`` scan of .pth
  files.  pip only rewrites shebangs that begin with ``#!python`` and drops
  their flags, so we write the final line ourselves.
"""
import os
import sys

from setuptools import setup
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
            with open(target, "wb") as dst:
                dst.write(b"#!" + os.fsencode(sys.executable) + b" -IS\n" + body)
            os.chmod(target, 0o755)
            outfiles.append(target)
        return outfiles, outfiles


setup(
    cffi_modules=["ocirt/linux/_libc_build.py:ffibuilder", "ocirt/mkcw/_crypto_build.py:ffibuilder"],
    cmdclass={"build_scripts": BuildFastLaunchers},
)
