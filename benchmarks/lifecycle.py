#!/usr/bin/env python3
"""ocirt against runc on the same busybox bundle, interleaved in one run.

Paths measured (wall time per container, median over the rounds):
  run    one-shot `run --bundle B ID` of `true`
  split  create / start / state / delete --force — what podman, CRI-O and
         the containerd shim do
Also the peak RSS of each verb (ru_maxrss of the verb's process tree, as
reported by wait4).

    python3 benchmarks/lifecycle.py [--rounds 30] [--ocirt PATH] [--runc PATH]
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tests.support import make_bundle, ocirt_bin  # noqa: E402


GNU_TIME = "/usr/bin/time"


def timed(argv, rss_file):
    """Run argv; return (seconds, peak RSS in KiB, exit status).

    The peak RSS comes from GNU time: a process forked from this ~15 MB Python
    would carry our high-water mark in its own ru_maxrss.  Both runtimes pay
    the same small wrapper cost in the wall time.
    """
    wrapped = [GNU_TIME, "-f", "%M", "-o", rss_file, *argv] if os.path.exists(GNU_TIME) else argv
    start = time.perf_counter()
    proc = subprocess.Popen(wrapped, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _pid, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    kb = usage.ru_maxrss
    if wrapped is not argv:
        with open(rss_file) as f:
            kb = int(f.read().split()[-1])
    return elapsed, kb, os.waitstatus_to_exitcode(status)


def one_round(runtime, root, bundle, n, rss, verb_times):
    cid = f"bench-{n}"
    rss_file = os.path.join(root + "-rss")
    t_run, kb, rc = timed([runtime, "--root", root, "run", "--bundle", bundle, cid + "-r"], rss_file)
    assert rc == 0, f"{runtime} run failed ({rc})"
    rss["run"] = max(rss.get("run", 0), kb)
    split = 0.0
    for verb, argv in (("create", ["create", "--bundle", bundle, cid]), ("start", ["start", cid]),
                       ("state", ["state", cid]), ("delete", ["delete", "--force", cid])):
        t, kb, rc = timed([runtime, "--root", root, *argv], rss_file)
        assert rc == 0, f"{runtime} {verb} failed ({rc})"
        rss[verb] = max(rss.get(verb, 0), kb)
        verb_times.setdefault(verb, []).append(t)
        split += t
    return t_run, split


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--ocirt", default=os.environ.get("OCIRT_BIN") or (
        "/usr/local/bin/ocirt" if os.path.exists("/usr/local/bin/ocirt") else ocirt_bin()))
    ap.add_argument("--runc", default=shutil.which("runc") or "/usr/sbin/runc")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="ocirt-bench-")
    try:
        bundle = make_bundle(os.path.join(work, "bundle"), args=["true"])
        runtimes = {"ocirt": args.ocirt, "runc": args.runc}
        times = {name: {"run": [], "split": []} for name in runtimes}
        verb_times = {name: {} for name in runtimes}
        rss = {name: {} for name in runtimes}
        roots = {name: os.path.join(work, f"root-{name}") for name in runtimes}
        order = list(runtimes)
        for n in range(args.rounds):
            for name in (order if n % 2 == 0 else order[::-1]):  # interleaved, alternating first
                t_run, t_split = one_round(runtimes[name], roots[name], bundle, n, rss[name], verb_times[name])
                times[name]["run"].append(t_run)
                times[name]["split"].append(t_split)
        print(f"ocirt: {args.ocirt}\nrunc:  {args.runc}\nrounds: {args.rounds} (interleaved)\n")
        print(f"{'path':<8}{'ocirt ms':>10}{'runc ms':>10}{'ratio':>8}")
        result = {}
        for path in ("run", "split"):
            o = statistics.median(times["ocirt"][path]) * 1000
            r = statistics.median(times["runc"][path]) * 1000
            result[path] = {"ocirt_ms": round(o, 1), "runc_ms": round(r, 1), "ratio": round(o / r, 2)}
            print(f"{path:<8}{o:>10.1f}{r:>10.1f}{o / r:>8.2f}")
        print(f"\n{'verb':<8}{'ocirt ms':>10}{'runc ms':>10}{'ratio':>8}{'ocirt MB':>10}{'runc MB':>10}   (median; peak RSS)")
        result["verbs_ms"] = {}
        for verb in ("run", "create", "start", "state", "delete"):
            if verb == "run":
                o, r = result["run"]["ocirt_ms"], result["run"]["runc_ms"]
            else:
                o = statistics.median(verb_times["ocirt"][verb]) * 1000
                r = statistics.median(verb_times["runc"][verb]) * 1000
                result["verbs_ms"][verb] = {"ocirt": round(o, 1), "runc": round(r, 1)}
            print(f"{verb:<8}{o:>10.1f}{r:>10.1f}{o / r:>8.2f}"
                  f"{rss['ocirt'][verb] / 1024:>10.1f}{rss['runc'][verb] / 1024:>10.1f}")
        result["peak_rss_mb"] = {n: {v: round(k / 1024, 1) for v, k in rss[n].items()} for n in rss}
        print("\n" + json.dumps(result))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
