"""Network namespace setup.

``lo`` is brought up with one SIOCSIFFLAGS ioctl: every container with a new
network namespace needs it, and importing pyroute2 costs ~200 ms.
pyroute2 is imported only for ``linux.netDevices``.
"""
import os

from ocirt.errors import OcirtError


def loopback_up():
    from ocirt.linux import sys as lsys
    lsys.link_up("lo")


# include/uapi/linux/if_addr.h and rtnetlink.h; pyroute2 reports both raw
IFA_F_PERMANENT = 0x80
RT_SCOPE_UNIVERSE = 0


def move_net_devices(net_devices, init_pid):
    """runtime-spec netDevices (config-linux.md "Network Devices"): move each
    host interface into the container's network namespace, renamed as asked
    (a "%d" template lets the kernel pick the number), re-add its permanent
    global-scope addresses (a move drops them) and bring it up."""
    if not net_devices:
        return
    try:
        from pyroute2 import IPRoute
    except ImportError:
        raise OcirtError("config.json: linux.netDevices: pyroute2 is not installed") from None
    from ocirt.linux import sys as lsys
    netns_fd = os.open(f"/proc/{init_pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    own_fd = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        # a netlink socket belongs to the namespace it was opened in
        lsys.setns(netns_fd, lsys.C.CLONE_NEWNET)
        try:
            inside = IPRoute()
        finally:
            lsys.setns(own_fd, lsys.C.CLONE_NEWNET)
        with inside, IPRoute() as host:
            for host_name, dev in net_devices.items():
                _move_one(host, inside, netns_fd, host_name, (dev or {}).get("name") or host_name)
    finally:
        os.close(netns_fd)
        os.close(own_fd)


def _move_one(host, inside, netns_fd, host_name, new_name):
    where = f"config.json: linux.netDevices.{host_name}"
    idx = host.link_lookup(ifname=host_name)
    if not idx:
        raise OcirtError(f"{where}: no such host interface")
    mac = host.get_links(idx[0])[0].get_attr("IFLA_ADDRESS")
    addresses = [_address_of(msg) for msg in host.get_addr(index=idx[0]) if _is_permanent_global(msg)]
    if "%" not in new_name and inside.link_lookup(ifname=new_name):
        raise OcirtError(f"{where}: the container already has a device named {new_name}")
    try:
        host.link("set", index=idx[0], net_ns_fd=netns_fd, ifname=new_name)
    except Exception as e:  # pyroute2 raises NetlinkError
        raise OcirtError(f"{where}: cannot move into the container as {new_name}: {e}") from None
    moved = _find_moved(inside, new_name, mac)
    if moved is None:
        raise OcirtError(f"{where}: moved as {new_name}, but it cannot be found in the container")
    try:
        for address in addresses:
            inside.addr("add", index=moved, **address)
        inside.link("set", index=moved, state="up")
    except Exception as e:
        raise OcirtError(f"{where}: cannot restore its addresses or bring it up in the container: {e}") from None


def _is_permanent_global(msg):
    flags = msg.get_attr("IFA_FLAGS")
    flags = msg["flags"] if flags is None else flags
    return bool(flags & IFA_F_PERMANENT) and msg["scope"] == RT_SCOPE_UNIVERSE


def _address_of(msg):
    address = {"address": msg.get_attr("IFA_LOCAL") or msg.get_attr("IFA_ADDRESS"),
               "prefixlen": msg["prefixlen"], "family": msg["family"]}
    peer = msg.get_attr("IFA_ADDRESS")
    if msg.get_attr("IFA_LOCAL") and peer and peer != address["address"]:
        address["peer"] = peer  # point-to-point
    if msg.get_attr("IFA_BROADCAST"):
        address["broadcast"] = msg.get_attr("IFA_BROADCAST")
    return address


def _find_moved(inside, new_name, mac):
    """The index of the moved device: by name, or for a "%d" template the
    device with its hardware address whose name fits the template."""
    if "%" not in new_name:
        found = inside.link_lookup(ifname=new_name)
        return found[0] if found else None
    prefix, _, suffix = new_name.partition("%d")
    for link in inside.get_links():
        name = link.get_attr("IFLA_IFNAME") or ""
        if (link.get_attr("IFLA_ADDRESS") == mac and name.startswith(prefix) and name.endswith(suffix)
                and name[len(prefix):len(name) - len(suffix)].isdigit()):
            return link["index"]
    return None
