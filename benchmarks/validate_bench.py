"""config.json validation cost on the per-verb path: generated checks vs jsonschema.

    python3 benchmarks/validate_bench.py [rounds]

Each case is a fresh interpreter (as every ocirt verb is), run interleaved,
on the config.json podman 4.3 writes (tests/test_validate.py):

  bare        python -I -S: interpreter start
  json        + read and parse config.json (every verb that loads a config does this)
  ocirt       + import ocirt.spec.validate and validate_config()
  jsonschema  + import jsonschema/referencing, load schemas/, validate

It prints the median wall time of each, the cost of validation on top of
reading the config, and the ratios; then in-process validation times.
"""
import json
import os
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
import timeit

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from tests.test_validate import KITCHEN_SINK, PODMAN_CONFIG_JSON  # noqa: E402

SITE = sysconfig.get_paths()["purelib"]

# The child times its own import + validate (after reading the config) and
# prints it: steadier on a shared machine than subtracting wall times.
PRELUDE = (f"import sys, time; sys.path[:0] = [{REPO!r}, {SITE!r}]\nimport json\n"
           "config = json.load(open(sys.argv[1]))\nstart = time.perf_counter()\n")
REPORT = "print((time.perf_counter() - start) * 1000)\n"
CASES = {
    "bare": "pass",
    "json": PRELUDE + REPORT,
    "ocirt": PRELUDE + "from ocirt.spec.validate import validate_config\nvalidate_config(config)\n" + REPORT,
    "jsonschema": PRELUDE + (
        "import os, jsonschema, referencing\n"
        "from referencing.jsonschema import DRAFT4\n"
        "d = os.path.join(sys.path[0], 'schemas')\n"
        "docs = {n: json.load(open(os.path.join(d, n))) for n in os.listdir(d) if n.endswith('.json')}\n"
        "registry = referencing.Registry().with_resources(\n"
        "    (n, referencing.Resource.from_contents(doc, default_specification=DRAFT4)) for n, doc in docs.items())\n"
        "jsonschema.Draft4Validator({'$ref': 'config-schema.json'}, registry=registry).validate(config)\n") + REPORT,
}


def run_once(code, config_path):
    """(wall seconds of the whole process, ms the child reported for import + validate)."""
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-I", "-S", "-c", code, config_path], check=True,
                         capture_output=True, text=True).stdout
    return time.perf_counter() - start, float(out) if out.strip() else 0.0


def in_process(config):
    import jsonschema
    import referencing
    from referencing.jsonschema import DRAFT4

    from ocirt.spec._schema_compiler import load_schemas
    from ocirt.spec.validate import validate_config
    registry = referencing.Registry().with_resources(
        (n, referencing.Resource.from_contents(doc, default_specification=DRAFT4)) for n, doc in load_schemas().items())
    validator = jsonschema.Draft4Validator({"$ref": "config-schema.json"}, registry=registry)
    validator.validate(config)          # warm the reference cache
    n = 200
    ours = min(timeit.repeat(lambda: validate_config(config), number=n, repeat=5)) / n
    theirs = min(timeit.repeat(lambda: validator.validate(config), number=n, repeat=5)) / n
    return ours, theirs


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 25
    podman = json.loads(PODMAN_CONFIG_JSON)
    with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
        json.dump(podman, f)
        f.flush()
        for code in CASES.values():                      # warm caches (.pyc, page cache)
            run_once(code, f.name)
        wall = {name: [] for name in CASES}
        inner = {name: [] for name in CASES}
        for _ in range(rounds):
            for name, code in CASES.items():             # interleaved
                w, i = run_once(code, f.name)
                wall[name].append(w * 1000)
                inner[name].append(i)
    med = {name: statistics.median(t) for name, t in wall.items()}
    cost = {name: statistics.median(t) for name, t in inner.items()}
    print(f"fresh interpreter, podman 4.3 config.json ({len(PODMAN_CONFIG_JSON)} bytes), median of {rounds}:")
    print(f"  {'case':<11} {'process wall':>13} {'import+validate':>16}")
    for name in CASES:
        print(f"  {name:<11} {med[name]:10.1f} ms {cost[name]:13.2f} ms")
    print(f"import + validate: ocirt {cost['ocirt']:.2f} ms, jsonschema {cost['jsonschema']:.1f} ms, "
          f"ratio {cost['ocirt'] / cost['jsonschema']:.4f}")
    print(f"whole process: ocirt/jsonschema = {med['ocirt'] / med['jsonschema']:.3f}, "
          f"ocirt/bare interpreter = {med['ocirt'] / med['bare']:.2f}")
    print("in-process validate (import excluded), best of 5x200:")
    for name, config in (("podman-4.3", podman), ("kitchen-sink-1.3", KITCHEN_SINK)):
        a, b = in_process(config)
        print(f"  {name:<17} ocirt {a * 1e6:7.1f} us   jsonschema {b * 1e6:8.1f} us   ratio {a / b:.3f}")


if __name__ == "__main__":
    main()
