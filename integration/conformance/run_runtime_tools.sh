#!/bin/bash
# Run the OCI runtime-tools validation programs against a runtime and report,
# per program, PASS or FAIL, plus a summary line.
#
#   RUNTIME_TOOLS_BIN=/dir integration/conformance/run_runtime_tools.sh RUNTIME [PROGRAM...]
#
# RUNTIME_TOOLS_BIN is a directory of *already built* programs; nothing is
# fetched or built here, and no runtime-tools source is part of this project.
# The directory must hold:
#   runtimetest            cmd/runtimetest, statically linked (it runs inside
#                          the container: CGO_ENABLED=0 -tags "netgo osusergo")
#   NAME.t (or NAME)       one binary per validation/NAME/NAME.go program
#   rootfs-amd64.tar.gz    the rootfs every program unpacks into its bundle
#                          (the bundle directory *is* the rootfs: root.path
#                          "."), e.g. a busybox-static tree with every applet
#                          linked, /etc/passwd and /etc/group, "." mode 0755
# The programs read runtimetest and the tarball from their working directory,
# so each one runs with RUNTIME_TOOLS_BIN as cwd.  How such a directory was
# built on the test machine (runtime-tools sources in a GOPATH tree outside the
# project, GO111MODULE=off, Debian's golang-*-dev packages for the libraries)
# is described in docs/conformance.md.
#
# A program passes when it exits 0, prints no "not ok" test line, and prints
# no orphan error diagnostic: several programs (poststart, poststart_fail,
# poststop_fail, prestart_fail, hooks, state) report a failure only as a YAML
# block with an "error" key that follows no test line, and print plan 1..0.
# A YAML "error" right after a test line belongs to that test (create, start,
# kill... show the runtime's expected error there) and does not fail it.
#
# Options (environment):
#   V1_VIEW=1      run each program in a private mount namespace with
#                  /sys/fs/cgroup/unified unmounted (cgroup-v1-only view; crun
#                  1.8.1 refuses this machine's hybrid layout otherwise)
#   PROGRAM_TIMEOUT=seconds per program (default 180)
#   OUT=dir        where TAP outputs and summary.txt go (default a temp dir)
set -euo pipefail

usage="usage: RUNTIME_TOOLS_BIN=DIR $0 RUNTIME [PROGRAM...]"
runtime=${1:?$usage}
shift
runtime=$(readlink -f "$(command -v "$runtime")")
bin=${RUNTIME_TOOLS_BIN:?$usage}
bin=$(readlink -f "$bin")
for f in runtimetest rootfs-amd64.tar.gz; do
    [ -f "$bin/$f" ] || { echo "$bin: $f missing (see the header of $0)" >&2; exit 1; }
done
out=${OUT:-$(mktemp -d /var/tmp/runtime-tools-XXXXXX)}
timeout=${PROGRAM_TIMEOUT:-180}
mkdir -p "$out"
out=$(readlink -f "$out")

if [ $# -gt 0 ]; then
    programs=("$@")
else
    mapfile -t programs < <(cd "$bin" && ls | sed -n 's/\.t$//p' | sort)
fi

# TAP judgement (see above): prints "ok" or the reason for failing.
judge() {
    awk '
        /^not ok/ { notok++ }
        /^(ok|not ok)( |$)/ { last = "test"; next }
        /^  ---$/ { inyaml = 1; haserr = 0; next }
        inyaml && /^  \.\.\.$/ {
            inyaml = 0
            if (haserr && last != "test") orphan++
            last = "yaml"; next
        }
        inyaml && /^    "error":/ { haserr = 1; next }
        inyaml { next }
        /^TAP version/ { last = "header" }
        END {
            if (notok) print notok " not ok"
            else if (orphan) print orphan " orphan error diagnostic(s)"
            else print "ok"
        }' "$1"
}

passed=0 failed=0
: > "$out/summary.txt"
for name in "${programs[@]}"; do
    name=$(basename "${name%.t}")
    prog=$bin/$name.t
    [ -x "$prog" ] || prog=$bin/$name
    if [ ! -x "$prog" ]; then
        echo "FAIL $name (no such program in $bin)" | tee -a "$out/summary.txt"
        failed=$((failed + 1))
        continue
    fi
    if [ "${V1_VIEW:-0}" = 1 ]; then
        cmd=(unshare -m --propagation unchanged sh -c 'umount /sys/fs/cgroup/unified 2>/dev/null; exec "$@"' sh "$prog")
    else
        cmd=("$prog")
    fi
    set +e
    (cd "$bin" && RUNTIME=$runtime timeout "$timeout" "${cmd[@]}") > "$out/$name.tap" 2> "$out/$name.stderr"
    status=$?
    set -e
    verdict=$(judge "$out/$name.tap")
    if [ $status -eq 0 ] && [ "$verdict" = ok ]; then
        echo "PASS $name" | tee -a "$out/summary.txt"
        passed=$((passed + 1))
    else
        [ $status -eq 0 ] || verdict="exit $status, $verdict"
        echo "FAIL $name ($verdict)" | tee -a "$out/summary.txt"
        failed=$((failed + 1))
    fi
done
echo "runtime-tools with $runtime: $passed passed, $failed failed of ${#programs[@]}; TAP in $out" \
    | tee -a "$out/summary.txt"
