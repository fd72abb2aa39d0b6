import json
import sys

from ocirt.cli import require_id
from ocirt.state import StateStore


def run(g, opts, args):
    container = StateStore(g.root).load(require_id(args, "state"))
    sys.stdout.write(json.dumps(container.oci_state(), indent=2) + "\n")
    return 0
