import sys

from ocirt import jsonio

from ocirt.cli import require_id
from ocirt.state import StateStore


def run(g, opts, args):
    container = StateStore(g.root).load(require_id(args, "state"))
    sys.stdout.write(jsonio.dumps(container.oci_state()) + "\n")
    return 0
