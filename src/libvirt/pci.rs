//! libvirt's PCI address set: buses with their connect flags, first-fit reservation,
//! growth in the dry run, and the two passes of `qemuDomainAssignPCIAddresses`.

use super::domain::{Addr, Dev, Pci};
use super::policy::{DeviceConnect, Policy};
use super::Machine;
use crate::catalog::Catalog;
use crate::Error;

/// Connect flags (libvirt's `VIR_PCI_CONNECT_*`).
pub mod flag {
    use crate::vocab::ConnectKind;

    pub const PCI: u32 = 1;
    pub const PCIE: u32 = 1 << 1;
    pub const ROOT_PORT: u32 = 1 << 2;
    pub const SWITCH_UP: u32 = 1 << 3;
    pub const SWITCH_DOWN: u32 = 1 << 4;
    pub const DMI_BRIDGE: u32 = 1 << 5;
    pub const PXB: u32 = 1 << 6;
    pub const PXB_PCIE: u32 = 1 << 7;
    pub const PCI_BRIDGE: u32 = 1 << 8;
    pub const PCIE_PCI_BRIDGE: u32 = 1 << 9;
    pub const TYPES: u32 = (1 << 10) - 1;
    pub const AUTOASSIGN: u32 = 1 << 16;
    pub const HOTPLUG: u32 = 1 << 17;
    pub const INTEGRATED: u32 = 1 << 18;
    pub const AGGREGATE: u32 = 1 << 19;

    /// The flag of a connect kind.
    pub fn of(kind: ConnectKind) -> u32 {
        match kind {
            ConnectKind::PciDevice => PCI,
            ConnectKind::PcieDevice => PCIE,
            ConnectKind::PcieRootPort => ROOT_PORT,
            ConnectKind::PcieSwitchUpstreamPort => SWITCH_UP,
            ConnectKind::PcieSwitchDownstreamPort => SWITCH_DOWN,
            ConnectKind::DmiToPciBridge => DMI_BRIDGE,
            ConnectKind::PciExpanderBus => PXB,
            ConnectKind::PcieExpanderBus => PXB_PCIE,
            ConnectKind::PciBridge => PCI_BRIDGE,
            ConnectKind::PcieToPciBridge => PCIE_PCI_BRIDGE,
        }
    }

    /// A readable name of the type bits (for messages).
    pub fn describe(f: u32) -> &'static str {
        if f & PCIE != 0 {
            "PCI Express endpoint"
        } else if f & PCI != 0 {
            "conventional PCI device"
        } else if f & ROOT_PORT != 0 {
            "pcie-root-port"
        } else if f & PCI_BRIDGE != 0 {
            "pci-bridge"
        } else if f & PCIE_PCI_BRIDGE != 0 {
            "pcie-to-pci-bridge"
        } else if f & DMI_BRIDGE != 0 {
            "dmi-to-pci-bridge"
        } else if f & SWITCH_UP != 0 {
            "pcie-switch-upstream-port"
        } else if f & SWITCH_DOWN != 0 {
            "pcie-switch-downstream-port"
        } else {
            "PCI expander bus"
        }
    }
}

/// One bus of the address set.
#[derive(Clone, Debug)]
pub struct Bus {
    pub model: String,
    accepts: u32,
    min: u8,
    max: u8,
    hotplug: bool,
    /// Bitmask of functions in use, per slot.
    used: [u8; 32],
    aggregate: [bool; 32],
}

impl Bus {
    /// A bus of controller `model`: what it accepts, its slots and hotplug from the
    /// catalog's bus model; whether libvirt places devices on it by itself from the
    /// policy (`autoassign`). A model the catalog does not know offers nothing.
    pub fn new(policy: &Policy, cat: &Catalog, model: &str, hotplug_off: bool) -> Bus {
        let auto = policy.buses.get(model).is_some_and(|r| r.autoassign);
        let (accepts, min, max, hotplug) = match cat.pci.get(model) {
            Some(m) => (
                m.bus.accepts.iter().map(flag::of).fold(0, |a, b| a | b),
                m.bus.slots[0],
                m.bus.slots[1],
                m.bus.hotplug && !hotplug_off,
            ),
            None => (0, 0, 0, false),
        };
        Bus {
            model: model.to_string(),
            accepts: accepts | if auto { flag::AUTOASSIGN } else { 0 },
            min,
            max,
            hotplug,
            used: [0; 32],
            aggregate: [false; 32],
        }
    }

