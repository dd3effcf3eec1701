#!/usr/bin/env python3
"""Wide random libvirt domain generator, to hold devaddr against a real libvirt.

  gen_wide.py --seed S --count N OUTDIR      write OUTDIR/NAME.in.xml (NAME = wide-S-KKKK)

Much wider than oracle.py's `gen`: q35 / pc (x86_64) / virt (aarch64) with disks on
virtio (incl. transitional models) / scsi / sata / ide / usb / fdc, cdroms, NICs of
every common model, USB / SCSI / virtio-serial / PCI controllers (with and without
index and address), videos, sound, watchdog, rng, memballoon, inputs, hubs,
redirdevs, smartcards, channels, consoles, serials, filesystems, vsock, iommu,
panic, shmem, tpm, plus pinned PCI / drive / virtio-serial addresses (sometimes
conflicting, which libvirt must refuse) and sizes from tiny to large.

Seeds from 30 on add host devices (PCI, USB, SCSI with and without drive addresses,
mdev), a q35 expander bus with a PCIe switch below it whose endpoints are written with
partial addresses (bus only), hostdev interfaces with PCI or USB sources, usb-net NICs and the address-related
refusals of libvirt 9.0 (an address type a device does not take, the same host device
twice, usb-net without a USB address, USB turned off beside USB devices), drawn from a
second stream random.Random("SEED-K-extra"), so seeds below 30 are unchanged.

Seeds from 38 on add, from a third stream random.Random("SEED-K-extra2"): a pc
pci-expander-bus (NUMA node 0) with a pci-bridge below it whose endpoints are written
with partial addresses (bus only); smartcards in every mode (host, host-certificates,
passthrough) with and without a CCID address; redirdevs, USB host devices and hubs with
written USB ports; the hyperv panic model (x86); the aarch64
smmuv3 iommu; virtio passthrough inputs; and more refusals (slot 0 on a pci-bridge, a
CCID slot or a USB port written twice, a USB port past the controller's).

Each domain uses its own random.Random("SEED-K"), so domain K of a seed does not
depend on --count.  Python 3 standard library only.

  --only-machine q35|pc|virt   restrict to one machine type
  --profile tiny|normal|large|mixed (default mixed)
"""
import argparse
import os
import random
import xml.etree.ElementTree as ET

SUB = ET.SubElement


def mac(rng, used):
    while True:
        m = "52:54:00:%02x:%02x:%02x" % tuple(rng.randrange(256) for _ in range(3))
        if m not in used:
            used.add(m)
            return m


def letters_name(prefix, i):
    """sda..sdz, sdaa.. like libvirt's virDiskNameParse."""
    s = ""
    i += 1
    while i > 0:
        i -= 1
        s = chr(ord('a') + i % 26) + s
        i //= 26
    return prefix + s


