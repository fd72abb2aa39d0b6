from ocirt.cli import require_id
from ocirt.container import kill, parse_signal
from ocirt.errors import UsageError
from ocirt.state import StateStore


def run(g, opts, args):
    cid = require_id(args, "kill", extra_ok=True)
    if len(args) > 2:
        raise UsageError('"kill" requires a container id and at most one signal')
    sig = parse_signal(args[1] if len(args) > 1 else opts["signal"])
    kill(StateStore(g.root).load(cid), sig, all_processes=opts["all"])
    return 0
