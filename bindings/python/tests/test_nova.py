"""Nova's view: a flavor-like guest (2 NUMA nodes, 4 NICs, 2 passthrough devices on
node 1, 8 hotplug ports reserved) → plan → libvirt XML → defined and started in the live
libvirt → capacity of the running guest → a NIC hot-added live at the planned address
and found there. Every domain is destroyed and undefined at the end, pass or fail.

This machine has no host devices to pass through, so each planned <hostdev> is stood in
for, at its planned address, by an emulated PCIe endpoint (an e1000e NIC): what is tested
is that the addresses devaddr chose are ones libvirt and QEMU accept and use.
"""

import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET

import pytest

import devaddr
from conftest import require

URI = "qemu:///system"

FLAVOR = {
    "machine": "q35",
    "policy": {"numa_nodes": 2, "hotplug_reserve": 8},
    "devices": [
        {"id": "net0", "kind": "virtio-net", "numa_node": 0},
        {"id": "net1", "kind": "virtio-net", "numa_node": 0},
        {"id": "net2", "kind": "virtio-net", "numa_node": 1},
        {"id": "net3", "kind": "virtio-net", "numa_node": 1},
        {"id": "gpu0", "kind": "vfio-pci", "numa_node": 1, "host": "0000:65:00.0"},
        {"id": "gpu1", "kind": "vfio-pci", "numa_node": 1, "host": "0000:66:00.0"},
    ],
}


def virsh(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    p = subprocess.run(["virsh", "-c", URI, *args], capture_output=True, text=True)
    if check and p.returncode != 0:
        raise AssertionError(f"virsh {' '.join(args)}: {p.stderr.strip()}")
    return p


@pytest.fixture
def libvirt():
    require(shutil.which("virsh") is not None, "virsh is not installed")
    up = subprocess.run(["virsh", "-c", URI, "uri"], capture_output=True).returncode == 0
    require(up, f"libvirtd is not reachable at {URI} (run ../shared/tools/libvirt-oracle/setup.sh)")


@pytest.fixture
def domain_name(libvirt):
    """A unique domain name, destroyed and undefined after the test whatever happens."""
    name = f"h-bind-nova-{os.getpid()}"
    yield name
    virsh("destroy", name, check=False)
    virsh("undefine", "--nvram", name, check=False)


def node_of(plan, bus):
    """The NUMA node of the expander bus that PCI bus `bus` sits below (None: the root)."""
    by_index = {c["index"]: c for c in plan["controllers"] if "index" in c}
    c = by_index.get(bus)
    while c is not None:
        if "numa_node" in c:
            return c["numa_node"]
        parent = c.get("address", {}).get("bus")
        c = by_index.get(parent) if parent not in (None, c["index"]) else None
    return None


def stand_in_for_hostdevs(xml: str) -> str:
    dom = ET.fromstring(xml)
    devices = dom.find("devices")
    for h in devices.findall("hostdev"):
        i = list(devices).index(h)
        devices.remove(h)
        nic = ET.Element("interface", type="user")
        ET.SubElement(nic, "model", type="e1000e")
        for keep in ("alias", "address"):
            nic.append(h.find(keep))
        devices.insert(i, nic)
    return ET.tostring(dom, encoding="unicode")


def pci(addr) -> tuple:
    return (addr["bus"], addr["slot"], addr["function"])


def live_address_of(name: str, alias: str):
    """The PCI address of the device with `alias` in the running domain's XML."""
    dom = ET.fromstring(virsh("dumpxml", name).stdout)
    for dev in dom.find("devices"):
        a = dev.find("alias")
        if a is not None and a.get("name") == alias:
            ad = dev.find("address")
            return tuple(int(ad.get(k), 16) for k in ("bus", "slot", "function"))
    return None


def test_flavor_planned_started_hot_added(domain_name, tmp_path):
    plan = devaddr.plan({**FLAVOR, "name": domain_name})
    devs = {d["id"]: d for d in plan["devices"]}
    for gpu in ("gpu0", "gpu1"):
        assert node_of(plan, devs[gpu]["address"]["bus"]) == 1, f"{gpu} is not below node 1"
    for nic, node in (("net0", 0), ("net1", 0), ("net2", 1), ("net3", 1)):
        assert node_of(plan, devs[nic]["address"]["bus"]) == node, nic
    rows = devaddr.capacity(plan, ["virtio-net"])
    assert rows[0]["live"] == 8, rows

    xml = devaddr.plan_text({**FLAVOR, "name": domain_name}, "libvirt")
    f = tmp_path / "domain.xml"
    f.write_text(stand_in_for_hostdevs(xml))
    virsh("define", str(f))
    virsh("start", domain_name)
    assert "running" in virsh("domstate", domain_name).stdout
    for dev_id, d in devs.items():
        assert live_address_of(domain_name, f"ua-{dev_id}") == pci(d["address"]), dev_id

    # The running guest as libvirt reports it: 8 more NICs fit live, as planned.
    running = virsh("dumpxml", domain_name).stdout
    live_rows = devaddr.capacity(running, ["virtio-net"], name="running domain")
    assert live_rows[0]["live"] == 8, live_rows

    # Hot-add a NIC at the address devaddr plans for it, and find it there.
    new = [{"id": "net4", "kind": "virtio-net"}]
    after = devaddr.hotplug(plan, new)
    want = pci({d["id"]: d for d in after["devices"]}["net4"]["address"])
    device = devaddr.hotplug_devices(plan, new)["net4"]
    if "<interface" in device:  # a network the host has: user networking
        device = re.sub(r"<interface type='[^']*'>", "<interface type='user'>", device)
        device = re.sub(r"\s*<source [^>]*/>", "", device)
    g = tmp_path / "net4.xml"
    g.write_text(device)
    virsh("attach-device", domain_name, str(g), "--live")
    assert live_address_of(domain_name, "ua-net4") == want
    iflist = virsh("domiflist", domain_name).stdout
    assert len(re.findall(r"\buser\b", iflist)) == 7, iflist
