#!/bin/sh
# Install ocirt's krun OCI hooks for podman/CRI-O (hooks.d format 1.0.0).
#
#   hooks/install.sh [HOOKS_DIR] [LIBEXEC_DIR] [PYTHON]
#
# HOOKS_DIR   default /usr/share/containers/oci/hooks.d
# LIBEXEC_DIR default /usr/local/libexec/ocirt (where the hook scripts go)
# PYTHON      the interpreter the hook runs under, as an absolute path to the
#             real binary (never a pyenv/asdf shell shim: that costs ~100 ms on
#             every container start); default /usr/bin/python3, else the
#             resolved python3 on PATH.  The hooks need only the standard library.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
hooks_dir=${1:-/usr/share/containers/oci/hooks.d}
libexec=${2:-/usr/local/libexec/ocirt}
python=${3:-}
if [ -z "$python" ]; then
    if [ -x /usr/bin/python3 ]; then
        python=/usr/bin/python3
    else
        python=$(python3 -c 'import os, sys; print(os.path.realpath(sys.executable))')
    fi
fi
case "$python" in /*) ;; *) echo "install.sh: PYTHON must be an absolute path" >&2; exit 1 ;; esac
mkdir -p "$hooks_dir" "$libexec"
install -m 0644 "$here/krun-cw-guard.py" "$libexec/krun-cw-guard.py"
"$python" -I -S - "$here/ocirt-krun-cw-guard.json.in" "$hooks_dir/ocirt-krun-cw-guard.json" "$python" "$libexec" <<'PY'
import json, sys
template, target, python, libexec = sys.argv[1:]
with open(template) as f:
    hook = json.load(f)
hook["hook"]["path"] = python
hook["hook"]["args"] = [a.replace("@LIBEXEC@", libexec) for a in hook["hook"]["args"]]
with open(target + ".tmp", "w") as f:
    json.dump(hook, f, indent=2)
    f.write("\n")
import os
os.rename(target + ".tmp", target)
PY
echo "installed $hooks_dir/ocirt-krun-cw-guard.json -> $libexec/krun-cw-guard.py (via $python)"
