"""The generated checks module is in step with schemas/, and the compiler refuses what it cannot check."""
import json
import os
import subprocess
import sys

import pytest

from ocirt.spec import _schema_compiler
from ocirt.spec._schema_compiler import SchemaCompileError, generate


def test_generated_module_is_up_to_date():
    with open(_schema_compiler.OUTPUT) as f:
        committed = f.read()
    assert committed == generate(), "schemas/ changed: run python3 -m ocirt.spec._schema_compiler and commit"


def test_check_mode_reports_stale_output(tmp_path, monkeypatch):
    stale = tmp_path / "_schema_checks.py"
    stale.write_text("# old\n")
    monkeypatch.setattr(_schema_compiler, "OUTPUT", str(stale))
    assert _schema_compiler.main(["--check"]) == 1
    assert _schema_compiler.main([]) == 0
    assert stale.read_text() == generate()
    assert _schema_compiler.main(["--check"]) == 0


def test_command_line_check_passes_in_tree():
    repo = _schema_compiler.REPO
    run = subprocess.run([sys.executable, "-m", "ocirt.spec._schema_compiler", "--check"], cwd=repo,
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr


def write_schemas(directory, **docs):
    for name, doc in docs.items():
        (directory / name).write_text(json.dumps(doc))


def minimal_roots(extra_config_properties):
    obj = {"type": "object"}
    return {
        "config-schema.json": {"type": "object", "properties": extra_config_properties,
                               "definitions": {"Process": obj}},
        "state-schema.json": obj,
        "features-schema.json": obj,
    }


@pytest.mark.parametrize("bad_schema,complaint", [
    ({"anyOf": [{"type": "string"}]}, "unsupported keywords"),
    ({"type": "object", "patternProperties": {"a": {}}}, "unsupported keywords"),
    ({"type": "string", "format": "uri"}, "unsupported keywords"),
    ({"$ref": "defs.json#/nope"}, "no such schema node"),
    ({"$ref": "#/definitions/Process", "type": "string"}, "sibling"),
    ({"type": "integer", "enum": [1, 2]}, "string enums"),
    ({"type": "array", "items": [{"type": "string"}]}, "single items"),
    ({"type": "object", "properties": {"not-an-identifier": {"type": "string"}}}, "identifier"),
])
def test_compiler_refuses_what_it_cannot_check(tmp_path, bad_schema, complaint):
    docs = minimal_roots({"field": bad_schema})
    docs["defs.json"] = {"definitions": {}}
    write_schemas(tmp_path, **docs)
    with pytest.raises(SchemaCompileError, match=complaint):
        generate(str(tmp_path))


def test_compiled_module_from_a_small_schema(tmp_path):
    docs = minimal_roots({"size": {"type": "integer", "minimum": 1, "maximum": 3},
                          "name": {"type": "string", "minLength": 1, "maxLength": 3, "pattern": "^[a-z]"},
                          "ratio": {"type": "number", "minimum": 0},
                          "tags": {"type": "array", "minItems": 1, "items": {"enum": ["a", "b"]}},
                          "closed": {"type": "object", "additionalProperties": False,
                                     "properties": {"ok": {"type": "boolean"}}}})
    write_schemas(tmp_path, **docs)
    namespace = {}
    exec(compile(generate(str(tmp_path)), "generated", "exec"), namespace)
    check, violation = namespace["check_config"], namespace["SchemaViolation"]
    check({"size": 2, "tags": ["a"], "closed": {"ok": True}, "name": "abc", "ratio": 0.5})
    for doc, path in [({"size": 0}, "$.size"), ({"size": 2.0}, "$.size"), ({"tags": []}, "$.tags"),
                      ({"tags": ["c"]}, "$.tags[0]"), ({"tags": [1]}, "$.tags[0]"),
                      ({"closed": {"other": 1}}, "$.closed.other"), ([], "$"), ({"name": ""}, "$.name"),
                      ({"name": "abcd"}, "$.name"), ({"name": "Abc"}, "$.name"), ({"ratio": -0.5}, "$.ratio"),
                      ({"ratio": True}, "$.ratio"), ({"ratio": "1"}, "$.ratio")]:
        with pytest.raises(violation) as raised:
            check(doc)
        assert raised.value.path == path, (doc, raised.value.path)
