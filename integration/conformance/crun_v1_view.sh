#!/bin/bash
# crun 1.8.1 as a cross-check runtime on this machine, for comparison only:
#   OCIRT_CONFORMANCE_RUNTIME=integration/conformance/crun_v1_view.sh python3 -m pytest -q integration/conformance
# It refuses hybrid cgroups ("drop all controllers from cgroupv2"), so it runs
# in a private mount namespace with /sys/fs/cgroup/unified unmounted (a
# cgroup-v1-only view), and it rejects ociVersion 1.2.0, so create's bundle
# config is rewritten to 1.0.2.  Both workarounds show in some results (the
# "runtime namespace" of hooks is the wrapper's mount namespace).
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
    if [ "${args[$i]}" = --bundle ]; then
        sed -i 's/"ociVersion": *"[^"]*"/"ociVersion": "1.0.2"/' "${args[$((i + 1))]}/config.json"
    fi
done
exec unshare -m --propagation unchanged sh -c 'umount /sys/fs/cgroup/unified 2>/dev/null; exec /usr/bin/crun "$@"' crun "$@"
