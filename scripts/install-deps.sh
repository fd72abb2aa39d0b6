#!/bin/bash
# Install everything ocirt and its test suite need on a fresh Debian 12 host
# (root).  Each area lists its packages in scripts/deps/<area>.apt / .pip.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
apt_pkgs=$(cat scripts/deps/*.apt 2>/dev/null | sed 's/#.*//' | tr -s ' \n' ' ')
missing=""
for p in $apt_pkgs; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq -o DPkg::Lock::Timeout=600 $missing >/dev/null
fi
pip_pkgs=$(cat scripts/deps/*.pip 2>/dev/null | sed 's/#.*//' | tr -s ' \n' ' ')
$PY -m pip install -q --disable-pip-version-check --root-user-action=ignore $pip_pkgs
# The runtime itself, so `ocirt` is a real -IS launcher in the interpreter's bin dir.
$PY -m pip install -q --disable-pip-version-check --root-user-action=ignore --no-build-isolation .
bindir=$($PY -c 'import sysconfig; print(sysconfig.get_path("scripts"))')
for b in ocirt ocirt-mkcw ocirt-kbs; do ln -sf "$bindir/$b" /usr/local/bin/$b; done
ln -sf "$bindir/ocirt" /usr/local/bin/krun-ocirt
