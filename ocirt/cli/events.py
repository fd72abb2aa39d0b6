"""ocirt events [--stats] [--interval 5s] ID

One JSON object per line, as go-runc decodes it:
``{"type":"stats","id":ID,"data":{...}}`` every interval and
``{"type":"oom","id":ID}`` as soon as the kernel reports an OOM.
``--stats`` prints one stats event and exits.  The stream ends when the
container stops.
"""
import json
import re
import select
import sys

from ocirt.cli import require_id
from ocirt.errors import OcirtError, UsageError
from ocirt.state import StateStore

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text):
    """A Go time.Duration string ("5s", "1m30s", "250ms") in seconds."""
    parts = re.findall(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)", text or "")
    if not parts or "".join(n + u for n, u in parts) != text:
        raise UsageError(f"invalid --interval {text!r}: expected a duration such as 5s or 500ms")
    seconds = sum(float(n) * _UNITS[u] for n, u in parts)
    if seconds <= 0:
        raise UsageError("--interval must be greater than 0")
    return seconds


def _emit(event):
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


def run(g, opts, args):
    from ocirt import cgroups
    cid = require_id(args, "events")
    interval = parse_duration(opts["interval"])
    store = StateStore(g.root)
    container = store.load(cid)
    if container.status() == "stopped":
        raise OcirtError("container not running")
    manager = cgroups.manager_of(container)
    if opts["stats"]:
        _emit({"type": "stats", "id": cid, "data": manager.stats()})
        return 0
    try:
        watcher = manager.oom_watcher()
    except OcirtError:
        watcher = None  # no memory controller: stats only
    import gc
    gc.enable()  # the native launcher turns the collector off; this verb runs for as long as the container
    poller = select.poll()
    if watcher:
        poller.register(watcher.fileno(), watcher.poll_mask)
    try:
        while True:
            ready = poller.poll(int(interval * 1000))
            if container.status() == "stopped":
                return 0
            if ready and watcher:
                for _ in range(watcher.read()):
                    _emit({"type": "oom", "id": cid})
                continue
            _emit({"type": "stats", "id": cid, "data": manager.stats()})
    except BrokenPipeError:
        return 0
    finally:
        if watcher:
            watcher.close()