    fn full(&self) -> bool {
        (self.min..=self.max).all(|s| self.used[s as usize] != 0)
    }

    /// Slots with no function in use.
    pub fn free_slots(&self) -> usize {
        (self.min..=self.max)
            .filter(|&s| self.used[s as usize] == 0)
            .count()
    }

    /// Free functions in slots that aggregate root ports.
    pub fn aggregate_free(&self) -> usize {
        (self.min..=self.max)
            .filter(|&s| self.aggregate[s as usize] && self.used[s as usize] != 0)
            .map(|s| 8 - self.used[s as usize].count_ones() as usize)
            .sum()
    }
}

/// Why a reservation failed.
pub enum Refusal {
    NoSlot,
    Controller(String),
}

/// The PCI address set of one pass.
pub struct AddrSet<'p> {
    pub buses: Vec<Bus>,
    pub dry_run: bool,
    policy: &'p Policy,
    /// The hardware catalog the buses come from.
    pub cat: &'p Catalog,
    pcie_root: bool,
    /// Controllers the dry run may still add, by model (from the integer program).
    pub budget: Option<std::collections::BTreeMap<String, usize>>,
    /// The dry run needed more than the budget.
    pub over_budget: bool,
}

impl<'p> AddrSet<'p> {
    pub fn new(
        policy: &'p Policy,
        cat: &'p Catalog,
        pcie_root: bool,
        dry_run: bool,
    ) -> AddrSet<'p> {
        AddrSet {
            buses: Vec::new(),
            dry_run,
            policy,
            cat,
            pcie_root,
            budget: None,
            over_budget: false,
        }
    }

    pub fn pcie_root(&self) -> bool {
        self.pcie_root
    }

    /// Whether an automatically placed device with `flags` may sit on bus `index`.
    pub fn takes(&self, index: usize, flags: u32) -> bool {
        self.compatible(flags, index, false)
    }

    /// Whether a new bus of `model` would take an automatically placed `flags` device.
    pub fn takes_on_new(&self, model: &str, flags: u32) -> bool {
        let mut probe = AddrSet::new(self.policy, self.cat, self.pcie_root, true);
        probe.buses.push(self.new_bus(model));
        probe.buses.push(self.new_bus(model));
        probe.compatible(flags, 1, false)
    }

    /// Slots of a new bus of `model`.
    pub fn slots_of_new(&self, model: &str) -> usize {
        self.new_bus(model).free_slots()
    }

    /// A bus of `model` libvirt adds (hotplug as the model has it).
    fn new_bus(&self, model: &str) -> Bus {
        Bus::new(self.policy, self.cat, model, false)
    }

    /// Take `n` controllers of `model` from the budget. Past the budget the program has
    /// missed one of libvirt's rules: the budget is dropped (libvirt's own growth stands)
    /// and the disagreement is recorded.
    fn spend(&mut self, model: &str, n: usize) {
        if let Some(b) = &mut self.budget {
            let left = b.entry(model.to_string()).or_insert(0);
            if *left < n {
                self.budget = None;
                self.over_budget = true;
                return;
            }
            *left -= n;
        }
    }

    /// Whether a device with `flags` may sit on bus `index`.
    pub fn compatible(&self, flags: u32, index: usize, from_config: bool) -> bool {
        let bus = &self.buses[index];
        let mut accepts = bus.accepts | if bus.hotplug { flag::HOTPLUG } else { 0 };
        let mut dev = flags;
        if dev & flag::INTEGRATED != 0 {
            if index != 0 {
                return false;
            }
            accepts |= flag::PCI | flag::PCIE | flag::AUTOASSIGN;
        }
        if from_config {
            if accepts & (flag::PCI | flag::PCIE) != 0 {
                accepts |= flag::PCI | flag::PCIE;
            }
            if dev & flag::PCI_BRIDGE != 0 {
                dev |= flag::PCI;
            }
        } else if dev & flag::AUTOASSIGN != 0 && accepts & flag::AUTOASSIGN == 0 {
            return false;
        }
        if dev & flag::HOTPLUG != 0 && accepts & flag::HOTPLUG == 0 {
            return false;
        }
        dev & accepts & flag::TYPES != 0
    }

    pub fn slot_in_use(&self, bus: u32, slot: u8) -> bool {
        self.buses
            .get(bus as usize)
            .is_some_and(|b| b.used[slot as usize] != 0)
    }

    pub fn function_in_use(&self, a: Pci) -> bool {
        self.buses
            .get(a.bus as usize)
            .is_some_and(|b| b.used[a.slot as usize] & (1 << a.function) != 0)
    }

    /// Mark an address used (no checks).
    pub fn mark(&mut self, a: Pci, flags: u32) {
        let bus = &mut self.buses[a.bus as usize];
        if bus.used[a.slot as usize] == 0 {
            bus.aggregate[a.slot as usize] = flags & flag::AGGREGATE != 0;
        }
        bus.used[a.slot as usize] |= 1 << a.function;
    }

    /// Reserve an address given in the configuration, with libvirt's checks. In the
    /// first pass, growth for it may move it to the bus after the one written (a
    /// pcie-root-port takes the bus named, the pcie-to-pci-bridge on it the device, as
    /// libvirt's virDomainPCIAddressSetGrow rewrites the address): `a` is updated.
    pub fn reserve_given(&mut self, a: &mut Pci, flags: u32) -> Result<(), String> {
        if a.bus as usize >= self.buses.len() {
            if self.dry_run {
                a.bus = self
                    .grow_to(a.bus as usize, flags)
                    .map_err(|r| self.refusal_text(r, flags))? as u32;
            } else {
                let text = format!("{:04x}:{:02x}:{:02x}.{:x}", 0, a.bus, a.slot, a.function);
                return Err(format!(
                    "the PCI controller with index='{}' required for address {text} does not exist",
                    a.bus
                ));
            }
        }
        let a = *a;
        let text = format!("{:04x}:{:02x}:{:02x}.{:x}", 0, a.bus, a.slot, a.function);
        let bus = &self.buses[a.bus as usize];
        if a.slot < bus.min || a.slot > bus.max {
            return Err(format!(
                "Invalid PCI address {text}. slot must be >= {} and <= {} on the {} with index='{}'",
                bus.min, bus.max, bus.model, a.bus
            ));
        }
        if !self.compatible(flags, a.bus as usize, true) {
            return Err(format!(
                "The device at PCI address {text} cannot be plugged into the PCI controller with index='{}' (model '{}'). It requires a controller that accepts a {}.",
                a.bus,
                bus.model,
                flag::describe(flags)
            ));
        }
        if self.function_in_use(a) {
            return Err(format!("Attempted double use of PCI Address {text}"));
        }
        self.mark(a, flags);
        Ok(())
    }

    /// First fit: lowest bus index, lowest free slot, function 0 (or `function`);
    /// an aggregating device may join a slot started by another aggregating device.
    fn find(&self, flags: u32, function: Option<u8>) -> Option<Pci> {
        for (bi, bus) in self.buses.iter().enumerate() {
            if !self.compatible(flags, bi, false) {
                continue;
            }
            for slot in bus.min..=bus.max {
                let used = bus.used[slot as usize];
                if used == 0 {
                    return Some(Pci {
                        bus: bi as u32,
                        slot,
                        function: function.unwrap_or(0),
                        multifunction: None,
                    });
                }
                if flags & flag::AGGREGATE != 0
                    && bus.aggregate[slot as usize]
                    && function.is_none()
                {
                    if let Some(f) = (0..8u8).find(|f| used & (1 << f) == 0) {
                        return Some(Pci {
                            bus: bi as u32,
                            slot,
                            function: f,
                            multifunction: None,
                        });
                    }
                }
            }
        }
        None
    }

    /// Reserve the next free address for a device with `flags`, growing in the dry run.
    pub fn reserve_next(&mut self, flags: u32, function: Option<u8>) -> Result<Pci, Refusal> {
        if let Some(a) = self.find(flags, function) {
            self.mark(a, flags);
            return Ok(a);
        }
        if !self.dry_run {
            return Err(Refusal::NoSlot);
        }
        let first_new = self.buses.len();
        self.grow_to(first_new, flags)?;
        // The device takes the first slot of the last bus added.
        let bi = self.buses.len() - 1;
        let a = Pci {
            bus: bi as u32,
            slot: self.buses[bi].min,
            function: function.unwrap_or(0),
            multifunction: None,
        };
        self.mark(a, flags);
        Ok(a)
    }

    /// Add buses until bus `want` exists, with the model libvirt chooses for `flags`;
    /// the bus the device goes on (`want`, or the pcie-to-pci-bridge after it when bus
    /// `want` had to be the root port the bridge needs).
    fn grow_to(&mut self, want: usize, flags: u32) -> Result<usize, Refusal> {
        let add = want + 1 - self.buses.len();
        let model;
        let mut pcie_pci_pair = false;
        if flags & flag::PCI != 0 {
            let bridge_ok = self.buses.iter().any(|b| b.accepts & flag::PCI_BRIDGE != 0);
            if bridge_ok {
                model = "pci-bridge";
            } else if self.pcie_root {
                pcie_pci_pair = true;
                model = "pcie-to-pci-bridge";
            } else {
                return Err(Refusal::Controller("pci-bridge".into()));
            }
        } else if flags & (flag::PCIE | flag::SWITCH_UP) != 0 {
            model = "pcie-root-port";
        } else {
            return Err(Refusal::Controller(controller_model_of(flags).into()));
        }
        if !pcie_pci_pair {
            self.spend(model, add);
            for _ in 0..add {
                self.buses.push(self.new_bus(model));
            }
            return Ok(want);
        }
        // A PCIe-only topology and a conventional PCI device: a root port, the
        // pcie-to-pci-bridge on it and, when the device names a bus further on (a written
        // address), pci-bridges up to that bus (libvirt's virDomainPCIAddressSetGrow).
        self.spend("pcie-to-pci-bridge", 1);
        let bridges = add.saturating_sub(2);
        self.spend("pci-bridge", bridges);
        // A root port that, in this pass, takes nothing but the new pcie-to-pci-bridge.
        let mut port = self.new_bus("pcie-root-port");
        port.accepts = flag::PCIE_PCI_BRIDGE | flag::AUTOASSIGN;
        self.buses.push(port);
        self.buses.push(self.new_bus(model));
        for _ in 0..bridges {
            self.buses.push(self.new_bus("pci-bridge"));
        }
        Ok(want.max(self.buses.len() - 1 - bridges))
    }

    pub fn refusal_text(&self, r: Refusal, flags: u32) -> String {
        match r {
            Refusal::NoSlot => format!(
                "No more available PCI slots for a {}",
                flag::describe(flags)
            ),
            Refusal::Controller(model) => {
                let slot = if self.pcie_root && model != "pci-bridge" {
                    "PCIe"
                } else {
                    "PCI"
                };
                format!("a {slot} slot is needed to connect a PCI controller model='{model}', but none is available, and it cannot be automatically added")
            }
        }
    }

    pub fn all_full(&self) -> bool {
        self.buses.iter().all(Bus::full)
    }

    /// Set multifunction='on' on function 0 of every slot with other functions in use.
    pub fn needs_multifunction(&self, a: Pci) -> bool {
        a.function == 0
            && self
                .buses
                .get(a.bus as usize)
                .is_some_and(|b| b.used[a.slot as usize] & !1 != 0)
    }
}

