from ocirt.cli import require_id
from ocirt.container import start
from ocirt.state import StateStore


def run(g, opts, args):
    container = StateStore(g.root).load(require_id(args, "start"))
    with container.lock():
        start(container)
    return 0
