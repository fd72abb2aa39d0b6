"""Compile schemas/*.json into ocirt/spec/_schema_checks.py: plain Python checks.

The runtime is re-executed for every verb, and ``import jsonschema`` alone costs
about ten times a bare interpreter start.  So the JSON schemas in ``schemas/``
(the source of truth, readable and testable with real jsonschema) are turned
into a module of straight-line ``isinstance``/``in``/``<=`` checks that is
committed next to this compiler and imported on the hot path instead.

    python3 -m ocirt.spec._schema_compiler           # regenerate
    python3 -m ocirt.spec._schema_compiler --check   # exit 1 if stale

Only the draft-04 keywords the schemas use are supported; anything else makes
the compiler stop with an error rather than silently check less than
jsonschema would.  ``tests/test_validate_equivalence.py`` holds the two to the
same verdicts.
"""
import json
import os
import re
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCHEMA_DIR = os.path.join(REPO, "schemas")
OUTPUT = os.path.join(REPO, "ocirt", "spec", "_schema_checks.py")

# public entry point -> (schema file, JSON pointer of the root node)
ROOTS = {
    "check_config": ("config-schema.json", ""),
    "check_process": ("config-schema.json", "/definitions/Process"),
    "check_state": ("state-schema.json", ""),
    "check_features": ("features-schema.json", ""),
}

SCALAR_KEYWORDS = {"type", "enum", "pattern", "minimum", "maximum", "minLength", "maxLength"}
CONTAINER_KEYWORDS = {"properties", "required", "additionalProperties", "items", "minItems", "maxItems"}
ANNOTATIONS = {"description", "$schema", "title", "definitions"}

TYPE_TESTS = {
    "string": "isinstance({v}, str)",
    "integer": "(isinstance({v}, int) and not isinstance({v}, bool))",
    "number": "(isinstance({v}, (int, float)) and not isinstance({v}, bool))",
    "boolean": "isinstance({v}, bool)",
    "object": "isinstance({v}, dict)",
    "array": "isinstance({v}, list)",
    "null": "{v} is None",
}
TYPE_NAMES = {"string": "a string", "integer": "an integer", "number": "a number", "boolean": "a boolean",
              "object": "an object", "array": "an array", "null": "null"}

HEADER = '''\
"""Checks generated from schemas/*.json by ocirt/spec/_schema_compiler.py: do not edit.

Regenerate with ``python3 -m ocirt.spec._schema_compiler``.  Each function
checks one schema node; a failure raises SchemaViolation(json_path, problem).
"""


class SchemaViolation(ValueError):
    def __init__(self, path, problem):
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


def _fail(path, problem):
    raise SchemaViolation(path, problem)


def member_path(path, key):
    """The JSON path of a member whose name comes from the document."""
    if key.isidentifier():
        return f"{path}.{key}"
    import json
    return f"{path}[{json.dumps(key)}]"


def show(value):
    import json
    text = json.dumps(value, default=repr)
    return text if len(text) <= 60 else text[:57] + "..."


class _Anchored:
    """An anchored pattern ``^...$`` made of character sets, each taken once,
    ``*`` or ``+`` times: matched without ``re``, whose import (enum,
    functools, collections) costs ~7 ms on every create.  The compiler only
    emits one when a greedy left-to-right walk is exact (a repeated set never
    shares a character with the set after it).  ``$`` is the end of the text,
    as in ECMA-262, which JSON Schema patterns follow."""
    __slots__ = ("source", "parts")

    def __init__(self, source, parts):
        self.source = source
        self.parts = parts  # ((chars, negated, min, repeats), ...)

    def search(self, text):
        i, n = 0, len(text)
        for chars, negated, least, repeats in self.parts:
            start = i
            while i < n and (text[i] in chars) != negated and (repeats or i == start):
                i += 1
            if i - start < least:
                return None
        return True if i == n else None


class _Pattern:
    """Any other pattern: compiled with ``re`` on first use."""
    __slots__ = ("source", "compiled")

    def __init__(self, source):
        self.source = source
        self.compiled = None

    def search(self, text):
        if self.compiled is None:
            import re
            self.compiled = re.compile(self.source.removesuffix("$") + "\\\\Z"
                                       if self.source.endswith("$") and not self.source.endswith("\\\\$")
                                       else self.source)
        return self.compiled.search(text)
'''


class SchemaCompileError(Exception):
    pass


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "]": "]", "[": "[", "-": "-", "^": "^", ".": ".",
            "$": "$"}


