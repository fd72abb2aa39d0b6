"""Builds and reads the libkrun TEST DOUBLE (tests/krun/libkrun_double.c).

The double is not libkrun and boots no VM: it records every libkrun call and
runs the described workload directly.  ``build()`` compiles it with gcc into
a private directory as every soname ocirt loads; point ``OCIRT_LIBKRUN_DIR``
at that directory.
"""
import json
import os
import shutil
import subprocess
import tempfile

SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "libkrun_double.c")
# A krun-sev.json as buildah mkcw writes it (confidential-workloads.md §3), without an attestation URL.
SNP_CONFIG = {"tee": "snp", "tee_data": "{\"gen\":\"milan\"}", "workload_id": "test", "cpus": 2, "ram_mib": 512,
              "attestation_url": ""}
VARIANTS = {"libkrun.so.1": 0, "libkrun-sev.so.1": 1, "libkrun-tdx.so.1": 2}


def gcc_available():
    return shutil.which("gcc") is not None


def build(directory=None, old_api=False, variants=VARIANTS):
    """Compile the double as each soname into ``directory`` (default: a new temp dir), mode 0755."""
    directory = directory or tempfile.mkdtemp(prefix="libkrun-double-")
    os.makedirs(directory, exist_ok=True)
    os.chmod(directory, 0o755)
    for soname, variant in variants.items():
        cmd = ["gcc", "-shared", "-fPIC", "-O1", "-Wall", "-Wextra", "-Werror", f"-DDOUBLE_VARIANT={variant}",
               "-o", os.path.join(directory, soname), SOURCE]
        if old_api:
            cmd.insert(1, "-DDOUBLE_OLD_API")
        subprocess.run(cmd, check=True)
        os.chmod(os.path.join(directory, soname), 0o755)
    return directory


def read_calls(log_path):
    """The recorded calls, one dict per call: {"call", "pid", "variant", "args", "ret", ["root_id"]}."""
    if not os.path.exists(log_path):
        return []
    with open(log_path) as f:
        return [json.loads(line) for line in f if line.strip()]


def call_names(calls):
    return [c["call"] for c in calls if not c["call"].startswith("(")]


def krun_bundle(tmp_path, args=("sh", "-c", "true"), annotations=None, tee=None, disk=True, mutate=None):
    """A busybox bundle with ``annotations``; ``tee`` adds /krun-sev.json (a dict, or raw text) and,
    with ``disk``, a placeholder /disk.img: the shape of a confidential-workload image."""
    from tests import support

    def edit(config):
        config["annotations"] = dict(annotations or {})
        if mutate:
            mutate(config)
    path = support.make_bundle(os.path.join(str(tmp_path), "bundle"), args=args, mutate=edit)
    if tee is not None:
        with open(os.path.join(path, "rootfs", "krun-sev.json"), "w") as f:
            f.write(tee if isinstance(tee, str) else json.dumps(tee))
        if disk:
            with open(os.path.join(path, "rootfs", "disk.img"), "wb") as f:
                f.write(b"\0" * 4096)
    return path