fn controller_model_of(flags: u32) -> &'static str {
    if flags & flag::ROOT_PORT != 0 {
        "pcie-root-port"
    } else if flags & flag::PCI_BRIDGE != 0 {
        "pci-bridge"
    } else if flags & flag::DMI_BRIDGE != 0 {
        "dmi-to-pci-bridge"
    } else if flags & flag::PCIE_PCI_BRIDGE != 0 {
        "pcie-to-pci-bridge"
    } else if flags & flag::SWITCH_DOWN != 0 {
        "pcie-switch-downstream-port"
    } else if flags & flag::PXB_PCIE != 0 {
        "pcie-expander-bus"
    } else {
        "pci-expander-bus"
    }
}

/// The connect flags of a device, from the policy table (0: no PCI address); a PCI
/// controller's from its catalog model (what it plugs into, whether it aggregates).
pub fn device_flags(policy: &Policy, cat: &Catalog, m: &Machine, d: &Dev) -> (u32, u8) {
    if d.tag == "controller" && d.ty.as_deref() == Some("pci") {
        let model = d.model.as_deref().unwrap_or("");
        return match cat.pci.get(model).and_then(|c| Some((c.connect?, c))) {
            Some((connect, c)) => {
                let agg = if c.aggregate { flag::AGGREGATE } else { 0 };
                (flag::of(connect) | agg, 1)
            }
            None => (0, 1),
        };
    }
    if d.tag == "controller" && d.ty.as_deref() == Some("usb") {
        let model = d.model.as_deref().unwrap_or("");
        let kind = policy
            .usb
            .get(model)
            .map_or(DeviceConnect::None, |u| u.connect);
        return (endpoint(kind, m), 5);
    }
    let ty = d.ty.as_deref();
    let bus = d.bus.as_deref();
    match policy.device_rule(&d.tag, ty, d.model.as_deref(), bus) {
        Some(r) => {
            let mut f = endpoint(r.connect, m);
            if r.integrated && f != 0 {
                f |= flag::INTEGRATED;
            }
            if d.hot && f != 0 {
                f |= flag::HOTPLUG;
            }
            (f, r.group)
        }
        None => (0, 0),
    }
}

