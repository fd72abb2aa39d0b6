"""ocirt resume ID: thaw a paused container ("container not paused" otherwise)."""
from ocirt.cli import require_id
from ocirt.errors import OcirtError
from ocirt.state import StateStore


def run(g, opts, args):
    from ocirt import cgroups
    store = StateStore(g.root)
    cid = require_id(args, "resume")
    with store.load(cid).lock():
        container = store.load(cid)
        if container.status() != "paused":
            raise OcirtError("container not paused")
        cgroups.manager_of(container).thaw()
    return 0
