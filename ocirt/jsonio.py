"""JSON for the per-verb hot path without importing ``json``.

``import json`` pulls in ``re`` and ``enum`` (~5 ms here, measured with
``-X importtime``): a tenth of a `state` call.  CPython's C accelerator
``_json`` does the actual work for ``json`` anyway; this drives it directly
and falls back to ``json`` where ``_json`` is missing.  Output is compact,
ASCII-escaped JSON, which every client parses.
"""
try:
    import _json
except ImportError:  # pragma: no cover - other interpreters
    _json = None


class _DecodeContext:
    # the attributes _json.make_scanner reads from json.JSONDecoder
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    memo = {}

    @staticmethod
    def parse_constant(name):
        return {"-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": float("nan")}[name]


def _whitespace(s, i):
    n = len(s)
    while i < n and s[i] in " \t\n\r":
        i += 1
    return i


def loads(data):
    """Parse one JSON document; ValueError on anything else (like json.loads)."""
    if isinstance(data, (bytes, bytearray)):
        data = data.decode("utf-8-sig" if data[:3] == b"\xef\xbb\xbf" else "utf-8")
    if _json is None:
        import json
        return json.loads(data)
    scan = _json.make_scanner(_DecodeContext)
    start = _whitespace(data, 0)
    try:
        obj, end = scan(data, start)
    except StopIteration as e:
        raise ValueError(f"Expecting value: char {e.value}") from None
    if _whitespace(data, end) != len(data):
        raise ValueError(f"Extra data: char {end}")
    return obj


def _unserialisable(o):
    raise TypeError(f"Object of type {type(o).__name__} is not JSON serializable")


def dumps(obj):
    if _json is None:
        import json
        return json.dumps(obj, separators=(",", ":"))
    encode = _json.make_encoder(None, _unserialisable, _json.encode_basestring_ascii, None, ":", ",",
                                False, False, True)
    return "".join(encode(obj, 0))


def load(f):
    return loads(f.read())