def anchored_parts(pattern):
    """``^...$`` of literals and ``[...]`` sets, each optionally ``*``/``+``,
    as _Anchored parts; None when the pattern needs a real regex engine."""
    if not (pattern.startswith("^") and pattern.endswith("$")) or pattern.endswith("\\$"):
        return None
    body, i, parts = pattern[1:-1], 0, []
    while i < len(body):
        if body[i] == "[":
            parsed = _character_set(body, i + 1)
            if parsed is None:
                return None
            chars, negated, i = parsed
        elif body[i].isalnum() or body[i] in "_:,- ":
            chars, negated, i = body[i], False, i + 1
        else:
            return None
        least, repeats = 1, False
        if i < len(body) and body[i] in "*+":
            least, repeats = (0 if body[i] == "*" else 1), True
            i += 1
        parts.append(("".join(sorted(set(chars))), negated, least, repeats))
    for (chars, negated, _, repeats), (following, following_negated, _, _) in zip(parts, parts[1:]):
        if repeats and (negated or following_negated or set(chars) & set(following)):
            return None  # a greedy walk could eat what the next part needs
    return tuple(parts)


def _character_set(body, i):
    """Parse ``[...]`` from just after its ``[``: (chars, negated, index after ``]``) or None."""
    negated = body.startswith("^", i)
    i += negated
    members = []  # (char, escaped)
    while i < len(body) and body[i] != "]":
        if body[i] == "\\":
            if body[i + 1:i + 2] not in _ESCAPES:
                return None
            members.append((_ESCAPES[body[i + 1]], True))
            i += 2
        else:
            members.append((body[i], False))
            i += 1
    if i >= len(body) or not members:
        return None
    chars, k = [], 0
    while k < len(members):
        if k + 2 < len(members) and members[k + 1] == ("-", False):
            low, high = ord(members[k][0]), ord(members[k + 2][0])
            if low > high:
                return None
            chars.extend(chr(c) for c in range(low, high + 1))
            k += 3
        else:
            chars.append(members[k][0])
            k += 1
    return "".join(chars), negated, i + 1


