"""ocirt pause ID: freeze every process of the container (runc semantics:
created or running containers only; "container not running" otherwise)."""
from ocirt.cli import require_id
from ocirt.errors import OcirtError
from ocirt.state import StateStore


def run(g, opts, args):
    from ocirt import cgroups
    store = StateStore(g.root)
    cid = require_id(args, "pause")
    with store.load(cid).lock():
        container = store.load(cid)
        status = container.status()
        if status == "paused":
            raise OcirtError("container already paused")
        if status not in ("running", "created"):
            raise OcirtError("container not running")
        cgroups.manager_of(container).freeze()
    return 0