fn endpoint(kind: DeviceConnect, m: &Machine) -> u32 {
    let pcie_ok = m.pcie_root;
    match kind {
        DeviceConnect::Pci => flag::PCI | flag::AUTOASSIGN,
        DeviceConnect::Pcie | DeviceConnect::Virtio if pcie_ok => flag::PCIE | flag::AUTOASSIGN,
        DeviceConnect::Pcie | DeviceConnect::Virtio => flag::PCI | flag::AUTOASSIGN,
        DeviceConnect::None | DeviceConnect::Controller | DeviceConnect::Usb => 0,
    }
}

/// Make every device's PCI address libvirt's (both passes). `devs` is changed in place:
/// controllers libvirt would add are appended, addresses filled. The buses are the
/// catalog's (`engine.catalog`); the growth program runs on `engine`'s solver.
pub fn assign(
    policy: &Policy,
    engine: crate::Options<'_>,
    m: &Machine,
    devs: &mut Vec<Dev>,
    file: &str,
) -> Result<(), Error> {
    let cat = engine.catalog;
    let pci_ctl = |d: &Dev| d.is("controller", "pci");
    let max_idx = devs
        .iter()
        .filter(|d| pci_ctl(d))
        .filter_map(|d| d.index)
        .max();
    let (Some(max_idx), Some(rule)) = (max_idx, m.rule) else {
        return Ok(()); // no PCI at all
    };
    // ---- pass 1: which controllers exist
    let mut set = build(policy, cat, m, devs, max_idx as usize + 1, true);
    reserve_config(&mut set, policy, m, devs, file)?;
    super::chipset::apply(&mut set, policy, m, devs, file)?;
    if rule.spare_pci_slot && !set.all_full() {
        let _ = set.reserve_next(flag::PCI, None);
    }
    // How many controllers to add: the integer program (None: it finds no growth, and
    // the replay below reports libvirt's error).
    let spare = if !m.pcie_root || max_idx != 0 {
        super::ilp::SparePort::None
    } else if set.buses.len() > 1 {
        super::ilp::SparePort::Owed
    } else {
        super::ilp::SparePort::IfGrown
    };
    let planned = super::ilp::growth(&set, &demands(policy, cat, m, devs), spare, engine.solver());
    let before = set.buses.len();
    set.budget = planned.as_ref().map(super::ilp::Growth::budget);
    place_all(&mut set, policy, m, devs, file)?;
    if max_idx == 0 && set.buses.len() > 1 && m.pcie_root {
        set.reserve_next(flag::PCIE | flag::AUTOASSIGN, None)
            .map_err(|r| super::fail(file, 0, "<devices>", set.refusal_text(r, flag::PCIE)))?;
    }
    let mut i = 1;
    while i < set.buses.len() {
        if !devs.iter().any(|d| pci_ctl(d) && d.index == Some(i as u32)) {
            let model = set.buses[i].model.clone();
            let mut c = Dev::new("controller");
            c.ty = Some("pci".into());
            c.model = Some(model);
            c.index = Some(i as u32);
            c.index_new = true;
            c.model_new = true;
            let (flags, _) = device_flags(policy, cat, m, &c);
            set.reserve_next(flags, None)
                .map_err(|r| super::fail(file, 0, &c.describe(), set.refusal_text(r, flags)))?;
            super::insert_controller(devs, c);
        }
        i += 1;
    }
    if let Some(g) = &planned {
        // The replay must add exactly what the program decided (it cannot add more).
        let added = |model: &str| {
            set.buses[before..]
                .iter()
                .filter(|b| b.model == model)
                .count()
        };
        let pairs = added("pcie-to-pci-bridge");
        let replay = super::ilp::Growth {
            root_ports: added("pcie-root-port") - pairs,
            pcie_pci_bridges: pairs,
            pci_bridges: added("pci-bridge"),
        };
        // Debug builds (every test run) refuse a disagreement; release builds keep
        // libvirt's own growth.
        if cfg!(debug_assertions) && (set.over_budget || &replay != g) {
            return Err(Error::Check {
                findings: vec![crate::verify::Finding::new(
                    crate::verify::Rule::LibvirtReplay,
                    crate::verify::Subject::Plan,
                    format!(
                        "{file}: the libvirt policy's integer program decided {g:?}, libvirt's \
                         first pass adds {replay:?}"
                    ),
                )],
            });
        }
    }
    // ---- pass 2: the addresses
    let nbuses = set.buses.len();
    let mut set = build(policy, cat, m, devs, nbuses, false);
    reserve_config(&mut set, policy, m, devs, file)?;
    super::chipset::apply(&mut set, policy, m, devs, file)?;
    place_all(&mut set, policy, m, devs, file)?;
    for d in devs.iter_mut() {
        if let Addr::Pci(a) = &mut d.addr {
            if a.multifunction.is_none() && set.needs_multifunction(*a) {
                a.multifunction = Some(true);
                d.addr_new = true;
            }
        }
    }
    Ok(())
}

