# A second random-spec generator, written apart from tests/common/specgen.rs with other
# distributions (NUMA-heavy, 45 % of specs ordered with 10-100 % of their devices in the
# order, reserves up to 48, per-node reserves, groups, drives, USB): inputs the planner was
# not tuned on. Valid by construction (specs that parse; many do not fit).
#
#   python3 tests/specgen2.py OUT_DIR LO..HI      (DEVADDR_GEN=second tests/worst_case_cli.sh)
import os
import random
import sys

out = sys.argv[1]
lo, hi = map(int, sys.argv[2].split('..'))
os.makedirs(out, exist_ok=True)
PCI = ["virtio-net","virtio-blk","virtio-scsi","virtio-rng","virtio-gpu","virtio-serial","virtio-input",
       "e1000","rtl8139","ich9-intel-hda","i6300esb","pci-serial","piix3-uhci","ich9-ahci"]
PCIE = ["e1000e","nvme","vfio-pci","qemu-xhci"]
for seed in range(lo, hi):
    r = random.Random(seed * 7919 + 13)
    machine = r.choice(["q35","q35","pc","virt","virt"])
    express = machine != "pc"
    n = int(round(2 ** r.uniform(0, 11)))
    n = max(1, min(n, 2000))
    nodes = r.choice([0, 1, 2, 2, 4, 4, 8, 8, 12, 16])
    pol = []
    if r.random() < 0.6: pol.append("preset: " + r.choice(["libvirt","hotplug-ready","numa","dense"]))
    if nodes: pol.append(f"numa_nodes: {nodes}")
    if r.random() < 0.6: pol.append(f"hotplug_reserve: {r.choice([0,1,2,4,8,16,32,48])}")
    if nodes and r.random() < 0.6: pol.append(f"hotplug_reserve_per_node: {r.choice([0,1,2,3])}")
    mf = r.choice([None, "off", "group", "pack", "pack"])
    if mf: pol.append(f"multifunction: {mf}")
    if r.random() < 0.25: pol.append(f"root_port_hotplug: {r.choice(['true','false'])}")
    if express and r.random() < 0.25: pol.append("prefer: " + r.choice(["pcie","pci"]))
    ordered = r.random() < 0.45
    order_p = r.choice([0.1, 0.3, 0.7, 1.0])
    lines = [f"name: g2-{seed}", f"machine: {machine}"]
    if pol: lines.append("policy: {" + ", ".join(pol) + "}")
    lines.append("devices:")
    kinds = PCI + (PCIE if express else [])
    used_orders = r.sample(range(10 * n + 10), n)
    grp = 0; i = 0
    while i < n:
        if mf != "off" and r.random() < 0.06 and n - i >= 2:
            m = r.randint(2, min(8, n - i)); k = r.choice(["virtio-net","virtio-blk","e1000" if not express else "nvme"])
            node = f", numa_node: {r.randrange(nodes)}" if nodes and r.random() < 0.5 else ""
            for j in range(m):
                lines.append(f"- {{id: g{grp}m{j}, kind: {k}, group: grp{grp}{node}}}")
            grp += 1; i += m; continue
        x = r.random()
        if x < 0.06: k = r.choice(["usb-tablet","usb-kbd","usb-mouse"])
        elif x < 0.09 and machine != "virt": k = r.choice(["sata-disk","scsi-disk"]) if machine=="q35" else "scsi-disk"
        else: k = r.choice(kinds)
        attrs = [f"id: d{i}", f"kind: {k}"]
        pci = k not in ("usb-tablet","usb-kbd","usb-mouse","sata-disk","scsi-disk")
        if pci and nodes and r.random() < 0.55: attrs.append(f"numa_node: {r.randrange(nodes)}")
        if pci and r.random() < 0.15: attrs.append(f"hotplug: {r.choice(['true','false'])}")
        if pci and ordered and r.random() < order_p: attrs.append(f"order: {used_orders[i]}")
        lines.append("- {" + ", ".join(attrs) + "}")
        i += 1
    open(os.path.join(out, f"g2-{seed}.yaml"), "w").write("\n".join(lines) + "\n")
