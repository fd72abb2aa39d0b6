from ocirt.cli import require_id
from ocirt.container import delete
from ocirt.errors import ContainerNotFound
from ocirt.state import StateStore


def run(g, opts, args):
    cid = require_id(args, "delete")
    store = StateStore(g.root)
    try:
        container = store.load(cid)
        with container.lock():
            container = store.load(cid)  # re-read under the lock
            delete(store, container, force=opts["force"])
    except ContainerNotFound:
        if opts["force"]:
            store.remove(cid)  # a create that died half-way leaves only a directory
            return 0
        raise
    return 0