fn build<'p>(
    policy: &'p Policy,
    cat: &'p Catalog,
    m: &Machine,
    devs: &[Dev],
    nbuses: usize,
    dry: bool,
) -> AddrSet<'p> {
    let mut set = AddrSet::new(policy, cat, m.pcie_root, dry);
    let gap = if m.pcie_root {
        "pcie-root-port"
    } else {
        "pci-bridge"
    };
    for i in 0..nbuses {
        let ctl = devs
            .iter()
            .find(|d| d.is("controller", "pci") && d.index == Some(i as u32));
        let bus = match ctl {
            Some(c) => Bus::new(
                policy,
                cat,
                c.model.as_deref().unwrap_or(gap),
                c.hotplug_off,
            ),
            None => Bus::new(policy, cat, gap, false),
        };
        set.buses.push(bus);
    }
    set
}

/// Reserve every PCI address written in the configuration, in the order libvirt collects
/// them (`address_collect_order`: by element kind, then document order).
fn reserve_config(
    set: &mut AddrSet,
    policy: &Policy,
    m: &Machine,
    devs: &mut [Dev],
    file: &str,
) -> Result<(), Error> {
    let kinds = &policy.address_collect_order;
    let mut order: Vec<usize> = (0..devs.len()).collect();
    order.sort_by_key(|&i| {
        kinds
            .iter()
            .position(|k| *k == devs[i].tag)
            .unwrap_or(kinds.len())
    });
    for i in order {
        let d = &devs[i];
        let Some(mut a) = d.pci() else { continue };
        // The dry run holds what the configuration wrote (a partial address too, once
        // completed), not what devaddr gave in an earlier step.
        let written = d.addr_type.as_deref() == Some("pci");
        if d.addr_new && !written && set.dry_run {
            continue;
        }
        if super::chipset::forced_home(policy, m, devs, d).is_some() {
            continue; // reserved (and checked) by the chipset step
        }
        let (flags, _) = device_flags(policy, set.cat, m, d);
        let flags = if flags == 0 {
            flag::PCI | flag::PCIE
        } else {
            flags
        };
        let written_bus = a.bus;
        set.reserve_given(&mut a, flags)
            .map_err(|msg| super::fail(file, d.line, &d.describe(), msg))?;
        if a.bus != written_bus {
            devs[i].addr = Addr::Pci(a);
            devs[i].addr_new = true;
        }
    }
    Ok(())
}

