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

PRELUDE = f"import sys; sys.path[:0] = [{REPO!r}, {SITE!r}]\nimport json\nconfig = json.load(open(sys.argv[1]))\n"
CASES = {
    "bare": "pass",
    "json": PRELUDE,
    "ocirt": PRELUDE + "from ocirt.spec.validate import validate_config\nvalidate_config(config)\n",
    "jsonschema": PRELUDE + (
        "import os, jsonschema, referencing\n"
        "from referencing.jsonschema import DRAFT4\n"
        "d = os.path.join(sys.path[0], 'schemas')\n"
        "docs = {n: json.load(open(os.path.join(d, n))) for n in os.listdir(d) if n.endswith('.json')}\n"
        "registry = referencing.Registry().with_resources(\n"
        "    (n, referencing.Resource.from_contents(doc, default_specification=DRAFT4)) for n, doc in docs.items())\n"
        "jsonschema.Draft4Validator({'$ref': 'config-schema.json'}, registry=registry).validate(config)\n"),
}


def run_once(code, config_path):
    start = time.perf_counter()
    subprocess.run([sys.executable, "-I", "-S", "-c", code, config_path], check=True)
    return time.perf_counter() - start


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
        times = {name: [] for name in CASES}
        for _ in range(rounds):
            for name, code in CASES.items():             # interleaved
                times[name].append(run_once(code, f.name))
    med = {name: statistics.median(t) * 1000 for name, t in times.items()}
    print(f"fresh interpreter, podman 4.3 config.json ({len(PODMAN_CONFIG_JSON)} bytes), median of {rounds}:")
    for name in CASES:
        print(f"  {name:<11} {med[name]:7.1f} ms")
    ours, theirs = med["ocirt"] - med["json"], med["jsonschema"] - med["json"]
    print(f"validation on top of reading the config: ocirt {ours:.1f} ms, jsonschema {theirs:.1f} ms "
          f"(ocirt/jsonschema = {ours / theirs:.3f})")
    print(f"whole process: ocirt/jsonschema = {med['ocirt'] / med['jsonschema']:.3f}, "
          f"ocirt/bare = {med['ocirt'] / med['bare']:.2f}")
    print("in-process validate (import excluded), best of 5x200:")
    for name, config in (("podman-4.3", podman), ("kitchen-sink-1.3", KITCHEN_SINK)):
        a, b = in_process(config)
        print(f"  {name:<17} ocirt {a * 1e6:7.1f} us   jsonschema {b * 1e6:8.1f} us   ratio {a / b:.3f}")


if __name__ == "__main__":
    main()
