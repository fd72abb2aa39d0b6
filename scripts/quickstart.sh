#!/bin/bash
# The main job: install ocirt and what it needs, build a tiny image from
# busybox-static, and run it with podman using ocirt as the OCI runtime.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
work=$(mktemp -d /var/tmp/ocirt-quickstart.XXXXXX)
trap 'rm -rf "$work"' EXIT
# podman here: no systemd (cgroupfs, file events) and root cannot raise
# RLIMIT_NOFILE above 20000, so the default ulimits are set explicitly.
cat > "$work/containers.conf" <<'CONF'
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime_supports_json = ["crun", "runc", "ocirt"]
CONF
export CONTAINERS_CONF="$work/containers.conf"
mkdir -p "$work/rootfs/bin" "$work/rootfs/etc"
cp /bin/busybox "$work/rootfs/bin/busybox"
for a in sh echo uname cat id hostname ls ps; do ln -sf busybox "$work/rootfs/bin/$a"; done
echo "root:x:0:0:root:/root:/bin/sh" > "$work/rootfs/etc/passwd"
tar -C "$work/rootfs" -cf "$work/busybox.tar" .
podman import -q "$work/busybox.tar" localhost/ocirt-busybox:latest >/dev/null
ocirt=/usr/local/bin/ocirt  # a real -IS launcher (a pyenv shim would add ~100 ms)
echo "ocirt: $("$ocirt" --version | head -1) at $ocirt"
podman --runtime "$ocirt" run --rm --hostname ocirt-demo localhost/ocirt-busybox:latest \
    sh -c 'echo "hello from a busybox container run by ocirt"; echo "hostname: $(hostname)"; echo "kernel: $(uname -r)"; id; ps'