/// Connect flags of the devices the first pass still has to place, with counts (ICH9 USB2
/// companions share one slot per set).
fn demands(
    policy: &Policy,
    cat: &Catalog,
    m: &Machine,
    devs: &[Dev],
) -> std::collections::BTreeMap<u32, usize> {
    let mut out = std::collections::BTreeMap::new();
    let mut usb2_sets = std::collections::BTreeSet::new();
    for d in devs {
        if !matches!(d.addr, Addr::None) {
            continue;
        }
        let (flags, _) = device_flags(policy, cat, m, d);
        if flags == 0 {
            continue;
        }
        if usb2_function(policy, d).is_some()
            && (placed_usb2_mate(policy, devs, d).is_some() || !usb2_sets.insert(d.index))
        {
            continue;
        }
        *out.entry(flags).or_insert(0) += 1;
    }
    out
}

/// Place every device still without a PCI address, group by group.
fn place_all(
    set: &mut AddrSet,
    policy: &Policy,
    m: &Machine,
    devs: &mut [Dev],
    file: &str,
) -> Result<(), Error> {
    let order = super::placement_order(policy, set.cat, m, devs);
    for i in order {
        let d = &devs[i];
        if !matches!(d.addr, Addr::None) {
            continue;
        }
        let (flags, _) = device_flags(policy, set.cat, m, d);
        if flags == 0 {
            continue;
        }
        let a = if let Some(f) = usb2_function(policy, d) {
            // USB2 companions share the slot of a member already placed.
            match placed_usb2_mate(policy, devs, d) {
                Some(p) => {
                    let a = Pci {
                        function: f,
                        multifunction: None,
                        ..p
                    };
                    if set.function_in_use(a) {
                        // Two members of one set with the same function (two UHCI2 of
                        // index 1): libvirt's reservation of the second one fails.
                        return Err(super::fail(
                            file,
                            d.line,
                            &d.describe(),
                            format!(
                                "Attempted double use of PCI Address {:04x}:{:02x}:{:02x}.{:x}",
                                0, a.bus, a.slot, a.function
                            ),
                        ));
                    }
                    set.mark(a, flags);
                    Ok(a)
                }
                None => set.reserve_next(flags, Some(f)),
            }
        } else {
            set.reserve_next(flags, None)
        };
        let a =
            a.map_err(|r| super::fail(file, d.line, &d.describe(), set.refusal_text(r, flags)))?;
        if !set.dry_run {
            let d = &mut devs[i];
            let multifunction = (usb2_function(policy, d) == Some(0)).then_some(true);
            d.addr = Addr::Pci(Pci { multifunction, ..a });
            d.addr_new = true;
        }
    }
    Ok(())
}

/// The PCI address of a member of `d`'s ICH9 USB2 set that is already placed.
fn placed_usb2_mate(policy: &Policy, devs: &[Dev], d: &Dev) -> Option<Pci> {
    devs.iter()
        .filter(|o| {
            o.is("controller", "usb") && o.index == d.index && usb2_function(policy, o).is_some()
        })
        .find_map(Dev::pci)
}

/// The fixed function of an ICH9 USB2 controller (EHCI 7, UHCI1-3 0-2).
pub fn usb2_function(policy: &Policy, d: &Dev) -> Option<u8> {
    if !d.is("controller", "usb") {
        return None;
    }
    policy.usb.get(d.model.as_deref()?)?.usb2
}