class Gen:
    def __init__(self, rng, name, machine=None, profile="mixed", extra=None, extra2=None):
        self.rng = rng
        # A third stream (seeds from 38 on) for the kinds gen_extra2 adds.
        self.extra2 = extra2
        # A second stream for the device kinds added later (host devices, usb-net,
        # address-type and USB refusals): the first stream, and so every domain of the
        # older kinds, stays as it was for a seed.
        self.extra = extra
        self.name = name
        self.machine = machine or rng.choice(["q35", "q35", "q35", "pc", "pc", "virt"])
        self.x86 = self.machine != "virt"
        self.q35 = self.machine == "q35"
        self.pc = self.machine == "pc"
        self.virt = self.machine == "virt"
        if profile == "mixed":
            profile = rng.choices(["tiny", "normal", "large"], [2, 6, 2])[0]
        self.profile = profile
        self.macs = set()
        self.vd = 0          # next vdX index
        self.sd = 0          # next sdX index (scsi/sata/usb share the sd namespace)
        self.hd = 0          # next hdX (ide)
        self.fd = 0          # next fdX
        self.used_slots = {}  # (bus, slot) -> count, for pinned PCI addresses
        self.pci_ctrl_indexes = []  # explicit pci controllers with index (index, model)
        self.max_bus = 0
        self.bus_model = {0: "pcie-root" if self.machine != "pc" else "pci-root"}
        self.vserial_nports = {}
        self.has_usb = True
        self.need_spice = False
        self.need_numa = False
        self.need_shared_mem = False
        self.vserial_ports = set()
        self.drive_addrs = set()
        self.pinned_pci_ok = 0

    # -------------------------------------------------------------- helpers
    def p(self, x):
        return self.rng.random() < x

    def count(self, tiny, normal, large):
        lo_hi = {"tiny": tiny, "normal": normal, "large": large}[self.profile]
        return self.rng.randint(*lo_hi)

    def pin_pci(self, el, prob=0.08):
        """Sometimes give a device a pinned PCI address."""
        if not self.p(prob):
            return
        r = self.rng.random()
        if r < 0.6:
            bus = 0
        elif r < 0.9 and self.max_bus > 0:
            bus = self.rng.randint(1, self.max_bus)
        else:
            bus = self.rng.randint(1, 12)  # maybe beyond existing controllers (auto-added ones)
        if bus == 0:
            if self.q35:
                slot = self.rng.choice([2, 3, 4, 5, 6, 7, 8, 9, 0xa, 0xb, 0xc, 0x10, 0x11, 0x12, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e])
            elif self.pc:
                slot = self.rng.randint(2, 31)
            else:
                slot = self.rng.randint(1, 31)
        else:
            m = self.bus_model.get(bus)
            if m in ("pcie-expander-bus", "pci-expander-bus", "dmi-to-pci-bridge", "pcie-switch-upstream-port"):
                bus = 0
                m = self.bus_model[0]
            if m is None:  # an auto-added bus: pcie-root-port on q35/virt, pci-bridge on pc
                m = "pci-bridge" if self.pc else "pcie-root-port"
            if m in ("pcie-root-port", "pcie-switch-downstream-port", "pcie-expander-bus") and self.p(0.97):
                slot = 0
            elif m in ("pci-bridge", "pcie-to-pci-bridge", "pci-expander-bus") and self.p(0.97):
                slot = self.rng.randint(1, 31)
            else:
                slot = self.rng.randint(0, 31)
        # occasionally deliberately conflict with an earlier pinned slot
        if self.used_slots and self.p(0.05):
            bus, slot = self.rng.choice(sorted(self.used_slots))
        self.used_slots[(bus, slot)] = self.used_slots.get((bus, slot), 0) + 1
        SUB(el, "address", type="pci", domain="0x0000", bus="0x%02x" % bus,
            slot="0x%02x" % slot, function="0x0")

    # -------------------------------------------------------------- domain
    def build(self):
        rng = self.rng
        dom = ET.Element("domain", type="qemu")
        SUB(dom, "name").text = self.name
        SUB(dom, "memory").text = "1048576"
        SUB(dom, "vcpu").text = "4"
        os_ = SUB(dom, "os")
        arch = "x86_64" if self.x86 else "aarch64"
        SUB(os_, "type", arch=arch, machine=self.machine).text = "hvm"
        self.dom = dom
        self.devices_list = []   # (sortkey, element) before emission
        devs = []

        # PCI controllers first (so pinned addresses can point to their buses)
        devs += self.gen_pci_controllers()
        usb = self.gen_usb_controllers()
        devs += self.gen_disks()
        devs += self.gen_nics()
        devs += usb
        devs += self.gen_scsi_controllers()
        devs += self.gen_vserial()
        devs += self.gen_video_graphics()
        devs += self.gen_misc()
        if self.extra is not None:
            devs += self.gen_extra()
        if self.extra2 is not None:
            devs += self.gen_extra2()

        if self.virt:
            cpu = SUB(dom, "cpu", mode="custom")
            SUB(cpu, "model").text = "cortex-a57"
            if self.need_numa:
                self.add_numa(cpu)
        elif self.need_numa:
            cpu = SUB(dom, "cpu", mode="custom", match="exact")
            SUB(cpu, "model").text = "qemu64"
            self.add_numa(cpu)
        if self.need_shared_mem:
            mb = ET.Element("memoryBacking")
            SUB(mb, "source", type="memfd")
            SUB(mb, "access", mode="shared")
            dom.insert(3, mb)
        if self.x86 and (getattr(self, "need_acpi", False) or self.p(0.1)):
            feats = SUB(dom, "features")
            SUB(feats, "acpi")

        # device order: mostly grouped the way people write it, sometimes shuffled
        if self.p(0.3):
            # shuffle, but keep PCI controllers in their relative order (libvirt gives
            # unindexed ones the next free index in document order) and a root first
            def ordered(e):
                return (e.tag == "controller" and e.get("type") == "pci") or e.tag == "video"
            pci = [e for e in devs if ordered(e)]
            rest = [e for e in devs if not ordered(e)]
            rng.shuffle(rest)
            head = []
            if pci and pci[0].get("model") in ("pci-root", "pcie-root"):
                head = [pci.pop(0)]
            slots = sorted(rng.sample(range(len(rest) + len(pci)), len(pci)))
            merged, it_r, it_p = [], iter(rest), iter(pci)
            for pos in range(len(rest) + len(pci)):
                merged.append(next(it_p) if pos in slots else next(it_r))
            devs = head + merged
        d = SUB(dom, "devices")
        SUB(d, "emulator").text = "/usr/bin/qemu-system-" + arch
        for e in devs:
            d.append(e)
        if hasattr(ET, "indent"):
            ET.indent(dom)
        return ET.tostring(dom, encoding="unicode") + "\n"

    def add_numa(self, cpu):
        numa = SUB(cpu, "numa")
        SUB(numa, "cell", id="0", cpus="0-1", memory="524288", unit="KiB")
        SUB(numa, "cell", id="1", cpus="2-3", memory="524288", unit="KiB")

    # -------------------------------------------------------------- pci controllers
    def gen_pci_controllers(self):
        rng = self.rng
        out = []
        if self.p(0.45) or (self.profile == "large" and self.p(0.5)):
            n = self.count((1, 2), (1, 4), (2, 10))
        else:
            return out
        with_index = self.p(0.6)
        idx = 1
        kinds = []
        if self.pc:
            for _ in range(n):
                kinds.append(rng.choices(["pci-bridge", "pci-expander-bus"], [8, 2])[0])
        elif self.q35:
            for _ in range(n):
                kinds.append(rng.choices(
                    ["pcie-root-port", "pcie-to-pci-bridge", "dmi-to-pci-bridge+pci-bridge",
                     "switch", "pcie-expander-bus", "pci-bridge"],
                    [10, 2, 2, 2, 1, 0.3])[0])  # lone pci-bridge on q35: libvirt often refuses
        else:
            for _ in range(n):
                kinds.append(rng.choices(["pcie-root-port", "pcie-to-pci-bridge", "switch"], [10, 2, 1])[0])

        def ctrl(model, extra=None):
            nonlocal idx
            c = ET.Element("controller", type="pci")
            if with_index:
                c.set("index", str(idx))
            c.set("model", model)
            if extra:
                extra(c)
            self.pci_ctrl_indexes.append((idx, model))
            self.bus_model[idx] = model
            self.max_bus = max(self.max_bus, idx)
            idx += 1
            out.append(c)
            return c

        for k in kinds:
            if k == "pci-expander-bus" or k == "pcie-expander-bus":
                def ext(c, k=k):
                    t = SUB(c, "target", busNr=str(rng.choice([100, 200, 254 - 10 * len(out)])))
                    if self.p(0.7):
                        SUB(t, "node").text = str(rng.randint(0, 1))
                        self.need_numa = True
                c = ctrl(k, ext)
                # something to live behind it sometimes: a root port / bridge
                if k == "pcie-expander-bus" and self.p(0.6):
                    rp = ctrl("pcie-root-port")
                    if with_index and self.p(0.7):
                        SUB(rp, "address", type="pci", domain="0x0000", bus="0x%02x" % (idx - 2),
                            slot="0x00", function="0x0")
                elif k == "pci-expander-bus" and self.p(0.5):
                    br = ctrl("pci-bridge")
                    if with_index and self.p(0.7):
                        SUB(br, "address", type="pci", domain="0x0000", bus="0x%02x" % (idx - 2),
                            slot="0x%02x" % rng.randint(0, 3), function="0x0")
            elif k == "switch":
                if self.q35 and self.p(0.5):
                    rp = ctrl("pcie-root-port")
                up = ctrl("pcie-switch-upstream-port")
                for _ in range(rng.randint(1, 4)):
                    ctrl("pcie-switch-downstream-port")
            elif k == "pcie-to-pci-bridge":
                if self.q35 and self.p(0.7):
                    ctrl("pcie-root-port")
                ctrl(k)
            elif k == "dmi-to-pci-bridge+pci-bridge":
                d = ctrl("dmi-to-pci-bridge")
                if self.p(0.8):
                    ctrl("pci-bridge")
            elif k == "pcie-root-port":
                def ext(c):
                    if self.p(0.2):
                        SUB(c, "model", name="pcie-root-port")
                    t = {}
                    if self.p(0.15):
                        t.update(chassis=str(rng.randint(1, 40)), port="0x%x" % rng.randint(0x8, 0x30))
                    if self.p(0.1):
                        t.update(hotplug="off")
                    if t:
                        SUB(c, "target", **t)
                c = ctrl("pcie-root-port", ext)
                if self.p(0.12):
                    slot = rng.choice([2, 3, 4, 5, 6, 7])
                    fn = rng.choice([0, 0, 1, 2])
                    SUB(c, "address", type="pci", domain="0x0000", bus="0x00",
                        slot="0x%02x" % slot, function="0x%x" % fn,
                        **({"multifunction": "on"} if fn == 0 and self.p(0.5) else {}))
                    self.used_slots[(0, slot)] = self.used_slots.get((0, slot), 0)
            else:
                c = ctrl(k)
                if k == "pci-bridge" and self.pc and self.p(0.2):
                    slot = rng.randint(3, 20)
                    SUB(c, "address", type="pci", domain="0x0000", bus="0x00",
                        slot="0x%02x" % slot, function="0x0")
                    self.used_slots[(0, slot)] = self.used_slots.get((0, slot), 0) + 1
        # occasionally a root-port without index mixed in with indexed ones
        extra_unindexed = with_index and self.q35 and self.p(0.15)
        if extra_unindexed:
            out.append(ET.Element("controller", type="pci", model="pcie-root-port"))
        if not with_index or extra_unindexed or self.p(0.1):
            root = ET.Element("controller", type="pci", model="pcie-root" if not self.pc else "pci-root")
            if with_index or self.p(0.5):
                root.set("index", "0")
            out.insert(0, root)
        return out

    # -------------------------------------------------------------- disks
    def disk_source(self, d, n):
        SUB(d, "source", file="/var/lib/libvirt/images/%s-%d.img" % (self.name, n))

    def gen_disks(self):
        rng = self.rng
        out = []
        buses = ["virtio"] * 6 + ["scsi"] * 4 + (["usb"] if self.has_usb else [])
        if self.q35:
            buses += ["sata"] * 3
        if self.pc:
            buses += ["ide"] * 3 + ["fdc"]
        if self.q35 and self.p(0.15):
            buses += ["fdc"]
        n = self.count((0, 2), (0, 8), (6, 40))
        # specialised big profiles
        if self.profile == "large" and self.p(0.3):
            bus = rng.choice(["virtio", "scsi"])
            buses = [bus]
        scsi_pin_ok = self.p(0.3)
        for k in range(n):
            bus = rng.choice(buses)
            device = "disk"
            if bus in ("scsi", "sata", "ide", "usb") and self.p(0.2):
                device = "cdrom"
            if bus == "fdc":
                device = "floppy"
            if bus == "virtio":
                dev = letters_name("vd", self.vd); self.vd += 1
            elif bus == "ide":
                if self.hd >= 4:
                    continue
                dev = "hd" + "abcd"[self.hd]; self.hd += 1
            elif bus == "fdc":
                if self.fd >= 2:
                    continue
                dev = "fd" + "ab"[self.fd]; self.fd += 1
            else:
                dev = letters_name("sd", self.sd); self.sd += 1
            attrs = {"type": "file", "device": device}
            if bus == "virtio" and self.p(0.2):
                attrs["model"] = rng.choice(["virtio-transitional", "virtio-non-transitional", "virtio"])
            d = ET.Element("disk", **attrs)
            SUB(d, "driver", name="qemu", type="raw")
            if device != "cdrom" or self.p(0.5):
                self.disk_source(d, k)
            SUB(d, "target", dev=dev, bus=bus)
            if device == "cdrom":
                SUB(d, "readonly")
            if bus == "virtio":
                self.pin_pci(d, 0.06)
            elif bus in ("scsi", "sata", "ide") and self.p(0.06):
                if bus == "scsi":
                    a = (rng.randint(0, 2), 0, 0, rng.randint(0, 6))
                elif bus == "sata":
                    a = (0, 0, 0, rng.randint(0, 5))
                else:
                    a = (0, rng.randint(0, 1), 0, rng.randint(0, 1))
                if a in self.drive_addrs and self.p(0.9):
                    pass  # mostly avoid pinning a duplicate drive address
                else:
                    self.drive_addrs.add(a)
                    SUB(d, "address", type="drive", controller=str(a[0]), bus=str(a[1]),
                        target=str(a[2]), unit=str(a[3]))
            elif bus == "usb" and self.p(0.1):
                SUB(d, "address", type="usb", bus="0", port=str(rng.randint(1, 4)))
            if self.p(0.05):
                SUB(d, "boot", order=str(k + 1))
            out.append(d)
        return out

    # -------------------------------------------------------------- nics
    def gen_nics(self):
        rng = self.rng
        out = []
        n = self.count((0, 1), (0, 5), (3, 30))
        if self.x86:
            models = ["virtio"] * 4 + ["virtio-transitional", "virtio-non-transitional", "e1000",
                                       "e1000e", "rtl8139", None, None]
        else:
            models = ["virtio"] * 5 + ["virtio-transitional", "virtio-non-transitional", None, "e1000e"]
        same = self.profile == "large" and self.p(0.4)
        first = rng.choice(models)
        for _ in range(n):
            i = ET.Element("interface", type="user")
            SUB(i, "mac", address=mac(rng, self.macs))
            m = first if same else rng.choice(models)
            if m is not None:
                SUB(i, "model", type=m)
            self.pin_pci(i, 0.07)
            out.append(i)
        return out

    # -------------------------------------------------------------- usb
    def gen_usb_controllers(self):
        rng = self.rng
        out = []
        r = rng.random()
        if r < 0.35:
            # default controller on x86; aarch64 virt gets no USB unless asked for
            self.has_usb = self.x86
            return out
        if r < 0.42:
            self.has_usb = False
            out.append(ET.Element("controller", type="usb", model="none"))
            return out
        n = 1 if self.p(0.8) else rng.randint(2, 3)
        for idx in range(n):
            choices = ["qemu-xhci", "qemu-xhci", "nec-xhci"]
            if self.x86:
                choices += ["piix3-uhci", "ich9-ehci1+companions", "ich9-ehci1", "piix4-uhci"]
            m = rng.choice(choices)
            use_index = n > 1 or self.p(0.6)
            def c_(model, **kw):
                c = ET.Element("controller", type="usb")
                if use_index:
                    c.set("index", str(idx))
                c.set("model", model)
                for k, v in kw.items():
                    c.set(k, v)
                out.append(c)
                return c
            if m == "ich9-ehci1+companions":
                c_("ich9-ehci1")
                for j, sp in ((1, 0), (2, 2), (3, 4)):
                    cc = c_("ich9-uhci%d" % j)
                    SUB(cc, "master", startport=str(sp))
            elif m == "qemu-xhci" and self.p(0.5):
                c = c_(m, ports=str(rng.choice([4, 8, 15])))
                self.pin_pci(c, 0.1)
            else:
                c = c_(m)
                self.pin_pci(c, 0.05)
        return out

    # -------------------------------------------------------------- scsi
    def gen_scsi_controllers(self):
        rng = self.rng
        out = []
        if not self.p(0.45):
            return out
        n = rng.choices([1, 2, 3], [6, 3, 1])[0]
        use_index = n > 1 or self.p(0.5)
        models = ["virtio-scsi", "virtio-scsi", None, "virtio-transitional", "virtio-non-transitional"]
        if self.x86:
            models += ["lsilogic"]
        for idx in range(n):
            c = ET.Element("controller", type="scsi")
            if use_index:
                c.set("index", str(idx))
            m = rng.choice(models)
            if m:
                c.set("model", m)
            self.pin_pci(c, 0.06)
            out.append(c)
        return out

    # -------------------------------------------------------------- virtio-serial & friends
    def gen_vserial(self):
        rng = self.rng
        out = []
        nctrl = 0
        if self.p(0.3):
            nctrl = rng.randint(1, 3)
            use_index = nctrl > 1 or self.p(0.5)
            for idx in range(nctrl):
                c = ET.Element("controller", type="virtio-serial")
                if use_index:
                    c.set("index", str(idx))
                self.vserial_nports[idx] = 31
                if self.p(0.4):
                    n = rng.choice([2, 4, 16, 31])
                    self.vserial_nports[idx] = n
                    c.set("ports", str(n))
                if self.p(0.3):
                    c.set("vectors", "4")
                self.pin_pci(c, 0.06)
                out.append(c)
        names = set()
        for _ in range(self.count((0, 1), (0, 3), (2, 10))):
            kind = rng.choice(["unix", "unix", "pty", "spicevmc", "qemu-vdagent"])
            if kind == "qemu-vdagent":
                kind = "unix"
            c = ET.Element("channel", type=kind)
            if kind == "spicevmc":
                if "com.redhat.spice.0" in names:
                    continue
                name = "com.redhat.spice.0"
                self.need_spice = True
            else:
                name = rng.choice(["org.qemu.guest_agent.0", "org.example.ch%d" % rng.randrange(1000)])
                if name in names:
                    continue
            names.add(name)
            if kind == "unix" and self.p(0.3):
                SUB(c, "source", mode="bind")
            SUB(c, "target", type="virtio", name=name)
            if self.p(0.15):
                ctl = rng.randint(0, max(0, nctrl - 1)) if nctrl else 0
                port = rng.randint(1, min(6, self.vserial_nports.get(ctl, 31) - 1))
                key = (ctl, port)
                if key not in self.vserial_ports or self.p(0.2):
                    self.vserial_ports.add(key)
                    SUB(c, "address", type="virtio-serial", controller=str(ctl), bus="0", port=str(port))
            out.append(c)
        # consoles
        ncons = rng.choices([0, 1, 2, 3], [6, 2, 1, 1])[0]
        for k in range(ncons):
            c = ET.Element("console", type="pty")
            if k == 0 and self.p(0.4) and self.x86:
                SUB(c, "target", type="serial")
            else:
                SUB(c, "target", type="virtio")
            out.append(c)
        # serials
        for k in range(rng.choices([0, 1, 2], [6, 3, 1])[0]):
            s = ET.Element("serial", type="pty")
            if self.x86 and self.p(0.5):
                t = SUB(s, "target", type="pci-serial")
                SUB(t, "model", name="pci-serial")
                self.pin_pci(s, 0.1)
            elif self.x86 and self.p(0.3):
                SUB(s, "target", type="isa-serial", port=str(k))
            elif self.p(0.2):
                t = SUB(s, "target", type="usb-serial")
                SUB(t, "model", name="usb-serial")
                if not self.has_usb:
                    continue
            out.append(s)
        return out

    # -------------------------------------------------------------- video/graphics
    def gen_video_graphics(self):
        rng = self.rng
        out = []
        r = rng.random()
        if r < 0.2:
            return out  # headless
        if r < 0.35:
            g = ET.Element("graphics", type="vnc")
            out.append(g)
            return out  # graphics without video: libvirt adds the default
        nv = rng.choices([1, 2, 3], [7, 2, 1])[0]
        if self.x86:
            prim_models = ["virtio", "vga", "qxl", "bochs", "cirrus", "ramfb", "none"]
        else:
            prim_models = ["virtio", "virtio", "ramfb", "bochs", "none"]
        prim = rng.choice(prim_models)
        vids = [prim]
        if prim != "none":
            for _ in range(nv - 1):
                vids.append(rng.choice(["qxl", "virtio"] if self.x86 else ["virtio"]))
        mark_primary = len(vids) > 1 and self.p(0.5)
        elems = []
        for k, m in enumerate(vids):
            v = ET.Element("video")
            mo = SUB(v, "model", type=m)
            if m == "qxl" and self.p(0.3):
                mo.set("vram", "65536")
            if m not in ("none",) and self.p(0.1):
                mo.set("heads", "1")
            if k == 0 and mark_primary:
                mo.set("primary", "yes")
            if m not in ("none", "ramfb"):
                self.pin_pci(v, 0.05 if k else 0.1)
            elems.append(v)
        if mark_primary and self.p(0.5):
            # primary listed later in the XML
            elems = elems[1:] + elems[:1]
        out += elems
        if prim != "none" and self.p(0.8):
            g = ET.Element("graphics", type="spice" if (self.x86 and self.p(0.3)) else "vnc")
            if g.get("type") == "spice":
                self.need_spice = False
                self.have_spice = True
            out.append(g)
        return out

    # -------------------------------------------------------------- everything else
    def gen_misc(self):
        rng = self.rng
        out = []
        x86, q35, pc, virt = self.x86, self.q35, self.pc, self.virt
        # sound
        if x86 and self.p(0.3):
            for _ in range(rng.choices([1, 2], [4, 1])[0]):
                models = ["ich6", "ich9", "ac97", "es1370"] + (["usb"] if self.has_usb else [])
                s = ET.Element("sound", model=rng.choice(models))
                if s.get("model") != "usb":
                    self.pin_pci(s, 0.06)
                out.append(s)
        # watchdog
        if x86 and self.p(0.25):
            wm = rng.choice(["i6300esb", "i6300esb", "ib700"])
            w = ET.Element("watchdog", model=wm, action=rng.choice(["reset", "poweroff", "none"]))
            if wm == "i6300esb":
                self.pin_pci(w, 0.08)
            out.append(w)
        # rng
        for _ in range(rng.choices([0, 1, 2], [5, 4, 1])[0]):
            r = ET.Element("rng", model=rng.choice(["virtio", "virtio", "virtio-transitional", "virtio-non-transitional"]))
            SUB(r, "backend", model="random").text = "/dev/urandom"
            self.pin_pci(r, 0.06)
            out.append(r)
        # memballoon
        if self.p(0.5):
            mb = ET.Element("memballoon", model=rng.choice(
                ["virtio", "virtio", "none", "virtio-transitional", "virtio-non-transitional"]))
            if mb.get("model") != "none":
                self.pin_pci(mb, 0.08)
            out.append(mb)
        # inputs
        for _ in range(self.count((0, 1), (0, 3), (2, 6))):
            buses = (["usb"] * 3 if self.has_usb else []) + ["virtio"] + (["ps2"] if x86 else [])
            bus = rng.choice(buses)
            if bus == "ps2":
                t = rng.choice(["mouse", "keyboard"])
            else:
                t = rng.choice(["tablet", "mouse", "keyboard"])
            i = ET.Element("input", type=t, bus=bus)
            if bus == "virtio":
                self.pin_pci(i, 0.05)
            out.append(i)
        if self.has_usb:
            for _ in range(rng.choices([0, 1, 2], [7, 2, 1])[0]):
                out.append(ET.Element("hub", type="usb"))
            if self.p(0.15):
                for _ in range(rng.randint(1, 3)):
                    out.append(ET.Element("redirdev", bus="usb", type="spicevmc"))
                self.need_spice = True
            if self.p(0.1):
                out.append(ET.Element("smartcard", mode="host"))
        # filesystems
        for k in range(rng.choices([0, 1, 2], [7, 2, 1])[0]):
            f = ET.Element("filesystem", type="mount", accessmode=rng.choice(["passthrough", "mapped", "squash"]))
            r = rng.random()
            if r < 0.2:
                f.set("model", rng.choice(["virtio-transitional", "virtio-non-transitional"]))
            elif r < 0.35:
                f.set("accessmode", "passthrough")
                SUB(f, "driver", type="virtiofs")
                self.need_shared_mem = True
            SUB(f, "source", dir="/tmp/share%d" % k)
            SUB(f, "target", dir="share%d" % k)
            self.pin_pci(f, 0.05)
            out.append(f)
        # vsock
        if self.p(0.15):
            v = ET.Element("vsock", model="virtio")
            SUB(v, "cid", auto="yes")
            self.pin_pci(v, 0.05)
            out.append(v)
        # iommu (needs ACPI)
        if q35 and self.p(0.1):
            m = rng.choice(["virtio", "intel"])
            self.need_acpi = True
            out.append(ET.Element("iommu", model=m))
        # panic
        if self.p(0.1):
            if x86:
                out.append(ET.Element("panic", model="isa"))
            elif self.p(0.1):
                out.append(ET.Element("panic", model="pvpanic"))  # libvirt 9.0 refuses this on aarch64
        # shmem
        for k in range(rng.choices([0, 1, 2], [9, 2, 1])[0]):
            s = ET.Element("shmem", name="shm%d" % k)
            SUB(s, "model", type=rng.choice(["ivshmem-plain", "ivshmem-plain", "ivshmem-doorbell"]))
            if s.find("model").get("type") == "ivshmem-plain":
                SUB(s, "size", unit="M").text = str(rng.choice([1, 4, 32]))
            else:
                SUB(s, "server", path="/tmp/ivshmem_socket%d" % k)
            self.pin_pci(s, 0.06)
            out.append(s)
        # tpm
        if self.p(0.05):
            t = ET.Element("tpm", model=rng.choice(["tpm-crb", "tpm-tis"]) if x86 else "tpm-tis")
            SUB(t, "backend", type="emulator", version="2.0")
            out.append(t)
        if self.need_spice and not getattr(self, "have_spice", False):
            out.append(ET.Element("graphics", type="spice"))
        return out

    # -------------------------------------------------------------- later kinds
    def expander_bus(self, x, model, bus_nrs, slots):
        """Expander bus index 1 of `model` on NUMA node 0, one of `bus_nrs`, written at
        one of `slots` of the root bus half the time."""
        self.need_numa = True
        c = ET.Element("controller", type="pci", index="1", model=model)
        t = SUB(c, "target", busNr=str(x.choice(bus_nrs)))
        SUB(t, "node").text = "0"
        if x.random() < 0.5:
            SUB(c, "address", type="pci", bus="0x00", slot=str(x.choice(slots)))
        return c

    def gen_switch_behind_expander(self, x):
        """pcie-expander-bus 1 (NUMA node 0, written at a free root slot), a root port 2
        on it and a switch (upstream 3, downstream ports 4..) whose ports take endpoints
        written with a bus number only, as libvirt's pcie-expander-bus test does."""
        out = [self.expander_bus(x, "pcie-expander-bus", [200, 220, 254], [4, 9, 0x14])]
        rp = ET.Element("controller", type="pci", index="2", model="pcie-root-port")
        SUB(rp, "address", type="pci", bus="0x01")
        out.append(rp)
        up = ET.Element("controller", type="pci", index="3", model="pcie-switch-upstream-port")
        SUB(up, "address", type="pci", bus="0x02")
        out.append(up)
        ports = x.choice([2, 4, 8, 32])
        for k in range(ports):
            out.append(ET.Element("controller", type="pci", index=str(4 + k),
                                  model="pcie-switch-downstream-port"))
        for k in range(x.randint(1, ports)):
            i = ET.Element("interface", type="user")
            SUB(i, "mac", address=mac(x, self.macs))
            SUB(i, "model", type=x.choice(["e1000", "e1000e", "virtio", "rtl8139"]))
            SUB(i, "address", type="pci", bus=str(4 + k))
            out.append(i)
        # a pinned bus past the switch sometimes: libvirt refuses it
        if x.random() < 0.05:
            i = ET.Element("interface", type="user")
            SUB(i, "mac", address=mac(x, self.macs))
            SUB(i, "model", type="virtio")
            SUB(i, "address", type="pci", bus=str(4 + ports))
            out.append(i)
        self.max_bus = 3 + ports
        return out

    def gen_extra(self):
        """Host devices (PCI, USB, SCSI, mdev; hostdev interfaces with PCI or USB sources),
        usb-net NICs, and the address-related refusals libvirt 9.0 makes: a device written
        with an address type it does not take, the same host device twice, a usb-net NIC
        without a USB address, USB turned off with USB devices present."""
        x = self.extra
        out = []
        hosts = set()

        def host_pci():
            while True:
                a = (x.randrange(1, 0x20), x.randrange(32), x.randrange(8))
                if a not in hosts:
                    hosts.add(a)
                    return a

        def pci_source(parent, typed):
            b, s, f = host_pci() if not (hosts and x.random() < 0.03) else sorted(hosts)[0]
            src = SUB(parent, "source")
            attrs = dict(domain="0x0000", bus="0x%02x" % b, slot="0x%02x" % s, function="0x%x" % f)
            if typed:
                attrs = dict(type="pci", **attrs)
            SUB(src, "address", **attrs)

        for _ in range(x.choices([0, 1, 2, 3], [6, 2, 1, 1])[0]):
            h = ET.Element("hostdev", mode="subsystem", type="pci", managed="yes")
            pci_source(h, False)
            self.pin_pci(h, 0.1)
            out.append(h)
        if self.has_usb:
            for k in range(x.choices([0, 1, 2], [7, 2, 1])[0]):
                h = ET.Element("hostdev", mode="subsystem", type="usb", managed="yes")
                src = SUB(h, "source")
                if x.random() < 0.5:
                    SUB(src, "vendor", id="0x%04x" % (0x1000 + k))
                    SUB(src, "product", id="0x%04x" % x.randrange(0x10000))
                else:
                    SUB(src, "address", bus=str(x.randint(1, 4)), device=str(x.randint(2, 40)))
                out.append(h)
        for k in range(x.choices([0, 1, 3], [7, 2, 1])[0]):
            h = ET.Element("hostdev", mode="subsystem", type="scsi")
            src = SUB(h, "source")
            SUB(src, "adapter", name="scsi_host%d" % x.randint(0, 3))
            SUB(src, "address", bus="0", target=str(x.randint(0, 3)), unit=str(k))
            if x.random() < 0.3:
                SUB(h, "address", type="drive", controller=str(x.randint(0, 1)), bus="0",
                    target="0", unit=str(x.randint(0, 6)))
            out.append(h)
        if self.x86 and x.random() < 0.05:
            h = ET.Element("hostdev", mode="subsystem", type="mdev", model="vfio-pci")
            SUB(SUB(h, "source"), "address", uuid="c2177883-f1bb-47f0-914d-32a22e3a88%02x" % x.randrange(100))
            self.pin_pci(h, 0.1)
            out.append(h)
        for _ in range(x.choices([0, 1], [8, 2])[0]):
            i = ET.Element("interface", type="hostdev", managed="yes")
            SUB(i, "mac", address=mac(x, self.macs))
            if self.has_usb and x.random() < 0.4:
                SUB(SUB(i, "source"), "address", type="usb", bus=str(x.randint(1, 4)),
                    device=str(x.randint(41, 90)))
            else:
                pci_source(i, True)
                self.pin_pci(i, 0.1)
            out.append(i)
        if self.has_usb and x.random() < 0.1:
            i = ET.Element("interface", type="user")
            SUB(i, "mac", address=mac(x, self.macs))
            SUB(i, "model", type="usb-net")
            if x.random() < 0.8:  # without a USB address libvirt 9.0 refuses it
                SUB(i, "address", type="usb", bus="0", port=str(x.randint(1, 4)))
            out.append(i)
        # one device written with an address type it may not take (libvirt refuses)
        if out and x.random() < 0.04:
            victim = x.choice(out)
            if victim.find("address") is None:
                kind = x.choice(["drive", "ccid", "isa"])
                attrs = {"drive": dict(type="drive", controller="0", bus="0", target="0", unit="0"),
                         "ccid": dict(type="ccid", controller="0", slot="0"),
                         "isa": dict(type="isa", iobase="0x505")}[kind]
                SUB(victim, "address", **attrs)
        # USB turned off beside USB devices (refused)
        if self.has_usb and x.random() < 0.02:
            out.append(ET.Element("controller", type="usb", index="0", model="none"))
        # an expander bus with a switch below it, endpoints given partial addresses
        # (only bus='N'), in a q35 domain with no PCI controller or bus of its own
        # (drawn last: the draws above stay those of the seeds measured before it)
        if self.q35 and self.max_bus == 0 and not self.pci_ctrl_indexes and x.random() < 0.15:
            out += self.gen_switch_behind_expander(x)
        return out

    def gen_pci_expander_with_bridge(self, x):
        """pc: pci-expander-bus 1 (NUMA node 0), a pci-bridge 2 on it whose endpoints are
        written with a bus number only (or a slot too, sometimes slot 0: refused)."""
        out = [self.expander_bus(x, "pci-expander-bus", [100, 200, 254], [5, 9, 0x14])]
        br = ET.Element("controller", type="pci", index="2", model="pci-bridge")
        if x.random() < 0.7:
            SUB(br, "address", type="pci", bus="0x01")
        out.append(br)
        for k in range(x.randint(1, 6)):
            i = ET.Element("interface", type="user")
            SUB(i, "mac", address=mac(x, self.macs))
            SUB(i, "model", type=x.choice(["e1000", "virtio", "rtl8139"]))
            bus = x.choice(["1", "2", "2"])
            if x.random() < 0.2:
                SUB(i, "address", type="pci", bus=bus, slot=str(x.choice([0, 1, 3, 7])))
            else:
                SUB(i, "address", type="pci", bus=bus)
            out.append(i)
        self.max_bus = 2
        return out

    def gen_extra2(self):
        """The kinds and refusals of seeds from 38 on (see the module docstring)."""
        x = self.extra2
        out = []
        spice = self.need_spice or getattr(self, "have_spice", False)
        if self.pc and self.max_bus == 0 and not self.pci_ctrl_indexes and x.random() < 0.12:
            out += self.gen_pci_expander_with_bridge(x)
        if self.has_usb:
            # smartcards: every mode, sometimes a CCID address (twice the same: refused)
            ccid_slots = []
            # libvirt 9.0 takes one smartcard (gen_misc adds one sometimes: two are refused)
            for _ in range(x.choices([0, 1, 2], [16, 4, 1])[0]):
                mode = x.choice(["host", "host-certificates", "passthrough"])
                sc = ET.Element("smartcard", mode=mode)
                if mode == "host-certificates":
                    for n in range(3):
                        SUB(sc, "certificate").text = "cert%d" % n
                elif mode == "passthrough":
                    sc.set("type", "spicevmc")
                    self.need_spice = True
                if x.random() < 0.4:
                    slot = x.choice(ccid_slots) if ccid_slots and x.random() < 0.2 else x.randint(0, 3)
                    ccid_slots.append(slot)
                    SUB(sc, "address", type="ccid", controller="0", slot=str(slot))
                out.append(sc)
            # USB devices with written ports (a port twice, or past the controller: refused)
            ports = []
            for _ in range(x.choices([0, 1, 2, 3], [6, 2, 1, 1])[0]):
                kind = x.choice(["redirdev", "hostdev", "hub", "input"])
                if kind == "redirdev":
                    e = ET.Element("redirdev", bus="usb", type="spicevmc")
                    self.need_spice = True
                elif kind == "hostdev":
                    e = ET.Element("hostdev", mode="subsystem", type="usb", managed="yes")
                    src = SUB(e, "source")
                    SUB(src, "vendor", id="0x%04x" % x.randrange(0x1000, 0x2000))
                    SUB(src, "product", id="0x%04x" % x.randrange(0x10000))
                elif kind == "hub":
                    e = ET.Element("hub", type="usb")
                else:
                    e = ET.Element("input", type=x.choice(["tablet", "keyboard"]), bus="usb")
                free = [p for p in range(1, 3) if p not in ports]
                if ports and x.random() < 0.05:
                    port = x.choice(ports)  # twice: refused
                elif free and x.random() < 0.9:
                    port = x.choice(free)
                else:
                    port = x.randint(3, 8)  # past a 2-port controller: refused there
                ports.append(port)
                SUB(e, "address", type="usb", bus="0", port=str(port))
                out.append(e)
        # (pvpanic: libvirt 9.0 does not know it, upstream does; devaddr follows upstream)
        if self.x86 and x.random() < 0.1:
            out.append(ET.Element("panic", model="hyperv"))
        if self.virt and x.random() < 0.08:
            out.append(ET.Element("iommu", model="smmuv3"))
        if x.random() < 0.08:
            i = ET.Element("input", type="passthrough", bus="virtio")
            SUB(i, "source", evdev="/dev/input/event%d" % x.randint(0, 3))
            self.pin_pci(i, 0.1)
            out.append(i)
        # a device written at slot 0 of a pci-bridge (libvirt refuses)
        if self.pc and self.max_bus > 0 and x.random() < 0.03:
            i = ET.Element("interface", type="user")
            SUB(i, "mac", address=mac(x, self.macs))
            SUB(i, "model", type="e1000")
            SUB(i, "address", type="pci", bus="0x%02x" % x.randint(1, self.max_bus), slot="0x00")
            out.append(i)
        if self.need_spice and not spice:
            out.append(ET.Element("graphics", type="spice"))
        return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--count", type=int, default=50)
    ap.add_argument("--only-machine", choices=["q35", "pc", "virt"])
    ap.add_argument("--profile", choices=["tiny", "normal", "large", "mixed"], default="mixed")
    ap.add_argument("outdir")
    a = ap.parse_args()
    os.makedirs(a.outdir, exist_ok=True)
    for k in range(a.count):
        name = "wide-%d-%04d" % (a.seed, k)
        rng = random.Random("%d-%d" % (a.seed, k))
        extra = random.Random("%d-%d-extra" % (a.seed, k)) if a.seed >= 30 else None
        extra2 = random.Random("%d-%d-extra2" % (a.seed, k)) if a.seed >= 38 else None
        text = Gen(rng, name, a.only_machine, a.profile, extra, extra2).build()
        with open(os.path.join(a.outdir, name + ".in.xml"), "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
