import sys

from ocirt import jsonio

from ocirt.state import StateStore


def run(g, opts, args):
    containers = StateStore(g.root).list()
    if opts["quiet"]:
        sys.stdout.write("".join(c.id + "\n" for c in containers))
        return 0
    states = [c.oci_state() for c in containers]
    if opts["format"] == "json":
        sys.stdout.write(jsonio.dumps(states) + "\n")
        return 0
    rows = [("ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER")]
    rows += [(s["id"], str(s["pid"]), s["status"], s["bundle"], s["created"] or "", s["owner"]) for s in states]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        sys.stdout.write("   ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() + "\n")
    return 0
