import json
import sys


def run(g, opts, args):
    from ocirt.features import features
    sys.stdout.write(json.dumps(features(), indent=4) + "\n")
    return 0
