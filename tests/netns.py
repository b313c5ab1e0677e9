"""Separate (simulated) hosts on one machine: a network namespace per host, on one LAN.

The LAN is a bridge in a namespace of its own, the "switch" host (address `<subnet>.1`);
each other host is a namespace joined to the bridge by a veth pair. The veth ends are
created directly inside the namespaces and the addresses exist only there, so no traffic
ever reaches the machine's own network. The filesystem stays shared: namespaces separate
only the network. A test thread enters a host with `inside` to talk from there. Needs root
and `ip` (iproute2); `simulated_network` skips the test otherwise.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

CLONE_NEWNET = 0x40000000


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=10)


@dataclass(frozen=True)
class Host:
    namespace: str
    address: str
    link: str  # its veth end, inside its namespace


@dataclass
class Network:
    switch: str  # the namespace holding the bridge
    switch_address: str
    hosts: dict[str, Host] = field(default_factory=dict)

    def namespaces(self) -> list[str]:
        return [self.switch, *(host.namespace for host in self.hosts.values())]

    def cut(self, name: str) -> None:
        """Unplug host `name` from the LAN."""
        ip("-n", self.hosts[name].namespace, "link", "set", self.hosts[name].link, "down")

    def mend(self, name: str) -> None:
        """Plug host `name` back in."""
        ip("-n", self.hosts[name].namespace, "link", "set", self.hosts[name].link, "up")


def build_network(tag: str, subnet: str, addresses: dict[str, str]) -> Network:
    """A switch at `<subnet>.1` and one host per entry of `addresses` (name → address),
    their namespaces named `dpip-<tag>-...`; on failure, what was made is removed."""
    network = Network(f"dpip-{tag}-switch", f"{subnet}.1")
    try:
        ip("netns", "add", network.switch)
        ip("-n", network.switch, "link", "set", "lo", "up")
        ip("-n", network.switch, "link", "add", "br0", "type", "bridge")
        ip("-n", network.switch, "addr", "add", f"{network.switch_address}/24", "dev", "br0")
        ip("-n", network.switch, "link", "set", "br0", "up")
        for index, (name, address) in enumerate(addresses.items(), start=1):
            host = Host(f"dpip-{tag}-{index}", address, f"eth{index}")
            switch_end = f"port{index}"
            ip("netns", "add", host.namespace)
            network.hosts[name] = host
            ip(
                *("link", "add", switch_end, "netns", network.switch, "type", "veth"),
                *("peer", "name", host.link, "netns", host.namespace),
            )
            ip("-n", network.switch, "link", "set", switch_end, "master", "br0", "up")
            ip("-n", host.namespace, "link", "set", "lo", "up")
            ip("-n", host.namespace, "addr", "add", f"{address}/24", "dev", host.link)
            ip("-n", host.namespace, "link", "set", host.link, "up")
    except BaseException:
        remove_network(network)
        raise
    return network


def remove_network(network: Network) -> None:
    for namespace in network.namespaces():
        subprocess.run(["ip", "netns", "del", namespace], capture_output=True, timeout=10)


@contextlib.contextmanager
def simulated_network(tag: str, subnet: str, addresses: dict[str, str]) -> Iterator[Network]:
    """`build_network` for a `with` block, removed at its end; skips the test where
    namespaces cannot be made (no root, no iproute2)."""
    if shutil.which("ip") is None:
        pytest.skip("'ip' (iproute2) is missing: cannot simulate separate hosts")
    try:
        network = build_network(tag, subnet, addresses)
    except subprocess.CalledProcessError as e:
        pytest.skip(f"cannot create network namespaces and veth pairs here: {e.stderr.strip()}")
    try:
        yield network
    finally:
        remove_network(network)


def in_namespace(namespace: str, argv: list[str]) -> list[str]:
    """`argv` run inside `namespace` (`ip` execs it: the same pid)."""
    return ["ip", "netns", "exec", namespace, *argv]


@contextlib.contextmanager
def inside(namespace: str) -> Iterator[None]:
    """Run this thread (and the processes it starts) in a network namespace meanwhile."""
    libc = ctypes.CDLL(None, use_errno=True)
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{namespace}", os.O_RDONLY)
    try:
        if libc.setns(target, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns into {namespace} failed")
        try:
            yield
        finally:
            if libc.setns(home, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns back home failed")
    finally:
        os.close(home)
        os.close(target)
