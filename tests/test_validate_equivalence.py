"""The generated checks and real jsonschema must agree on every document.

schemas/ is the source of truth; ocirt/spec/_schema_checks.py is what runs.
Each good fixture (tests/test_validate.py) is mutated node by node — wrong
types, out-of-range numbers, bad enum/pattern strings, missing members, empty
arrays, unknown extra members — and every mutant goes through both: the
verdicts must be equal, and the JSON path the generated checks name must be
one jsonschema reports as well.
"""
import copy
import json
import os
import random
import re

import pytest

jsonschema = pytest.importorskip("jsonschema")
referencing = pytest.importorskip("referencing")
from referencing.jsonschema import DRAFT4  # noqa: E402

from ocirt.spec import _schema_checks  # noqa: E402
from ocirt.spec._schema_compiler import ROOTS, load_schemas  # noqa: E402
from tests.test_validate import GOOD_FEATURES, GOOD_STATES, good_configs  # noqa: E402

WRONG_VALUES = [None, True, False, 0, -1, 7, 1.5, 2 ** 16, 2 ** 32, 2 ** 63, 2 ** 64, -(2 ** 63) - 1, "", "bogus",
                "/abs", "CAP_NOPE", "RLIMIT_X", "MB:1", "2MB", "rw", "pid", "SCMP_ACT_ALLOW", [], ["x"], [1], [{}],
                {}, {"k": "v"}, {"k": 1}]

SCHEMAS = load_schemas()
EXHAUSTIVE = os.environ.get("OCIRT_VALIDATE_EXHAUSTIVE") == "1"


def ecma_pattern(validator, pattern, instance, schema):
    """JSON Schema patterns are ECMA-262, where ``$`` is the end of the text;
    Python's ``$`` also matches before a final newline, so jsonschema would
    accept "CAP_KILL\\n".  The generated checks follow ECMA-262, and so does
    the oracle here."""
    if not validator.is_type(instance, "string"):
        return
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        pattern = pattern[:-1] + r"\Z"
    if not re.search(pattern, instance):
        yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")


EcmaDraft4Validator = jsonschema.validators.extend(jsonschema.Draft4Validator, {"pattern": ecma_pattern})


def jsonschema_validator(entry_point):
    # without "$schema", jsonschema keeps our validator class across $refs
    # instead of switching back to its own Draft4Validator
    registry = referencing.Registry().with_resources(
        (name, DRAFT4.create_resource({k: v for k, v in doc.items() if k != "$schema"}))
        for name, doc in SCHEMAS.items())
    file, pointer = ROOTS[entry_point]
    return EcmaDraft4Validator({"$ref": f"{file}#{pointer}"}, registry=registry)


def walk(doc, path=()):
    yield path, doc
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield from walk(value, path + (key,))
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            yield from walk(value, path + (i,))


def replaced(doc, path, value):
    if not path:
        return copy.deepcopy(value)
    doc = copy.deepcopy(doc)
    parent = doc
    for part in path[:-1]:
        parent = parent[part]
    parent[path[-1]] = value
    return doc


def removed(doc, path):
    doc = copy.deepcopy(doc)
    parent = doc
    for part in path[:-1]:
        parent = parent[part]
    del parent[path[-1]]
    return doc


def mutations(doc):
    """(path, change) pairs, cheap to list; materialize() makes the documents."""
    for path, value in walk(doc):
        for wrong in WRONG_VALUES:
            if type(wrong) is not type(value) or wrong != value:
                yield path, ("replace", wrong)
        if path and not isinstance(path[-1], int):
            yield path, ("remove", None)
        if isinstance(value, list) and value:
            yield path, ("replace", [])
            yield path, ("replace", value + [value[0]])
        if isinstance(value, dict):
            yield path, ("replace", dict(value, zzUnknownField={"any": ["thing"]}))


def materialize(doc, mutation):
    path, (kind, value) = mutation
    return removed(doc, path) if kind == "remove" else replaced(doc, path, value)


