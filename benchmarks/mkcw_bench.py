#!/usr/bin/env python3
"""ocirt-mkcw conversion time and peak memory, against buildah mkcw's figures.

Converts a ~2 MB busybox image and a ~218 MB image (busybox plus incompressible
random files) from podman's store to podman's store, as `buildah mkcw` did for
the reference figures (confidential-workloads.md §11: 1.53 s and 5.93 s median,
~46 MB peak RSS, each with ~1.2 s of key derivation).  Both tools calibrate
the key slot's PBKDF2 to ~1 s on the host; the script reads the iteration
count ocirt-mkcw chose back from a converted image (cryptsetup luksDump) and
prints it next to luksy's counts (CW §6) and the CPU time OpenSSL needs for it
here.  ``--kdf-seconds S`` passes a different key-slot cost to ocirt-mkcw.

Wall time is measured around the process; peak memory is ru_maxrss from
wait4(), i.e. the largest RSS of ocirt-mkcw and the children it waited for
(mkfs, cryptsetup, podman) -- the same quantity /usr/bin/time -v reports.
Podman uses private storage under /var/tmp; `sync` runs before every timed
run.  Usage: mkcw_bench.py [--runs-small N] [--runs-big N] [--big-mib N] [--kdf-seconds S]
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

BUILDAH = {"small": (1.53, 45.9), "big": (5.93, 47.2)}   # median s, peak MB (§11, snp, `time -v`)
BUILDAH_BIG_CPU = 8.3        # s of CPU (4.1 user + 4.2 sys) for the 219 MB image (§11, external timer row)
LUKSY_ITERATIONS = (2384850, 2611495)      # key slot counts buildah 1.39 (luksy) picked (CW §6)
TARGET_RATIO = 0.8
MEMORY_BOUND_MB = 64


def podman_env(base):
    conf = os.path.join(base, "containers.conf")
    with open(conf, "w") as f:
        f.write('[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]\n'
                '[network]\nnetwork_backend = "netavark"\n[engine]\ncgroup_manager = "cgroupfs"\n'
                'events_logger = "file"\n')
    storage = os.path.join(base, "storage.conf")
    with open(storage, "w") as f:
        f.write(f'[storage]\ndriver = "vfs"\ngraphroot = "{base}/root"\nrunroot = "{base}/run"\n')
    scratch = os.path.join(base, "scratch")
    os.makedirs(scratch)
    return dict(os.environ, CONTAINERS_CONF=conf, CONTAINERS_STORAGE_CONF=storage, TMPDIR=scratch)


def make_image(env, base, name, random_mib):
    root = os.path.join(base, name)
    os.makedirs(os.path.join(root, "bin"))
    shutil.copy2("/bin/busybox", os.path.join(root, "bin", "busybox"))
    os.symlink("busybox", os.path.join(root, "bin", "sh"))
    if random_mib:
        os.makedirs(os.path.join(root, "data"))
        for i in range(random_mib // 4):
            with open(os.path.join(root, "data", f"r{i:03d}"), "wb") as f:
                f.write(os.urandom(4 << 20))
    layer = root + ".tar"
    with tarfile.open(layer, "w") as tar:
        tar.add(root, arcname=".")
    shutil.rmtree(root)
    subprocess.run(["podman", "import", "--change", 'CMD ["/bin/sh","-c","echo hello from busybox"]',
                    "--change", "ENV PATH=/bin", layer, f"localhost/{name}:1"],
                   env=env, check=True, capture_output=True)
    os.unlink(layer)
    size = subprocess.run(["podman", "image", "inspect", "--format", "{{.Size}}", f"localhost/{name}:1"],
                          env=env, check=True, capture_output=True, text=True).stdout.strip()
    return f"localhost/{name}:1", int(size)


def timed(cmd, env):
    subprocess.run(["sync"])
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode()
    proc.stderr.close()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {err}")
    phases = {}
    for line in err.splitlines():
        if line.startswith("ocirt-mkcw: +"):
            t, _, phase = line[len("ocirt-mkcw: +"):].partition("s ")
            phases.setdefault(phase, float(t))
    return wall, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime, phases


def key_slot_cost(mkcw, src, env, base, extra):
    """(iterations, OpenSSL CPU seconds for them) of the key slot of one conversion of ``src``."""
    import hashlib
    out = os.path.join(base, "keyslot")
    subprocess.run([mkcw, "-p", "fixed", "-w", "test", *extra, src, f"oci:{out}"], env=env, check=True,
                   capture_output=True)
    with open(os.path.join(out, "index.json")) as f:
        manifest_digest = json.load(f)["manifests"][0]["digest"].split(":")[1]
    with open(os.path.join(out, "blobs", "sha256", manifest_digest)) as f:
        layer = json.load(f)["layers"][0]["digest"].split(":")[1]
    with tarfile.open(os.path.join(out, "blobs", "sha256", layer)) as tar:
        member = tar.getmember("disk.img")
        disk = os.path.join(base, "keyslot-disk.img")
        with tar.extractfile(member) as src_f, open(disk, "wb") as dst:
            dst.write(src_f.read(4 << 20))
    dump = subprocess.run(["cryptsetup", "luksDump", disk], check=True, capture_output=True, text=True).stdout
    iterations = int(dump.split("Iterations:")[1].split()[0])
    start = time.process_time()
    hashlib.pbkdf2_hmac("sha256", b"fixed", b"s" * 32, iterations, 64)
    cpu = time.process_time() - start
    shutil.rmtree(out)
    os.unlink(disk)
    return iterations, cpu


def buildah_mkcw_available():
    if not shutil.which("buildah"):
        return False, "buildah is not installed"
    res = subprocess.run(["buildah", "mkcw", "--help"], capture_output=True, text=True)
    if res.returncode != 0:
        ver = subprocess.run(["buildah", "--version"], capture_output=True, text=True).stdout.strip()
        return False, f"{ver} has no mkcw command (added in 1.30; Debian 12 ships 1.28)"
    return True, ""


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs-small", type=int, default=5)
    ap.add_argument("--runs-big", type=int, default=3)
    ap.add_argument("--big-mib", type=int, default=208)
    ap.add_argument("--kdf-seconds", type=float, help="key-slot cost passed to ocirt-mkcw (default: its own, 1)")
    args = ap.parse_args()
    extra = ["--kdf-seconds", str(args.kdf_seconds)] if args.kdf_seconds else []

    from tests.support import ocirt_bin
    mkcw = os.path.join(os.path.dirname(ocirt_bin()), "ocirt-mkcw")
    base = tempfile.mkdtemp(prefix="ocirt-mkcw-bench-", dir="/var/tmp")
    try:
        env = podman_env(base)
        bench_env = dict(env, OCIRT_MKCW_TIMES="1")
        print(f"machine: {os.cpu_count()} cpus, load average {os.getloadavg()[0]:.2f} at start")
        results = {}
        for label, mib, runs in (("small", 0, args.runs_small), ("big", args.big_mib, args.runs_big)):
            src, size = make_image(env, base, f"bench-{label}", mib)
            print(f"\n{label}: {src}, {size:,} B in podman's store, {runs} runs (+1 warm-up)")

            def cmd(i, src=src, label=label):
                return [mkcw, "-p", "fixed", "-w", "test", "-c", "2", "-m", "512", *extra, src,
                        f"localhost/cw-{label}:{i}"]
            timed(cmd(0), bench_env)
            walls, peaks, cpus = [], [], []
            for i in range(runs):
                wall, peak, cpu, phases = timed(cmd(i + 1), bench_env)
                walls.append(wall)
                peaks.append(peak)
                cpus.append(cpu)
                print(f"  run {i + 1}: {wall:.2f} s, cpu {cpu:.2f} s, peak RSS {peak:.1f} MB, phases "
                      + ", ".join(f"{k}@{v:.2f}" for k, v in phases.items()))
                subprocess.run(["podman", "rmi", "-f", f"localhost/cw-{label}:{i + 1}"], env=env,
                               capture_output=True)
            med = statistics.median(walls)
            peak = max(peaks)
            ref_t, ref_m = BUILDAH[label]
            results[label] = (med, peak)
            print(f"  ocirt-mkcw median {med:.2f} s (min {min(walls):.2f}, max {max(walls):.2f}), "
                  f"median cpu {statistics.median(cpus):.2f} s, peak RSS {peak:.1f} MB")
            if label == "big":
                print(f"  cpu ratio vs buildah's {BUILDAH_BIG_CPU} s of cpu: "
                      f"{statistics.median(cpus) / BUILDAH_BIG_CPU:.2f}x (less sensitive to other jobs than wall time)")
            print(f"  ratio vs buildah mkcw 1.39 ({ref_t} s, {ref_m} MB): time {med / ref_t:.2f}x "
                  f"(target <= {TARGET_RATIO}x), memory {peak / ref_m:.2f}x (bound {MEMORY_BOUND_MB} MB: "
                  f"{'ok' if peak <= MEMORY_BOUND_MB else 'EXCEEDED'})")
            if label == "small":
                iterations, kdf_cpu = key_slot_cost(mkcw, src, env, base, extra)
                print(f"  key slot: {iterations:,} PBKDF2-SHA256 iterations, {kdf_cpu:.2f} s of CPU for OpenSSL "
                      f"(what cryptsetup pays to open it) here; luksy picked "
                      f"{LUKSY_ITERATIONS[0]:,}-{LUKSY_ITERATIONS[1]:,} (CW §6)")
        small, big = results["small"], results["big"]
        print(f"\nmemory growth from small to big image: {big[1] - small[1]:+.1f} MB (streaming: should be ~0)")
        ok, why = buildah_mkcw_available()
        print("buildah mkcw side by side: " + ("available, not run by this script" if ok else f"not possible: {why}"))
        print(f"load average at end {os.getloadavg()[0]:.2f} (2-core box shared with other jobs: figures are noisy)")
    finally:
        subprocess.run(["podman", "rmi", "-a", "-f"], env=env, capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
