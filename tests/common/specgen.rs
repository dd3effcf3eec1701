//! A generator of random *valid* specs aimed at the planner's hard corners: many NUMA
//! nodes, tight hotplug reserves (total and per node), presets, multifunction groups,
//! ordering, pins on the root bus, conventional-PCI devices on PCIe machines, and sizes
//! from one device to two thousand. Deterministic: the same seed gives the same spec on
//! every machine (SplitMix64, no external randomness).
//!
//! Shared by the fuzz tests (tests/fuzz.rs), the worst-case benchmark
//! (benches/worst_case.rs) and the worst-case report (tests/worst_case.rs).

#![allow(dead_code)] // each test crate uses its own subset

use std::fmt::Write;

/// SplitMix64: tiny, fast, and the same on every platform.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9e37_79b9_7f4a_7c15)
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
    /// True with probability `p` percent.
    pub fn pct(&mut self, p: u64) -> bool {
        self.next() % 100 < p
    }
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.next() as usize % items.len()]
    }
    /// Log-uniform in `lo..=hi` (small sizes as likely as large ones per decade).
    pub fn log_range(&mut self, lo: u64, hi: u64) -> u64 {
        let (a, b) = ((lo as f64).ln(), ((hi + 1) as f64).ln());
        let x = a + (self.next() as f64 / u64::MAX as f64) * (b - a);
        (x.exp() as u64).clamp(lo, hi)
    }
}

/// PCI kinds any machine takes, and the ones only PCIe machines take.
const PCI_ANY: &[&str] = &[
    "virtio-net",
    "virtio-blk",
    "virtio-scsi",
    "virtio-rng",
    "virtio-gpu",
    "virtio-serial",
    "virtio-input",
    "e1000",
    "rtl8139",
    "ich9-intel-hda",
    "i6300esb",
    "pci-serial",
    "piix3-uhci",
    "ich9-ahci",
];
const PCI_EXPRESS: &[&str] = &["e1000e", "nvme", "vfio-pci", "qemu-xhci"];
const NON_PCI: &[&str] = &["usb-tablet", "usb-kbd", "usb-mouse", "scsi-disk"];

/// Size class of the generated specs.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    pub min_devices: u64,
    pub max_devices: u64,
    pub max_nodes: u64,
}

impl Default for Sizes {
    fn default() -> Self {
        Sizes {
            min_devices: 1,
            max_devices: 2000,
            max_nodes: 16,
        }
    }
}

/// One random valid spec (YAML text) for `seed`.
pub fn spec(seed: u64, sizes: Sizes) -> String {
    let mut r = Rng::new(seed);
    let machine = *r.pick(&["q35", "q35", "q35", "pc", "virt"]);
    let express = machine != "pc";
    let n = r.log_range(sizes.min_devices, sizes.max_devices);
    let nodes = if r.pct(60) {
        r.range(1, sizes.max_nodes.max(1))
    } else {
        0
    };
    let mut policy = Vec::new();
    if r.pct(50) {
        policy.push(format!(
            "preset: {}",
            r.pick(&["libvirt", "hotplug-ready", "numa", "dense"])
        ));
    }
    if nodes > 0 {
        policy.push(format!("numa_nodes: {nodes}"));
    }
    if r.pct(50) {
        let max = *r.pick(&[4u64, 8, 16, 32]);
        policy.push(format!("hotplug_reserve: {}", r.range(0, max)));
    }
    if nodes > 0 && r.pct(50) {
        policy.push(format!("hotplug_reserve_per_node: {}", r.range(0, 4)));
    }
    if r.pct(50) {
        policy.push(format!(
            "multifunction: {}",
            r.pick(&["off", "group", "pack"])
        ));
    }
    if r.pct(30) {
        policy.push(format!("root_port_hotplug: {}", r.pct(50)));
    }
    if express && r.pct(20) {
        policy.push(format!("prefer: {}", r.pick(&["pcie", "pci"])));
    }
    let mut out = String::new();
    let _ = writeln!(out, "name: gen{seed}\nmachine: {machine}");
    if !policy.is_empty() {
        let _ = writeln!(out, "policy: {{{}}}", policy.join(", "));
    }
    out.push_str("devices:\n");
    let ordered = r.pct(25);
    let grouped = r.pct(40) && !policy.iter().any(|p| p == "multifunction: off");
    let pinned = r.pct(20);
    // Root-bus slots a pin may take: clear of the chipset and the primary video slot.
    let mut pin_slots: Vec<u64> = match machine {
        "pc" => (3..=0x1f).collect(),
        "q35" => (2..=0x1e).collect(),
        _ => (2..=0x1f).collect(),
    };
    let mut i = 0;
    let mut group = 0;
    let mut balloon = false;
    while i < n {
        // A multifunction group: two to eight functions of one slot.
        if grouped && r.pct(10) && n - i >= 2 {
            let members = r.range(2, 8.min(n - i));
            let kind = match pick_pci(&mut r, express) {
                "virtio-balloon" => "virtio-rng",
                k => k,
            };
            let node = (nodes > 0 && r.pct(50)).then(|| r.range(0, nodes - 1));
            for m in 0..members {
                let mut d = format!("- {{id: g{group}_{m}, kind: {kind}, group: grp{group}");
                if let Some(k) = node {
                    let _ = write!(d, ", numa_node: {k}");
                }
                d.push_str("}\n");
                out.push_str(&d);
            }
            group += 1;
            i += members;
            continue;
        }
        if r.pct(15) {
            let kind = r.pick(NON_PCI);
            let _ = writeln!(out, "- {{id: o{i}, kind: {kind}}}");
            i += 1;
            continue;
        }
        let mut kind = pick_pci(&mut r, express);
        if kind == "virtio-balloon" {
            if balloon {
                kind = "virtio-rng";
            }
            balloon = true;
        }
        let mut d = format!("- {{id: d{i}, kind: {kind}");
        if nodes > 0 && r.pct(50) {
            let _ = write!(d, ", numa_node: {}", r.range(0, nodes - 1));
        }
        let pin = pinned && r.pct(3) && !pin_slots.is_empty() && nodes == 0;
        // A pin on a PCIe root bus cannot be hotpluggable: no hotplug requirement there.
        if r.pct(20) && !(pin && express) {
            let _ = write!(d, ", hotplug: {}", r.pct(70));
        }
        if express && r.pct(5) && is_either(kind) && !pin {
            let _ = write!(d, ", bus: {}", r.pick(&["pci", "pcie"]));
        }
        if ordered && r.pct(30) {
            let _ = write!(d, ", order: {}", r.range(0, 100));
        }
        if pin {
            if express {
                // A PCIe root bus takes no hotplug (some presets default to it).
                d.push_str(", hotplug: false");
            }
            let s = pin_slots.remove(r.next() as usize % pin_slots.len());
            let _ = write!(
                d,
                ", address: {{type: pci, bus: 0, slot: {s}, function: 0}}"
            );
        }
        d.push_str("}\n");
        out.push_str(&d);
        i += 1;
    }
    out
}

fn pick_pci(r: &mut Rng, express: bool) -> &'static str {
    if r.pct(3) {
        return "virtio-balloon";
    }
    if express && r.pct(30) {
        PCI_EXPRESS[r.next() as usize % PCI_EXPRESS.len()]
    } else {
        PCI_ANY[r.next() as usize % PCI_ANY.len()]
    }
}

fn is_either(kind: &str) -> bool {
    kind.starts_with("virtio-")
}
