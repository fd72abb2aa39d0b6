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


def move_net_devices(net_devices, init_pid):
    """runtime-spec netDevices: move host interfaces into the container, renamed as asked."""
    if not net_devices:
        return
    try:
        from pyroute2 import IPRoute, NetNS  # noqa: F401 - heavy; only here
    except ImportError:
        raise OcirtError("config.json: linux.netDevices: pyroute2 is not installed") from None
    from pyroute2 import IPRoute
    netns_fd = os.open(f"/proc/{init_pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        with IPRoute() as ipr:
            for host_name, dev in net_devices.items():
                idx = ipr.link_lookup(ifname=host_name)
                if not idx:
                    raise OcirtError(f"config.json: linux.netDevices.{host_name}: no such host interface")
                new_name = (dev or {}).get("name") or host_name
                try:
                    ipr.link("set", index=idx[0], net_ns_fd=netns_fd, ifname=new_name)
                except Exception as e:  # pyroute2 raises NetlinkError
                    raise OcirtError(f"config.json: linux.netDevices.{host_name}: cannot move into the "
                                     f"container as {new_name}: {e}") from None
    finally:
        os.close(netns_fd)
