"""ocirt ps [--format table|json] ID [ps args...]

json: a bare array of host pids (what containerd's shim decodes).
table: the host ``ps`` (default ``-ef``) filtered to the container's pids,
header kept, as runc does: the PID column is found by its header name.
"""
import json
import sys

from ocirt.cli import require_id
from ocirt.errors import OcirtError, UsageError
from ocirt.state import StateStore


def run(g, opts, args):
    from ocirt import cgroups
    cid = require_id(args, "ps", extra_ok=True)
    container = StateStore(g.root).load(cid)
    pids = cgroups.manager_of(container).procs() if container.cgroup else []
    fmt = opts["format"]
    if fmt == "json":
        sys.stdout.write(json.dumps(pids) + "\n")
        return 0
    if fmt != "table":
        raise UsageError(f"invalid format option: {fmt}")
    import subprocess  # only the table form runs ps (containerd asks for json)
    ps_args = args[1:] or ["-ef"]
    try:
        out = subprocess.run(["ps", *ps_args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    except FileNotFoundError:
        raise OcirtError("ps: the host has no ps command") from None
    if out.returncode != 0:
        raise OcirtError(f"ps {' '.join(ps_args)} failed: {out.stdout.strip()}")
    lines = out.stdout.split("\n")
    header = lines[0].split()
    if "PID" not in header:
        raise OcirtError("couldn't find PID field in ps output")
    column = header.index("PID")
    wanted = set(pids)
    keep = [lines[0]]
    for line in lines[1:]:
        fields = line.split()
        if len(fields) > column and fields[column].isdigit() and int(fields[column]) in wanted:
            keep.append(line)
    sys.stdout.write("\n".join(keep) + "\n")
    return 0
