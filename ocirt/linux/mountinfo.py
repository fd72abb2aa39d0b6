"""Reading /proc/self/mountinfo and /proc/self/cgroup."""
import os


def _unescape(s):
    return s.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")


def mounts():
    """Yield (mount_root, mount_point, fstype, super_options) per mount."""
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fields = left.split()
            fstype, _source, superopts = (right.split() + ["", "", ""])[:3]
            yield _unescape(fields[3]), _unescape(fields[4]), fstype, superopts


def mount_point_of(path):
    """The mount point that contains ``path`` (longest matching prefix)."""
    path = os.path.realpath(path)
    best = "/"
    for _root, mp, _t, _o in mounts():
        if (path == mp or path.startswith(mp.rstrip("/") + "/")) and len(mp) > len(best):
            best = mp
    return best


def own_cgroups():
    """{controllers-key: path} from /proc/self/cgroup; v2 is under key ''."""
    out = {}
    with open("/proc/self/cgroup") as f:
        for line in f:
            _hid, controllers, path = line.rstrip("\n").split(":", 2)
            out[controllers] = path
    return out


def cgroup_hierarchies():
    """[(mount options for the controllers, mount point, sub dir name, own path)].

    v1 hierarchies carry their controllers (``cpu``, ``name=systemd``); the
    cgroup2 hierarchy has '' as controllers.
    """
    own = own_cgroups()
    out = []
    seen = set()
    for root, mp, fstype, superopts in mounts():
        if fstype == "cgroup2":
            key = ""
            controllers = ""
        elif fstype == "cgroup":
            opts = [o for o in superopts.split(",") if o not in ("rw", "ro") and "=" not in o or o.startswith("name=")]
            opts = [o for o in opts if o not in ("clone_children", "noprefix", "xattr", "cpuset_v2_mode",
                                                 "memory_recursiveprot", "memory_localevents", "nsdelegate")]
            controllers = ",".join(opts)
            key = controllers
        else:
            continue
        if mp in seen:
            continue
        seen.add(mp)
        path = own.get(key)
        if path is None:  # /proc/self/cgroup may order co-mounted controllers differently
            for k, v in own.items():
                if k and set(k.split(",")) == set(key.split(",")):
                    path = v
                    break
        path = path or "/"
        rel = path[len(root.rstrip("/")):] if root != "/" and path.startswith(root) else path
        out.append((controllers, mp, os.path.basename(mp), rel if rel != "/" else ""))
    return out