class _Compiler:
    def __init__(self, docs):
        self.docs = docs
        self.names = {}          # (file, pointer) -> function name
        self.taken = set()
        self.pending = []        # locations whose function is still to be written
        self.functions = []      # generated source, one function each
        self.regexes = {}        # pattern -> module-level constant name
        self.name_sets = {}      # tuple of property names -> constant name

    # -- schema navigation -------------------------------------------------
    def lookup(self, file, pointer):
        try:
            node = self.docs[file]
            for part in pointer.split("/")[1:]:
                node = node[part.replace("~1", "/").replace("~0", "~")]
        except (KeyError, TypeError):
            raise SchemaCompileError(f"{file}#{pointer}: no such schema node") from None
        return node

    def resolve(self, file, pointer, node):
        """Follow $ref chains to the node that carries the checks."""
        seen = set()
        while "$ref" in node:
            if set(node) - {"$ref", "description"}:
                raise SchemaCompileError(f"{file}#{pointer}: $ref with sibling keywords (draft-04 ignores them)")
            ref_file, _, ref_pointer = node["$ref"].partition("#")
            file = ref_file or file
            pointer = ref_pointer
            if (file, pointer) in seen:
                raise SchemaCompileError(f"{file}#{pointer}: $ref cycle")
            seen.add((file, pointer))
            node = self.lookup(file, pointer)
        unknown = set(node) - SCALAR_KEYWORDS - CONTAINER_KEYWORDS - ANNOTATIONS
        if unknown:
            raise SchemaCompileError(f"{file}#{pointer}: unsupported keywords {sorted(unknown)}")
        return file, pointer, node

    @staticmethod
    def is_leaf(node):
        return not (set(node) & CONTAINER_KEYWORDS)

    def function_for(self, file, pointer):
        key = (file, pointer)
        if key not in self.names:
            stem = file[:-len(".json")].replace("-schema", "")
            parts = [p for p in pointer.split("/")[1:] if p not in ("definitions", "properties")]
            if parts and stem.endswith("-" + parts[0]):      # config-linux.json#/linux
                parts.pop(0)
            name = re.sub(r"\W", "_", "_".join(["_check", stem] + parts))
            while name in self.taken:
                name += "_"
            self.taken.add(name)
            self.names[key] = name
            self.pending.append(key)
        return self.names[key]

    def regex(self, pattern):
        if pattern not in self.regexes:
            re.compile(pattern)
            self.regexes[pattern] = f"_RE_{len(self.regexes)}"
        return self.regexes[pattern]

    def pattern_constant(self, pattern, name):
        parts = anchored_parts(pattern)
        if parts is None:
            return f"{name} = _Pattern({pattern!r})"
        return f"{name} = _Anchored({pattern!r}, {parts!r})"

    def name_set(self, names):
        names = tuple(sorted(names))
        if names not in self.name_sets:
            self.name_sets[names] = f"_NAMES_{len(self.name_sets)}"
        return self.name_sets[names]

    # -- code generation ---------------------------------------------------
    def scalar_checks(self, node, v, path, indent):
        """Lines checking the scalar keywords of node against variable v.

        path is a Python expression for the JSON path, evaluated only on failure.
        Returns (lines, known_type): the JSON type v is known to have afterwards.
        """
        pad = " " * indent
        lines = []
        known = None
        if "type" in node:
            types = node["type"] if isinstance(node["type"], list) else [node["type"]]
            for t in types:
                if t not in TYPE_TESTS:
                    raise SchemaCompileError(f"unknown type {t!r}")
            test = " or ".join(TYPE_TESTS[t].format(v=v) for t in types)
            wanted = " or ".join(TYPE_NAMES[t] for t in types)
            lines.append(f"{pad}if not {test}:" if len(types) == 1 else f"{pad}if not ({test}):")
            lines.append(f"{pad}    _fail({path}, {'must be ' + wanted!r})")
            if len(types) == 1:
                known = types[0]

        def guarded(json_type, condition, problem):
            if known == json_type or (json_type == "number" and known == "integer"):
                lines.append(f"{pad}if {condition}:")
            else:
                lines.append(f"{pad}if {TYPE_TESTS[json_type].format(v=v)} and {condition}:")
            lines.append(f"{pad}    _fail({path}, {problem})")

        if "enum" in node:
            values = node["enum"]
            if not all(isinstance(x, str) for x in values):
                raise SchemaCompileError("only string enums are supported")
            lines.append(f"{pad}if {v} not in {tuple(values)!r}:")
            lines.append(f"{pad}    _fail({path}, show({v}) + {' is not one of: ' + ', '.join(values)!r})")
        if "pattern" in node:
            guarded("string", f"{self.regex(node['pattern'])}.search({v}) is None",
                    f"show({v}) + {' does not match ' + node['pattern']!r}")
        if "minLength" in node:
            guarded("string", f"len({v}) < {node['minLength']!r}",
                    repr(f"must be at least {node['minLength']} characters"))
        if "maxLength" in node:
            guarded("string", f"len({v}) > {node['maxLength']!r}",
                    repr(f"must be at most {node['maxLength']} characters"))
        low, high = node.get("minimum"), node.get("maximum")
        if low is not None and high is not None:
            guarded("number", f"not {low!r} <= {v} <= {high!r}", f"f'{{{v}}} is out of range [{low}, {high}]'")
        elif low is not None:
            guarded("number", f"{v} < {low!r}", f"f'{{{v}}} is less than the minimum {low}'")
        elif high is not None:
            guarded("number", f"{v} > {high!r}", f"f'{{{v}}} is more than the maximum {high}'")
        return lines, known

    def check_value(self, file, pointer, node, value, path_expr, indent, bind=None):
        """Lines checking the expression value against a subschema.

        A leaf schema is checked inline (after binding value to the variable
        bind, if given); anything else is a call to the node's own function.
        """
        file, pointer, node = self.resolve(file, pointer, node)
        pad = " " * indent
        if not self.is_leaf(node):
            return [f"{pad}{self.function_for(file, pointer)}({value}, {path_expr})"]
        checks = self.scalar_checks(node, bind or value, path_expr, indent)[0]
        if checks and bind:
            checks.insert(0, f"{pad}{bind} = {value}")
        return checks

    def write_function(self, file, pointer):
        node = self.lookup(file, pointer)
        file, pointer, node = self.resolve(file, pointer, node)
        name = self.names[(file, pointer)]
        lines = [f"def {name}(x, path):"]
        where = f"{file}#{pointer}" if pointer else file
        lines.append(f'    """{where}"""')
        scalar, known = self.scalar_checks(node, "x", "path", 4)
        lines += scalar
        body = []
        if set(node) & {"properties", "required", "additionalProperties"}:
            body += self.object_checks(file, pointer, node)
            lines += self.type_guarded("object", known, body)
        if set(node) & {"items", "minItems", "maxItems"}:
            lines += self.type_guarded("array", known, self.array_checks(file, pointer, node))
        self.functions.append("\n".join(lines))

    @staticmethod
    def type_guarded(json_type, known, body):
        if known == json_type:
            return ["    " + line for line in body]
        return [f"    if {TYPE_TESTS[json_type].format(v='x')}:"] + ["        " + line for line in body]

    def object_checks(self, file, pointer, node):
        lines = []
        properties = node.get("properties", {})
        for key in node.get("required", []):
            if not key.isidentifier():
                raise SchemaCompileError(f"{file}#{pointer}: property name {key!r} is not an identifier")
            lines.append(f"if {key!r} not in x:")
            lines.append(f"    _fail(path + {'.' + key!r}, 'is required')")
        for key, sub in properties.items():
            if not key.isidentifier():
                raise SchemaCompileError(f"{file}#{pointer}: property name {key!r} is not an identifier")
            checks = self.check_value(file, f"{pointer}/properties/{key}", sub, f"x[{key!r}]",
                                      f"path + {'.' + key!r}", 4, bind="v")
            if checks:
                lines.append(f"if {key!r} in x:")
                lines += checks
        extra = node.get("additionalProperties", True)
        if extra is not True:
            lines.append("for key, v in x.items():")
            if properties:
                lines.append(f"    if key in {self.name_set(properties)}:")
                lines.append("        continue")
            if extra is False:
                lines.append("    _fail(member_path(path, key), 'is not an allowed field')")
            else:
                lines += self.check_value(file, f"{pointer}/additionalProperties", extra, "v",
                                          "member_path(path, key)", 4)
        return lines

    def array_checks(self, file, pointer, node):
        lines = []
        if "minItems" in node:
            lines.append(f"if len(x) < {node['minItems']!r}:")
            lines.append(f"    _fail(path, {'must have at least %d item(s)' % node['minItems']!r})")
        if "maxItems" in node:
            lines.append(f"if len(x) > {node['maxItems']!r}:")
            lines.append(f"    _fail(path, {'must have at most %d item(s)' % node['maxItems']!r})")
        if "items" in node:
            if not isinstance(node["items"], dict):
                raise SchemaCompileError(f"{file}#{pointer}: only a single items schema is supported")
            checks = self.check_value(file, f"{pointer}/items", node["items"], "v", 'f"{path}[{i}]"', 4)
            if checks:
                lines.append("for i, v in enumerate(x):")
                lines += checks
        return lines

    def compile(self):
        entry_points = []
        for public, (file, pointer) in ROOTS.items():
            node = self.lookup(file, pointer)
            rfile, rpointer, _ = self.resolve(file, pointer, node)
            target = self.function_for(rfile, rpointer)
            entry_points.append(f"def {public}(document):\n    {target}(document, '$')")
        while self.pending:
            self.write_function(*self.pending.pop(0))
        consts = [self.pattern_constant(pattern, name) for pattern, name in self.regexes.items()]
        consts += [f"{name} = frozenset({names!r})" for names, name in self.name_sets.items()]
        parts = [HEADER, "\n".join(consts)] if consts else [HEADER]
        parts += entry_points + self.functions
        return "\n\n\n".join(part.rstrip("\n") for part in parts) + "\n"


def load_schemas(schema_dir=SCHEMA_DIR):
    docs = {}
    for name in sorted(os.listdir(schema_dir)):
        if name.endswith(".json"):
            with open(os.path.join(schema_dir, name)) as f:
                docs[name] = json.load(f)
    return docs


def generate(schema_dir=SCHEMA_DIR):
    """The source text of the checks module for the schemas in schema_dir."""
    return _Compiler(load_schemas(schema_dir)).compile()


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    source = generate()
    current = open(OUTPUT).read() if os.path.exists(OUTPUT) else None
    if "--check" in argv:
        if current != source:
            print(f"{os.path.relpath(OUTPUT, REPO)} is stale: run python3 -m ocirt.spec._schema_compiler",
                  file=sys.stderr)
            return 1
        return 0
    if current != source:
        tmp = OUTPUT + ".tmp"
        with open(tmp, "w") as f:
            f.write(source)
        os.replace(tmp, OUTPUT)
    return 0


if __name__ == "__main__":
    sys.exit(main())
