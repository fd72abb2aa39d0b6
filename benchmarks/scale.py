"""Scale benchmark: N containers created, started, waited for and deleted,
sequentially and P at a time, ocirt against runc in one run.

    python3 benchmarks/scale.py [--count 50] [--parallel 8] [--runc /usr/sbin/runc] [--ocirt PATH]

Each container runs /bin/true from a busybox bundle.  The benchmark process
is a child subreaper, so every container init is reparented to it and
"wait" is a plain waitpid on the pid from --pid-file.  Prints ms/container
per runtime and mode, and ocirt/runc ratios of the best and of the median
round (target: <= 1.0 in both modes).  Rounds alternate which runtime goes
first, so background load on a shared machine hits both alike.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tests.support import make_bundle, ocirt_bin  # noqa: E402


def become_subreaper():
    from ocirt.linux._libc import lib
    if lib.prctl(lib.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise SystemExit("prctl(PR_SET_CHILD_SUBREAPER) failed")


def one_container(runtime, root, bundle, cid):
    # stderr goes to a file: the container init inherits the runtime's stdio,
    # so a pipe would only reach EOF when the container exits.
    with tempfile.TemporaryFile() as err:
        quiet = {"stdin": subprocess.DEVNULL, "stdout": subprocess.DEVNULL, "stderr": err}
        pid_file = os.path.join(root, f"{cid}.pid")
        for step in (["create", "--bundle", bundle, "--pid-file", pid_file, cid], ["start", cid], None,
                     ["delete", cid]):
            if step is None:
                os.waitpid(pid, 0)
                continue
            if subprocess.run([runtime, "--root", root, *step], **quiet).returncode != 0:
                err.seek(0)
                raise RuntimeError(f"{runtime} {step[0]} {cid}: {err.read().decode().strip()}")
            if step[0] == "create":
                with open(pid_file) as f:
                    pid = int(f.read())


def measure(runtime, bundles, count, parallel, tag):
    root = tempfile.mkdtemp(prefix=f"scale-{tag}-", dir="/run")
    try:
        start = time.monotonic()
        if parallel == 1:
            for i in range(count):
                one_container(runtime, root, bundles[0], f"{tag}-{i}")
        else:
            with ThreadPoolExecutor(parallel) as pool:
                futures = [pool.submit(one_container, runtime, root, bundles[i % parallel], f"{tag}-{i}")
                           for i in range(count)]
                for fut in futures:
                    fut.result()
        return (time.monotonic() - start) * 1000 / count
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=50)
    ap.add_argument("--parallel", type=int, default=8)
    ap.add_argument("--runc", default=shutil.which("runc") or "/usr/sbin/runc")
    ap.add_argument("--ocirt", default=None)
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds; best and median are printed")
    args = ap.parse_args()
    runtimes = {"runc": args.runc, "ocirt": args.ocirt or ocirt_bin()}
    become_subreaper()
    work = tempfile.mkdtemp(prefix="scale-bundles-", dir="/var/tmp")
    try:
        bundles = [make_bundle(os.path.join(work, f"b{i}"), args=("true",), readonly=True)
                   for i in range(max(args.parallel, 1))]
        modes = (("sequential", 1), (f"{args.parallel} parallel", args.parallel))
        samples = {(name, mode): [] for name in runtimes for mode, _ in modes}
        for r in range(args.rounds):
            order = list(runtimes) if r % 2 == 0 else list(runtimes)[::-1]  # interleaved, alternating first
            for mode, parallel in modes:
                for name in order:
                    ms = measure(runtimes[name], bundles, args.count, parallel, f"{name}{parallel}")
                    samples[(name, mode)].append(ms)
                    print(f"round {r + 1}: {name:6s} {mode:12s} {ms:7.1f} ms/container  ({args.count} containers)",
                          flush=True)
        print()
        for mode, _ in modes:
            best = {name: min(samples[(name, mode)]) for name in runtimes}
            med = {name: statistics.median(samples[(name, mode)]) for name in runtimes}
            ratio = best["ocirt"] / best["runc"]
            verdict = "meets" if ratio <= 1.0 else "misses"
            print(f"ratio ocirt/runc {mode:12s} best {ratio:5.2f}x  median {med['ocirt'] / med['runc']:5.2f}x"
                  f"  (runc {best['runc']:.1f}, ocirt {best['ocirt']:.1f} ms/container; {verdict} the <= 1.0x target)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