def mutants(doc, limit=None, seed=0):
    """Mutated copies of doc: all of them, or a fixed random sample of limit."""
    chosen = list(mutations(doc))
    if limit is not None and not EXHAUSTIVE and len(chosen) > limit:
        chosen = random.Random(seed).sample(chosen, limit)
    return [materialize(doc, m) for m in chosen]


def json_path(parts):
    text = "$"
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part.isidentifier():
            text += f".{part}"
        else:
            text += f"[{json.dumps(part)}]"
    return text


def paths_jsonschema_blames(validator, doc):
    paths = set()
    for error in validator.iter_errors(doc):
        for leaf in (error.context or [error]) if error.validator in ("anyOf", "oneOf") else [error]:
            paths.add(json_path(leaf.absolute_path))
            missing = re.match(r"^'(.+)' is a required property$", leaf.message)
            if missing:
                paths.add(json_path(list(leaf.absolute_path) + [missing.group(1)]))
    return paths


def compare(entry_point, documents):
    validator = jsonschema_validator(entry_point)
    generated = getattr(_schema_checks, entry_point)
    checked = invalid = 0
    for doc in documents:
        blamed = paths_jsonschema_blames(validator, doc)
        try:
            generated(doc)
            ours = None
        except _schema_checks.SchemaViolation as e:
            ours = e.path
        assert (ours is None) == (not blamed), \
            f"verdicts differ: generated blames {ours}, jsonschema {sorted(blamed)}: {json.dumps(doc)[:400]}"
        if ours is not None:
            assert ours in blamed, f"generated blames {ours}, jsonschema {sorted(blamed)}"
            invalid += 1
        checked += 1
    return checked, invalid


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_schema_files_are_valid_draft4(name):
    jsonschema.Draft4Validator.check_schema(SCHEMAS[name])


# jsonschema needs ~2-9 ms per config here and the fixtures have 4,000-23,000
# mutants each, so a fixed random sample runs by default (a few seconds per
# fixture); OCIRT_VALIDATE_EXHAUSTIVE=1 runs every mutant (minutes).
MUTANT_LIMIT = 1000


@pytest.mark.parametrize("name,config", good_configs(), ids=[n for n, _ in good_configs()])
def test_config_mutants_agree(name, config):
    docs = [config] + mutants(config, MUTANT_LIMIT, seed=name)
    checked, invalid = compare("check_config", docs)
    assert invalid > checked // 3, "mutations should mostly produce invalid documents"


def test_process_mutants_agree():
    process = dict(good_configs()[2][1]["process"])
    checked, invalid = compare("check_process", [process] + mutants(process, MUTANT_LIMIT))
    assert invalid > checked // 3


def test_state_mutants_agree():
    docs = [m for state in GOOD_STATES for m in [state] + mutants(state)]
    checked, invalid = compare("check_state", docs)
    assert invalid > checked // 3


def test_features_mutants_agree():
    docs = [m for features in GOOD_FEATURES for m in [features] + mutants(features, MUTANT_LIMIT)]
    checked, invalid = compare("check_features", docs)
    assert invalid > checked // 3


def test_type_corner_cases_agree():
    """Values where Python and JSON Schema types differ: bool vs int, 1.0 vs 1, huge ints."""
    base = {"ociVersion": "1.0.0", "process": {"cwd": "/", "user": {"uid": 0}, "oomScoreAdj": 0}}
    docs = []
    for value in (True, False, 1.0, 0.0, -0.0, 1e300, float("inf"), 2 ** 70, -(2 ** 70), 4294967295, 4294967296):
        docs.append(replaced(base, ("process", "user", "uid"), value))
        docs.append(replaced(base, ("process", "oomScoreAdj"), value))
    for value in ("CAP_KILL\n", "RLIMIT_CORE\n", "\nCAP_KILL", "CAP_KILL "):
        docs.append(replaced(base, ("process", "capabilities"), {"bounding": [value]}))
        docs.append(replaced(base, ("process", "rlimits"), [{"type": value, "soft": 1, "hard": 1}]))
    compare("check_config", docs)
