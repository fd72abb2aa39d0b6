#!/bin/bash
# Run the OCI runtime-tools validation programs against a runtime and count
# the programs that pass (exit 0 and no "not ok" TAP line).
#
#   RUNTIME_TOOLS_SRC=/path/to/runtime-tools integration/conformance/run_runtime_tools.sh RUNTIME [PROGRAM...]
#
# RUNTIME_TOOLS_SRC is a checkout of github.com/opencontainers/runtime-tools
# (it vendors its Go dependencies and ships rootfs-amd64.tar.gz, which the
# programs unpack into their bundles, so no network is needed).  The Debian
# package golang-github-opencontainers-runtime-tools-dev carries only the
# library packages, not validation/, so the checkout must come from elsewhere.
#
# What `make RUNTIME=... localvalidation` does, without needing node-tap:
# build runtimetest and every validation/**/*.go program in place (go 1.19
# works), then run each one from the source root with RUNTIME set.
#
# Options (environment):
#   V1_VIEW=1      run inside a private mount namespace with
#                  /sys/fs/cgroup/unified unmounted (cgroup-v1-only view; crun
#                  refuses this machine's hybrid layout otherwise)
#   PROGRAM_TIMEOUT=seconds per program (default 120)
#   OUT=dir        where TAP outputs and the summary go (default a temp dir)
set -euo pipefail

runtime=${1:?usage: RUNTIME_TOOLS_SRC=... $0 RUNTIME [PROGRAM...]}
shift
runtime=$(readlink -f "$(command -v "$runtime")")
src=${RUNTIME_TOOLS_SRC:?set RUNTIME_TOOLS_SRC to a runtime-tools checkout}
src=$(readlink -f "$src")
[ -f "$src/rootfs-amd64.tar.gz" ] || { echo "$src: rootfs-amd64.tar.gz missing (not a runtime-tools checkout?)" >&2; exit 1; }
out=${OUT:-$(mktemp -d /var/tmp/runtime-tools-XXXXXX)}
timeout=${PROGRAM_TIMEOUT:-120}
mkdir -p "$out"
cd "$src"

export GOFLAGS=${GOFLAGS:--mod=vendor} GO111MODULE=${GO111MODULE:-on} GOCACHE=${GOCACHE:-/var/tmp/runtime-tools-gocache}
if [ ! -x runtimetest ]; then
    CGO_ENABLED=0 go build -tags "netgo osusergo" -o runtimetest ./cmd/runtimetest
fi

if [ $# -gt 0 ]; then
    programs=("$@")
else
    mapfile -t programs < <(find validation -name '*.go' ! -path '*/util/*' | sort)
fi

passed=0 failed=0 broken=0
: > "$out/summary.txt"
for go_file in "${programs[@]}"; do
    go_file=${go_file%.t}
    go_file=${go_file%.go}.go
    name=$(basename "${go_file%.go}")
    binary=${go_file%.go}.t
    if [ ! -x "$binary" ] || [ "$binary" -ot "$go_file" ]; then
        if ! go build -o "$binary" "./$go_file" 2> "$out/$name.build.txt"; then
            echo "BUILD-FAILED $name" | tee -a "$out/summary.txt"
            broken=$((broken + 1))
            continue
        fi
    fi
    if [ "${V1_VIEW:-0}" = 1 ]; then
        cmd=(unshare -m --propagation unchanged sh -c 'umount /sys/fs/cgroup/unified 2>/dev/null; exec "$@"' sh "./$binary")
    else
        cmd=("./$binary")
    fi
    set +e
    RUNTIME=$runtime timeout "$timeout" "${cmd[@]}" > "$out/$name.tap" 2>&1
    status=$?
    set -e
    if [ $status -eq 0 ] && ! grep -q '^not ok' "$out/$name.tap" && grep -q '^ok' "$out/$name.tap"; then
        echo "PASS $name" | tee -a "$out/summary.txt"
        passed=$((passed + 1))
    else
        echo "FAIL $name (exit $status, $(grep -c '^not ok' "$out/$name.tap") not ok)" | tee -a "$out/summary.txt"
        failed=$((failed + 1))
    fi
done
echo "runtime-tools with $runtime: $passed passed, $failed failed, $broken did not build; TAP in $out" \
    | tee -a "$out/summary.txt"
