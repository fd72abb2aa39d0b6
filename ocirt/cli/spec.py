import json
import os

from ocirt.errors import OcirtError
from ocirt.spec.default import default_spec


def run(g, opts, args):
    path = os.path.join(opts["bundle"], "config.json")
    if os.path.exists(path):
        raise OcirtError(f"File {path} exists. Remove it first")
    with open(path, "w") as f:
        json.dump(default_spec(rootless=opts["rootless"]), f, indent="\t")
        f.write("\n")
    return 0
