//! verify: an independent checker of a fully addressed topology. It knows nothing of the
//! integer program; it rebuilds the bus tree from the plan and checks every rule the
//! planner promises: unique addresses, buses that accept what sits on them, hotplug,
//! NUMA, multifunction, bus-number and I/O budgets, expander bus ranges, reserves, USB
//! ports and drive units. Every plan passes through it before it is returned.
//!
//! Each problem is a [`Finding`]: the [`Rule`] broken, the [`Subject`] it concerns (a
//! device, controller, slot, node or the plan) and the sentence `devaddr check` prints.

use crate::catalog::{Catalog, Family, IoBar, MachineModel, PciModel, ReserveKind};
use crate::error::{Error, Result};
use crate::spec::{DeviceEntry, Spec};
use crate::topology::{Address, ControllerEntry, PciAddress, Plan};
use crate::vocab::{pci, scsi, Attr, ConnectFlags, ConnectKind, ControllerType};
use std::collections::{BTreeMap, BTreeSet};

mod finding;
mod placement;
mod used;
pub(crate) use finding::{bulleted, counted};
pub use finding::{Finding, Rule, Subject};

/// A PCI address as (domain, bus, slot, function).
type PciKey = (u32, u32, u8, u8);

/// Functions of a PCI slot (0-7).
const FUNCTIONS_PER_SLOT: u8 = pci::FUNCTIONS_PER_SLOT;
/// QEMU's `chassis`, `port` (PCIe ports) and `chassis_nr` (pci-bridge) properties are
/// 8-bit.
const QEMU_CHASSIS_MAX: u32 = pci::MAX_CHASSIS;
/// QEMU's `slot` property of a PCIe port: devaddr and libvirt never set it, so every port
/// is slot 0 of its chassis and QEMU's (chassis, slot) pair is unique only if the chassis is.
const PCIE_PORT_SLOT: u32 = 0;

/// Check a plan against the spec it came from: the rules, plus every spec device present
/// with its pins kept and every given controller kept.
pub fn verify_against(plan: &Plan, spec: &Spec, cat: &Catalog) -> Vec<Finding> {
    verify_planned(&plan.to_spec(), spec, cat)
}

/// [`verify_against`] of a plan the caller owns: the same checks on the plan's own
/// entries, moved into the form the rules read ([`Plan::to_spec`]) and back instead of
/// copied. Returns the plan unchanged with the findings.
pub(crate) fn verify_owned(plan: Plan, spec: &Spec, cat: &Catalog) -> (Plan, Vec<Finding>) {
    let (planned, rest) = plan.into_spec();
    let findings = verify_planned(&planned, spec, cat);
    (Plan::from_spec(planned, rest), findings)
}

/// [`verify_against`] with the plan in spec form.
fn verify_planned(plan: &Spec, spec: &Spec, cat: &Catalog) -> Vec<Finding> {
    let mut findings = match verify_spec(plan, cat) {
        Ok(f) => f,
        Err(e) => return vec![Finding::new(Rule::Unreadable, Subject::Plan, e.to_string())],
    };
    let mut bad = |rule, subject, message: String| {
        findings.push(Finding::new(rule, subject, message));
    };
    // The plan's entries by id (the first of an id, as a search in plan order finds it).
    let mut planned: crate::light_hash::LightMap<&str, &DeviceEntry> =
        crate::light_hash::map(plan.devices.len());
    for p in &plan.devices {
        planned.entry(p.id.as_str()).or_insert(p);
    }
    for d in &spec.devices {
        let who = || Subject::device(&d.id);
        match planned.get(d.id.as_str()) {
            None => bad(
                Rule::Missing,
                who(),
                format!("device `{}` of the spec is missing", d.id),
            ),
            Some(p) => {
                if p.kind != d.kind {
                    bad(
                        Rule::Changed,
                        who(),
                        format!("device `{}` changed kind", d.id),
                    );
                }
                if let (Some(want), Some(got)) = (&d.address, &p.address) {
                    if !same_address(want, got) {
                        bad(
                            Rule::PinnedAddress,
                            who(),
                            format!("device `{}` was pinned at {want} but placed at {got}", d.id),
                        );
                    }
                }
            }
        }
    }
    for c in &spec.controllers {
        let who = || Subject::controller(&c.id);
        match plan.controllers.iter().find(|p| p.id == c.id) {
            None => bad(
                Rule::Missing,
                who(),
                format!("controller `{}` of the spec is missing", c.id),
            ),
            Some(p) => {
                if p.index != c.index || p.model != c.model {
                    bad(
                        Rule::Changed,
                        who(),
                        format!("controller `{}` changed index or model", c.id),
                    );
                }
                if let (Some(want), Some(got)) = (&c.address, &p.address) {
                    if !same_address(want, got) {
                        bad(
                            Rule::PinnedAddress,
                            who(),
                            format!("controller `{}` moved", c.id),
                        );
                    }
                }
            }
        }
    }
    if plan.devices.len() != spec.devices.len() {
        bad(
            Rule::Missing,
            Subject::Plan,
            "the plan has devices the spec does not name".into(),
        );
    }
    findings
}

fn same_address(a: &Address, b: &Address) -> bool {
    match (a, b) {
        (Address::Pci(x), Address::Pci(y)) => x.key() == y.key(),
        _ => a == b,
    }
}

struct World<'a> {
    cat: &'a Catalog,
    machine: &'a MachineModel,
    /// PCI buses by index.
    buses: BTreeMap<u32, (&'a ControllerEntry, &'a PciModel)>,
    /// `buses` as a table by index, once every bus is in ([`World::index_buses`]), for
    /// lookups without a search; empty before, or when an index is too large for one.
    table: Vec<Option<(&'a ControllerEntry, &'a PciModel)>>,
    /// How findings name plan ids that have a name here (libvirt's elements); others
    /// as ``device `x` ``, ``controller `x` `` or `` `x` ``.
    names: &'a BTreeMap<String, String>,
    /// The PCI model of each controller of the plan, by position (`None`: not a PCI
    /// controller model).
    models: Vec<Option<&'a PciModel>>,
    findings: Vec<Finding>,
}

/// How a finding names what it concerns. Written out only when a finding is made, so
/// that verifying a valid plan builds no names.
#[derive(Clone, Copy)]
enum Who<'a> {
    /// A device or controller of the plan: as `names` calls it, else ``device `x` ``,
    /// ``controller `x` `` or (after a word that says what it is) `` `x` ``.
    Plan {
        id: &'a str,
        as_a: PlanId,
        names: &'a BTreeMap<String, String>,
    },
    /// Functions of the chipset (`what` they are).
    Chipset(&'a str),
    /// A controller the machine creates itself.
    Builtin { id: &'a str, machine: &'a str },
}

/// What a plan id names, for [`Who`].
#[derive(Clone, Copy, PartialEq, Eq)]
enum PlanId {
    Device,
    Controller,
    Bare,
}

impl Who<'_> {
    /// The subject of a finding about it.
    fn subject(&self) -> Subject {
        match *self {
            Who::Plan {
                id,
                as_a: PlanId::Device,
                ..
            } => Subject::device(id),
            Who::Plan { id, .. } => Subject::controller(id),
            Who::Chipset(_) | Who::Builtin { .. } => Subject::Plan,
        }
    }
}

impl std::fmt::Display for Who<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Who::Plan { id, as_a, names } => match (names.get(id), as_a) {
                (Some(name), _) => f.write_str(name),
                (None, PlanId::Device) => write!(f, "device `{id}`"),
                (None, PlanId::Controller) => write!(f, "controller `{id}`"),
                (None, PlanId::Bare) => write!(f, "`{id}`"),
            },
            Who::Chipset(what) => write!(f, "chipset ({what})"),
            Who::Builtin { id, machine } => {
                write!(f, "builtin controller `{id}` of machine {machine}")
            }
        }
    }
}

impl<'a> World<'a> {
    fn bad(&mut self, rule: Rule, subject: Subject, message: String) {
        self.findings.push(Finding::new(rule, subject, message));
    }
    fn who<'b>(&self, id: &'b str, as_a: PlanId) -> Who<'b>
    where
        'a: 'b,
    {
        Who::Plan {
            id,
            as_a,
            names: self.names,
        }
    }
    /// How a finding names device `id`.
    fn device<'b>(&self, id: &'b str) -> Who<'b>
    where
        'a: 'b,
    {
        self.who(id, PlanId::Device)
    }
    /// How a finding names controller `id`.
    fn controller<'b>(&self, id: &'b str) -> Who<'b>
    where
        'a: 'b,
    {
        self.who(id, PlanId::Controller)
    }
    /// How a finding names `id` after a word that says what it is (`expander `x``).
    fn id<'b>(&self, id: &'b str) -> Who<'b>
    where
        'a: 'b,
    {
        self.who(id, PlanId::Bare)
    }
    /// The PCI bus of index `index`: its controller and model.
    fn bus(&self, index: u32) -> Option<(&'a ControllerEntry, &'a PciModel)> {
        match self.table.get(index as usize) {
            Some(bus) => *bus,
            None => self.buses.get(&index).copied(),
        }
    }
    /// Build the table [`World::bus`] reads, after the last bus is added: indexes from 0 to
    /// the highest (below 4096; a plan with a higher index is searched in `buses`).
    fn index_buses(&mut self) {
        const MAX_TABLE: u32 = 4096;
        let Some((&last, _)) = self.buses.last_key_value() else {
            return;
        };
        if last < MAX_TABLE {
            let mut table = vec![None; last as usize + 1];
            for (&i, &bus) in &self.buses {
                table[i as usize] = Some(bus);
            }
            self.table = table;
        }
    }
    fn parent(&self, index: u32) -> Option<u32> {
        match self.bus(index)?.0.address {
            Some(Address::Pci(a)) => Some(a.bus),
            _ => None,
        }
    }
    /// The NUMA node of the expander above bus `index`, if any.
    fn node_of(&self, mut index: u32) -> Option<u32> {
        for _ in 0..=self.buses.len() {
            let (c, m) = self.bus(index)?;
            if m.numa {
                return c.numa_node;
            }
            index = self.parent(index)?;
        }
        None
    }
    fn bus_hotplug(&self, index: u32) -> bool {
        self.bus(index)
            .is_some_and(|(c, m)| m.bus.hotplug && c.hotplug != Some(false))
    }
}

/// Which rules a verification applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rules {
    /// Every rule devaddr promises of its plans.
    Plan,
    /// The rules of a libvirt domain (`check` of a domain, lowered to the plan model):
    /// every rule but QEMU's start-time properties that libvirt passes through from the
    /// domain unchecked — the multifunction bit and function 0 of a slot, chassis and
    /// port numbers, the bus numbers an expander's `busNr` leaves for the buses below
    /// it, and the ports' I/O reserve (`io-reserve`, a QEMU passthrough). A domain with
    /// those wrong is one libvirt defines as written.
    LibvirtDomain,
}

impl Rules {
    /// The slots a PCI controller that plugs in as `kind` may take. A libvirt domain
    /// gives every controller its address, and libvirt accepts a `pci-bridge` whose
    /// address is given on any bus that takes an endpoint of either kind (its rule for
    /// addresses from the configuration; QEMU starts such a guest, a pci-bridge on
    /// pcie-root included). devaddr's own plans keep the bridge on a conventional bus.
    pub fn controller_connect(self, kind: ConnectKind) -> ConnectFlags {
        match (self, kind) {
            (Rules::LibvirtDomain, ConnectKind::PciBridge) => {
                kind.flag().union(ConnectFlags::ENDPOINTS)
            }
            _ => kind.flag(),
        }
    }
}

/// Check a fully addressed spec or plan. `Err` only when the input cannot be read at all
/// (unknown machine); rule violations come back as findings.
pub fn verify_spec(spec: &Spec, cat: &Catalog) -> Result<Vec<Finding>> {
    verify_spec_with(spec, cat, Rules::Plan)
}

/// [`verify_spec`] with the rules of `rules`.
pub fn verify_spec_with(spec: &Spec, cat: &Catalog, rules: Rules) -> Result<Vec<Finding>> {
    verify_named(spec, cat, rules, &BTreeMap::new())
}

/// [`verify_spec_with`], the messages naming the plan ids of `names` by the names given
/// there instead of as ``device `x` `` / ``controller `x` `` (libvirt's check names
/// elements). Subjects keep the plan ids.
pub(crate) fn verify_named(
    spec: &Spec,
    cat: &Catalog,
    rules: Rules,
    names: &BTreeMap<String, String>,
) -> Result<Vec<Finding>> {
    crate::spec::bounds::check(spec)?;
    let machine = cat.machine(&spec.machine).ok_or_else(|| {
        Error::input(
            "machine",
            format!("unknown machine type `{}`", spec.machine),
        )
    })?;
    crate::spec::bounds::against_machine(spec, machine)?;
    // The budgets of the plan's firmware (`policy.firmware`).
    let mut with_firmware = machine.clone();
    with_firmware.limits = crate::catalog::spec_limits(spec, machine)?;
    let machine = &with_firmware;
    let root_model = cat.pci_model(&machine.root);
    let root_entry = ControllerEntry {
        id: machine.root_bus_name.clone(),
        model: machine.root.clone(),
        index: 0,
        ..Default::default()
    };
    let mut w = World {
        cat,
        machine,
        buses: BTreeMap::new(),
        table: Vec::new(),
        names,
        models: crate::topology::pci_models(&spec.controllers, cat),
        findings: Vec::new(),
    };
    w.buses.insert(0, (&root_entry, root_model));
    let eff = spec.effective_policy();

    // The ordering requirement: ordered devices' PCI addresses ascend.
    let seq = crate::spec::order::sequence(spec)?;
    type Key = (u32, u32, u8, u8);
    let mut last: Option<(&str, Key)> = None;
    for &i in &seq {
        let d = &spec.devices[i];
        if let Some(Address::Pci(a)) = &d.address {
            let k = (a.domain, a.bus, a.slot, a.function);
            if let Some((prev, pk)) = last {
                if pk >= k {
                    let msg = format!(
                        "order: {} must have a lower PCI address than {} ({a})",
                        w.id(prev),
                        w.id(&d.id)
                    );
                    w.bad(Rule::Order, Subject::device(&d.id), msg);
                }
            }
            last = Some((d.id.as_str(), k));
        }
    }

    // Identifiers.
    let mut ids = crate::light_hash::set(spec.controllers.len() + spec.devices.len());
    for (id, as_a) in spec
        .controllers
        .iter()
        .map(|c| (c.id.as_str(), PlanId::Controller))
        .chain(spec.devices.iter().map(|d| (d.id.as_str(), PlanId::Device)))
    {
        if !ids.insert(id) {
            let who = w.who(id, as_a);
            let msg = format!("id {} is used twice", w.id(id));
            w.bad(Rule::UniqueId, who.subject(), msg);
        }
    }
    // `pci.N` names the PCI bus of index N in every plan.
    for c in &spec.controllers {
        let n =
            c.id.strip_prefix("pci.")
                .and_then(|n| n.parse::<u32>().ok());
        if n.is_some_and(|n| n != c.index) {
            let msg = format!(
                "{} has index {}: the id `pci.N` belongs to the bus of index N",
                w.controller(&c.id),
                c.index
            );
            w.bad(Rule::ControllerIndex, Subject::controller(&c.id), msg);
        }
    }
    // PCI controllers: collected in a list (checked for taken indexes in a table) and
    // made the map of buses at once, which builds faster than insert by insert.
    let mut pci = Vec::with_capacity(spec.controllers.len() + 1);
    let mut taken: crate::topology::ByIndex<()> = Default::default();
    pci.extend(w.buses.pop_first());
    taken.insert(0, ());
    for (ci, c) in spec.controllers.iter().enumerate() {
        let who = w.controller(&c.id);
        let subject = || Subject::controller(&c.id);
        if let Some(m) = w.models[ci] {
            if m.connect.is_none() {
                if c.index != 0 || c.model != machine.root {
                    let msg = format!(
                        "{who}: root model {} at index {}; machine {} has {} at 0",
                        c.model, c.index, machine.name, machine.root
                    );
                    w.bad(Rule::RootBus, subject(), msg);
                }
                continue;
            }
            if c.index == 0 || taken.insert(c.index, ()).is_some() {
                let msg = format!("{who}: PCI index {} is taken", c.index);
                w.bad(Rule::ControllerIndex, subject(), msg);
                continue;
            }
            if c.index >= machine.limits.bus_numbers {
                let msg = format!(
                    "{who}: PCI index {} is out of range: a PCI domain of machine {} \
                     has {} bus numbers (indexes 0-{})",
                    c.index,
                    machine.name,
                    machine.limits.bus_numbers,
                    machine.limits.bus_numbers.saturating_sub(1)
                );
                w.bad(Rule::ControllerIndex, subject(), msg);
            }
            pci.push((c.index, (c, m)));
        } else if !cat.storage.contains_key(&c.model) {
            let msg = format!("{who}: unknown model {}", c.model);
            w.bad(Rule::UnknownModel, subject(), msg);
        }
    }
    w.buses = pci.into_iter().collect();
    w.index_buses();
    // Every address in use, with its owner.
    let builtins = machine
        .builtin
        .iter()
        .map(|b| b.functions.len())
        .sum::<usize>()
        + machine.builtin_controllers.len();
    let mut used = used::with_capacity(builtins + spec.controllers.len() + spec.devices.len());
    for b in &machine.builtin {
        for f in &b.functions {
            used.insert((0, 0, b.slot.get(), f.get()), Who::Chipset(&b.what));
        }
    }
    for b in &machine.builtin_controllers {
        used.insert(
            PciAddress::new(0, b.slot.get(), b.function.get()).key(),
            Who::Builtin {
                id: &b.id,
                machine: &machine.name,
            },
        );
    }
    let bus_list: Vec<(u32, &ControllerEntry, &PciModel)> =
        w.buses.iter().map(|(&i, &(c, m))| (i, c, m)).collect();
    for &(index, c, m) in &bus_list {
        if index == 0 {
            continue;
        }
        let subject = || Subject::controller(&c.id);
        let who = w.controller(&c.id);
        let Some(Address::Pci(a)) = &c.address else {
            let msg = format!("{who} has no PCI address");
            w.bad(Rule::MissingAddress, subject(), msg);
            continue;
        };
        claim(&mut w, &mut used, a, who);
        let connect = m.connect.map(|k| rules.controller_connect(k));
        check_slot(&mut w, a, who, connect);
        if m.numa && a.bus != 0 {
            let msg = format!("{who}: an expander bus must sit on the root bus");
            w.bad(Rule::BusTree, subject(), msg);
        }
        // Parent chain reaches the root.
        let mut cur = index;
        let mut steps = 0;
        while cur != 0 {
            match w.parent(cur) {
                Some(p) if steps <= w.buses.len() => {
                    cur = p;
                    steps += 1;
                }
                _ => {
                    let msg = format!("{who}: its parent chain does not reach the root bus");
                    w.bad(Rule::BusTree, subject(), msg);
                    break;
                }
            }
        }
        if m.numa {
            match c.numa_node {
                None => w.bad(
                    Rule::NumaNode,
                    subject(),
                    format!("{who}: expander bus without numa_node"),
                ),
                Some(n) if n >= eff.numa_nodes => w.bad(
                    Rule::NumaNode,
                    subject(),
                    format!(
                        "{who}: NUMA node {n}, but the guest has {} nodes",
                        eff.numa_nodes
                    ),
                ),
                _ => {}
            }
        }
    }
    if rules == Rules::Plan {
        check_chassis(&mut w);
    }
    // Each device's kind, looked up once.
    let kinds = crate::topology::catalog_kinds(spec.devices.iter().map(|d| d.kind.as_str()), cat);
    // Storage/USB controllers: builtin ones, listed ones, and spec devices that are ones.
    let mut storage: BTreeMap<(ControllerType, u32), (String, u32, u32)> = BTreeMap::new();
    for b in &machine.builtin_controllers {
        let m = &cat.storage[&b.model];
        storage.insert(
            (m.provides, b.index),
            (
                b.id.clone(),
                m.buses.unwrap_or(1),
                m.units.unwrap_or(m.ports.unwrap_or(0)),
            ),
        );
    }
    for c in &spec.controllers {
        let Some(m) = cat.storage.get(&c.model) else {
            continue;
        };
        if c.builtin == Some(true) {
            check_builtin(&mut w, c);
            continue;
        }
        let who = w.controller(&c.id);
        let subject = || Subject::controller(&c.id);
        check_usb_ports(&mut w, who, m, c.ports);
        let shape = if m.provides == ControllerType::Usb {
            (1, c.ports.or(m.ports).unwrap_or(0))
        } else {
            (m.buses.unwrap_or(1), m.units.unwrap_or(1))
        };
        if storage
            .insert((m.provides, c.index), (c.id.clone(), shape.0, shape.1))
            .is_some()
        {
            let msg = format!("two {} controllers have index {}", m.provides, c.index);
            w.bad(Rule::ControllerIndex, subject(), msg);
        }
        match &c.address {
            Some(Address::Pci(a)) => {
                claim(&mut w, &mut used, a, who);
                let connect = storage_connect(cat, machine, &c.model);
                check_slot(&mut w, a, who, Some(connect.flag()));
            }
            _ => w.bad(
                Rule::MissingAddress,
                subject(),
                format!("{who} has no PCI address"),
            ),
        }
    }
    for (d, k) in spec.devices.iter().zip(&kinds) {
        let Some(k) = k else { continue };
        let Some(model) = &k.controller else { continue };
        let m = &cat.storage[model];
        let idx = (0..)
            .find(|i| !storage.contains_key(&(m.provides, *i)))
            .unwrap_or(0);
        let who = w.device(&d.id);
        check_usb_ports(&mut w, who, m, d.ports);
        let shape = if m.provides == ControllerType::Usb {
            (1, d.ports.or(m.ports).unwrap_or(0))
        } else {
            (m.buses.unwrap_or(1), m.units.unwrap_or(1))
        };
        storage.insert((m.provides, idx), (d.id.clone(), shape.0, shape.1));
    }
    // Devices.
    let mut io_buses: BTreeSet<u32> = BTreeSet::new();
    let controller_kinds =
        crate::topology::catalog_kinds(spec.controllers.iter().map(|c| c.model.as_str()), cat);
    for (c, k) in spec.controllers.iter().zip(controller_kinds) {
        if let (Some(k), Some(Address::Pci(a))) = (k, &c.address) {
            if device_has_io(&w, k.io_bar, a.bus) {
                io_buses.insert(a.bus);
            }
        }
    }
    let mut usb_used = BTreeSet::new();
    let mut drive_used = BTreeSet::new();
    let mut groups: BTreeMap<&str, Vec<(&str, PciAddress)>> = BTreeMap::new();
    for (d, k) in spec.devices.iter().zip(&kinds) {
        let who = w.device(&d.id);
        let subject = || Subject::device(&d.id);
        let Some(k) = k else {
            let msg = format!("{who}: unknown kind {}", d.kind);
            w.bad(Rule::UnknownModel, subject(), msg);
            continue;
        };
        let hotplug = d.hotplug.unwrap_or(eff.hotplug_by_default && k.hotplug);
        match (k.family, &d.address) {
            (Family::Pci, Some(Address::Pci(a))) => {
                claim(&mut w, &mut used, a, who);
                // A PCIe-only kind (the catalog's `pci: pcie`) on a machine with PCIe needs a
                // PCIe bus; other kinds may sit on either (libvirt accepts given addresses).
                let pcie_only = machine.pcie && k.pci == Some(crate::catalog::PciType::Pcie);
                let conventional = w.bus(a.bus).filter(|(_, m)| !m.bus.express);
                if let (true, Some((c, _))) = (pcie_only, conventional) {
                    let msg = format!(
                        "{who}: {} is a PCIe-only device kind \
                         and cannot sit behind conventional PCI bus {} ({} {})",
                        d.kind,
                        a.bus,
                        c.model,
                        w.id(&c.id)
                    );
                    w.bad(Rule::BusType, subject(), msg);
                    check_slot(&mut w, a, who, None);
                } else {
                    check_slot(&mut w, a, who, Some(ConnectFlags::ENDPOINTS));
                }
                let express = w.bus(a.bus).is_some_and(|(_, m)| m.bus.express);
                let wrong = match d.bus {
                    Some(crate::spec::BusType::Pcie) if !express => {
                        Some("asks for PCIe but sits on a conventional bus")
                    }
                    Some(crate::spec::BusType::Pci) if express => {
                        Some("asks for conventional PCI but sits on a PCIe bus")
                    }
                    _ => None,
                };
                if let Some(wrong) = wrong {
                    w.bad(Rule::BusType, subject(), format!("{who} {wrong}"));
                }
                if hotplug && !w.bus_hotplug(a.bus) {
                    let msg = format!("{who} needs hotplug but bus {} is not hotpluggable", a.bus);
                    w.bad(Rule::Hotplug, subject(), msg);
                }
                if let Some(n) = d.numa_node {
                    if n >= eff.numa_nodes {
                        let msg = format!("{who}: NUMA node {n} does not exist");
                        w.bad(Rule::NumaNode, subject(), msg);
                    }
                    if w.node_of(a.bus) != Some(n) {
                        let msg = format!(
                            "{who} needs NUMA node {n} but bus {} is not below its expander",
                            a.bus
                        );
                        w.bad(Rule::NumaNode, subject(), msg);
                    }
                }
                if device_has_io(&w, k.io_bar, a.bus) {
                    io_buses.insert(a.bus);
                }
                if let Some(g) = &d.group {
                    groups.entry(g).or_default().push((&d.id, *a));
                }
            }
            (Family::Usb, Some(Address::Usb(u))) => {
                let msg = match storage.get(&(ControllerType::Usb, u.bus)) {
                    None => Some(format!("{who}: USB bus {} has no controller", u.bus)),
                    Some((_, _, ports)) => {
                        let ok = u.port.parse::<u32>().is_ok_and(|p| p >= 1 && p <= *ports);
                        (!ok).then(|| format!("{who}: USB port {} outside 1-{ports}", u.port))
                    }
                };
                if let Some(msg) = msg {
                    w.bad(Rule::UsbAddress, subject(), msg);
                }
                if !usb_used.insert((u.bus, u.port.clone())) {
                    let msg = format!("{who}: USB bus {} port {} used twice", u.bus, u.port);
                    w.bad(Rule::UsbAddress, subject(), msg);
                }
            }
            (Family::Drive, Some(Address::Drive(a))) => {
                let t = k.drive_bus;
                let name = t.map_or("", ControllerType::name);
                let msg = match t.and_then(|t| storage.get(&(t, a.controller))) {
                    None => Some(format!("{who}: no {name} controller {}", a.controller)),
                    Some((_, buses, units)) => {
                        let unit_ok = if t == Some(ControllerType::Scsi) {
                            a.unit <= scsi::MAX_UNIT && a.target <= scsi::MAX_TARGET
                        } else {
                            a.unit < *units && a.target == 0
                        };
                        (a.bus >= *buses || !unit_ok).then(|| {
                            format!(
                                "{who}: drive address outside {name} controller {}",
                                a.controller
                            )
                        })
                    }
                };
                if let Some(msg) = msg {
                    w.bad(Rule::DriveAddress, subject(), msg);
                }
                if !drive_used.insert((t, a.controller, a.bus, a.target, a.unit)) {
                    let msg = format!("{who}: drive address used twice");
                    w.bad(Rule::DriveAddress, subject(), msg);
                }
            }
            (_, None) => w.bad(
                Rule::MissingAddress,
                subject(),
                format!("{who} has no address"),
            ),
            (_, Some(a)) => w.bad(
                Rule::AddressType,
                subject(),
                format!("{who}: wrong address type {a}"),
            ),
        }
    }
    for (g, members) in groups {
        let slots: BTreeSet<(u32, u8)> = members.iter().map(|(_, a)| (a.bus, a.slot)).collect();
        if slots.len() > 1 {
            let msg = format!("group `{g}` is spread over several slots");
            w.bad(Rule::Group, Subject::Group { name: g.into() }, msg);
        }
    }
    // Multifunction: functions > 0 need function 0, marked multifunction.
    // Every PCI address, grouped by slot (a stable sort: each slot's functions in plan
    // order, controllers first), the slots in (bus, slot) order.
    let mut all: Vec<PciAddress> = spec
        .controllers
        .iter()
        .map(|c| &c.address)
        .chain(spec.devices.iter().map(|d| &d.address))
        .filter_map(|a| match a {
            Some(Address::Pci(p)) => Some(*p),
            _ => None,
        })
        .collect();
    all.sort_by_key(|a| (a.bus, a.slot));
    let builtin_slot = |slot: u8| machine.builtin.iter().any(|b| b.slot.get() == slot);
    for fs in all.chunk_by(|a, b| (a.bus, a.slot) == (b.bus, b.slot)) {
        let (bus, slot) = (fs[0].bus, fs[0].slot);
        if rules != Rules::Plan || (bus == 0 && builtin_slot(slot)) {
            continue;
        }
        if fs.len() > 1 || fs.iter().any(|a| a.function != 0) {
            let subject = Subject::Slot { bus, slot };
            match fs.iter().find(|a| a.function == 0) {
                None => w.bad(
                    Rule::FunctionZero,
                    subject,
                    format!("bus {bus} slot {slot} uses functions without function 0"),
                ),
                Some(f0) if fs.len() > 1 && f0.multifunction != Some(true) => w.bad(
                    Rule::Multifunction,
                    subject,
                    format!(
                        "bus {bus} slot {slot} has {} functions but function 0 is not \
                         multifunction",
                        fs.len()
                    ),
                ),
                _ => {}
            }
        }
    }
    check_budgets(&mut w, spec, &eff, &io_buses, &used, rules);
    placement::check(&mut w, spec)?;
    Ok(w.findings)
}

/// Record that `who` uses address `a`; a finding if something else already does.
fn claim<'u>(w: &mut World, used: &mut used::Used<'u>, a: &PciAddress, who: Who<'u>) {
    if let Some(prev) = used.insert(a.key(), who) {
        w.bad(
            Rule::UniqueAddress,
            who.subject(),
            format!("{who} and {prev} both use {a}"),
        );
    }
}

/// Does a device with this I/O-BAR rule need an I/O window on bus `bus`?
fn device_has_io(w: &World, io: IoBar, bus: u32) -> bool {
    let express = w.bus(bus).is_some_and(|(_, m)| m.bus.express);
    match io {
        IoBar::None => false,
        IoBar::Always => true,
        IoBar::Legacy => !express || bus == 0,
    }
}

fn storage_connect(cat: &Catalog, machine: &MachineModel, model: &str) -> ConnectKind {
    let pcie = machine.pcie
        && cat
            .kind(model)
            .is_some_and(|k| k.pci != Some(crate::catalog::PciType::Pci));
    ConnectKind::endpoint(pcie)
}

/// Check that `a` exists and, with `connect` (the kinds the occupant may plug in as), that
/// its bus accepts one of them.
fn check_slot(w: &mut World, a: &PciAddress, who: Who, connect: Option<ConnectFlags>) {
    if a.domain != 0 {
        let msg = format!("{who}: PCI domain {} does not exist", a.domain);
        w.bad(Rule::SlotRange, who.subject(), msg);
    }
    if a.function >= FUNCTIONS_PER_SLOT {
        let msg = format!(
            "{who}: function {} out of range 0-{}",
            a.function,
            FUNCTIONS_PER_SLOT - 1
        );
        w.bad(Rule::SlotRange, who.subject(), msg);
    }
    let Some((c, m)) = w.bus(a.bus) else {
        let msg = format!("{who}: bus {} has no PCI controller", a.bus);
        w.bad(Rule::MissingBus, who.subject(), msg);
        return;
    };
    if a.slot < m.bus.slots[0] || a.slot > m.bus.slots[1] {
        let msg = format!(
            "{who}: slot {} outside {} {} (slots {}-{})",
            a.slot,
            c.model,
            w.id(&c.id),
            m.bus.slots[0],
            m.bus.slots[1]
        );
        w.bad(Rule::SlotRange, who.subject(), msg);
    }
    if let Some(conn) = connect {
        if !m.bus.accepts.intersects(conn) {
            let names: Vec<&str> = conn.iter().map(ConnectKind::name).collect();
            let msg = format!(
                "{who} ({}) cannot plug into {} {} (accepts {})",
                names.join("|"),
                c.model,
                w.id(&c.id),
                m.bus.accepts
            );
            w.bad(Rule::ConnectKind, who.subject(), msg);
        }
    }
}

fn check_budgets(
    w: &mut World,
    spec: &Spec,
    eff: &crate::spec::Effective,
    io_buses: &BTreeSet<u32>,
    used: &used::Used,
    rules: Rules,
) {
    let cat = w.cat;
    let machine = w.machine;
    // Bus numbers.
    let total: u32 = w.buses.values().map(|(_, m)| m.bus_numbers).sum();
    if total > machine.limits.bus_numbers {
        let msg = format!(
            "the topology needs {total} bus numbers; a PCI domain has {}",
            machine.limits.bus_numbers
        );
        w.bad(Rule::BusNumbers, Subject::Plan, msg);
    }
    // Expander ranges: [bus_nr, next expander's bus_nr) must hold the buses below it.
    let (root_need, below) = crate::topology::bus_needs(&w.buses);
    let mut ranges: Vec<(u32, u32, String)> = Vec::new();
    for (&e, &need) in &below {
        let (c, _) = w.buses[&e];
        match c.bus_nr {
            None => {
                let msg = format!("expander {} has no bus_nr", w.id(&c.id));
                w.bad(Rule::ExpanderRange, Subject::controller(&c.id), msg);
            }
            Some(nr) => ranges.push((nr, need, c.id.clone())),
        }
    }
    ranges.sort();
    let mut limit = machine.limits.bus_numbers;
    for (nr, need, id) in ranges.iter().rev() {
        let who = w.id(id);
        if *nr == 0 {
            let msg =
                format!("expander {who}: bus_nr 0 is the root bus's number (QEMU refuses it)");
            w.bad(Rule::ExpanderRange, Subject::controller(id), msg);
        }
        // Whether the firmware enumerates the buses below an expander is not something
        // libvirt checks: a domain lowered from libvirt XML is held to what libvirt holds.
        if rules == Rules::Plan && nr.saturating_add(*need) > limit {
            let msg = format!(
                "expander {who} (bus_nr {nr}) needs {need} bus numbers from {nr} on, but only \
                 numbers below {limit} are free before the next expander or the end of the PCI \
                 domain ({} bus numbers): the firmware would not enumerate it",
                machine.limits.bus_numbers
            );
            w.bad(Rule::ExpanderRange, Subject::controller(id), msg);
        }
        limit = limit.min(*nr);
    }
    if root_need > limit {
        let msg = format!(
            "the root bus hierarchy needs {root_need} bus numbers but the lowest expander \
             bus_nr is {limit}"
        );
        let root = Subject::controller(&machine.root_bus_name);
        w.bad(Rule::ExpanderRange, root, msg);
    }
    // I/O windows.
    if let Some(limit) = machine.limits.io_windows {
        use crate::topology::io_padding;
        let uefi = io_padding::padding_firmware(machine, spec, eff.firmware)
            .filter(|_| rules == Rules::Plan);
        // Bridges the UEFI firmware pads with I/O whatever sits below them.
        let bridges = uefi.map_or_else(Vec::new, |u| {
            io_padding::padded_bridges(&spec.controllers, &w.models, io_buses, u)
        });
        let n = (io_buses.iter().filter(|&&b| b != 0).count() + bridges.len()) as u32;
        if n > limit {
            let padded = if bridges.is_empty() {
                String::new()
            } else {
                format!(
                    " (the UEFI firmware pads {} of them with I/O although nothing below \
                     needs it: {})",
                    bridges.len(),
                    bridges
                        .iter()
                        .map(|&i| spec.controllers[i].id.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            let msg = format!(
                "{n} bridges/ports hold devices with I/O BARs{padded}; the firmware has room \
                 for {limit} I/O windows"
            );
            w.bad(Rule::IoWindows, Subject::Plan, msg);
        }
        // OVMF's I/O padding of hotplug ports without I/O-BAR devices: those windows too
        // must fit, or the ports must give the padding up (`io_reserve: 0`).
        let pads = uefi.is_some_and(|u| u.hotplug_io_padding.is_some());
        let padded = io_padding::padded_ports(&spec.controllers, &w.models, io_buses);
        if io_padding::padding_overflows(pads, n as usize, padded.len(), limit) {
            let msg = format!(
                "{n} bridges/ports hold devices with I/O BARs and the UEFI firmware pads {} \
                 hotplug port(s) without them with an I/O window each ({}); {limit} fit: \
                 those ports need io_reserve: 0",
                padded.len(),
                padded
                    .iter()
                    .map(|&i| spec.controllers[i].id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            w.bad(Rule::IoWindows, Subject::Plan, msg);
        }
    }
    for c in spec.controllers.iter().filter(|c| c.io_reserve.is_some()) {
        if !cat.pci.get(&c.model).is_some_and(|m| m.resource_reserve) {
            let msg = format!(
                "controller `{}` ({}) states an I/O reserve (io_reserve), which only ports \
                 with QEMU's resource reservation (pcie-root-port) can",
                c.id, c.model
            );
            w.bad(Rule::IoWindows, Subject::controller(&c.id), msg);
        }
    }
    // 64-bit MMIO: the aperture the big BARs and reserves need fits what the guest
    // addresses; only ports with QEMU's resource reservation keep 64-bit room.
    for c in spec
        .controllers
        .iter()
        .filter(|c| c.pref64_reserve.is_some())
    {
        if !cat.pci.get(&c.model).is_some_and(|m| m.resource_reserve) {
            let msg = format!(
                "controller `{}` ({}) keeps 64-bit room (pref64_reserve), which only ports \
                 with QEMU's resource reservation (pcie-root-port) can",
                c.id, c.model
            );
            w.bad(Rule::Mmio64, Subject::controller(&c.id), msg);
        }
    }
    let asked = spec.devices.iter().any(|d| d.bar64.is_some())
        || spec.controllers.iter().any(|c| c.pref64_reserve.is_some());
    // What the BARs and reserves need, only when something asks for 64-bit room.
    let need = asked.then(|| {
        crate::topology::mmio64::needed_of(&spec.controllers, &spec.devices, cat, &machine.limits)
    });
    let aperture = need.and_then(crate::topology::mmio64::aperture);
    let max = crate::topology::mmio64::max_aperture(&machine.limits, spec.policy.phys_bits);
    // The aperture a plan states (and asks the firmware for) must hold what it needs.
    let stated = spec
        .mmio64
        .as_ref()
        .and_then(|m| m.get("aperture"))
        .and_then(serde_json::Value::as_str)
        .and_then(|t| t.parse::<crate::spec::ByteSize>().ok());
    if let (Some(need), Some(stated), Some(aperture)) = (need, stated, aperture) {
        if stated < aperture {
            let msg = format!(
                "the plan states a 64-bit aperture of {stated}, but its BARs and reserves \
                 need {need} bytes (an aperture of {aperture})"
            );
            w.bad(Rule::Mmio64, Subject::Plan, msg);
        }
    }
    // An aperture past the firmware's address width needs the CPU feature that lifts it,
    // stated so the outputs ask for it (checked where the plan states its aperture: a
    // plan read back).
    let stated_features: Vec<&str> = spec
        .mmio64
        .as_ref()
        .and_then(|m| m.get("cpu_features"))
        .and_then(serde_json::Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(serde_json::Value::as_str)
        .collect();
    let widest = stated.and(stated.max(aperture));
    let feature = widest.and_then(|a| {
        crate::topology::mmio64::cpu_feature_needed(
            &machine.limits,
            spec.policy.phys_bits,
            a.bytes(),
        )
    });
    if let (Some(f), Some(a)) = (feature, widest) {
        if !stated_features.contains(&f) {
            let msg = format!(
                "the 64-bit aperture of {a} passes the address width the firmware maps \
                 without the CPU feature {f}, which the plan does not ask for \
                 (mmio64.cpu_features)"
            );
            w.bad(Rule::Mmio64, Subject::Plan, msg);
        }
    }
    if let (Some(aperture), Some(max)) = (aperture, max) {
        if aperture.bytes() > max {
            let msg = format!(
                "the 64-bit BARs and reserves need an aperture of {aperture}; the guest \
                 addresses {} GiB for PCI",
                max >> 30
            );
            w.bad(Rule::Mmio64, Subject::Plan, msg);
        }
    }
    // Hotplug reserves: empty hotpluggable slots of the machine's reserve kind.
    let mut free_total = 0;
    let mut free_node: BTreeMap<u32, u32> = BTreeMap::new();
    for (&i, &(c, m)) in &w.buses {
        let counts = m.bus.hotplug
            && c.hotplug != Some(false)
            && match machine.reserve_kind {
                ReserveKind::PciePort => m.bus.express && m.bus.slot_count() == 1,
                ReserveKind::PciSlot => !m.bus.express,
            };
        if !counts {
            continue;
        }
        let empty = (m.bus.slots[0]..=m.bus.slots[1])
            .filter(|&s| (0..FUNCTIONS_PER_SLOT).all(|f| !used.contains_key(&(0, i, s, f))))
            .count() as u32;
        free_total += empty;
        if let Some(n) = w.node_of(i) {
            *free_node.entry(n).or_default() += empty;
        }
    }
    if free_total < eff.hotplug_reserve {
        let msg = format!(
            "hotplug reserve: {free_total} empty hotpluggable slots, {} required",
            eff.hotplug_reserve
        );
        w.bad(Rule::HotplugReserve, Subject::Plan, msg);
    }
    for k in 0..eff.numa_nodes {
        let have = free_node.get(&k).copied().unwrap_or(0);
        if have < eff.hotplug_reserve_per_node {
            let msg = format!(
                "hotplug reserve: NUMA node {k} has {have} empty hotpluggable slots, {} required",
                eff.hotplug_reserve_per_node
            );
            w.bad(Rule::HotplugReserve, Subject::NumaNode { node: k }, msg);
        }
    }
    let _ = (spec, cat);
}

/// A controller marked `builtin` is one the machine creates itself: it must be one of the
/// machine's builtin controllers, at the machine's address.
fn check_builtin(w: &mut World, c: &ControllerEntry) {
    let machine = w.machine;
    let Some(b) = machine
        .builtin_controllers
        .iter()
        .find(|b| b.id == c.id && b.model == c.model && b.index == c.index)
    else {
        let msg = format!(
            "{} ({} index {}) is marked builtin, but machine {} has no such builtin controller",
            w.controller(&c.id),
            c.model,
            c.index,
            machine.name
        );
        w.bad(Rule::Builtin, Subject::controller(&c.id), msg);
        return;
    };
    let home = PciAddress::new(0, b.slot.get(), b.function.get());
    match &c.address {
        None => {}
        Some(Address::Pci(a)) if a.key() == home.key() => {}
        Some(a) => {
            let msg = format!(
                "builtin {} of machine {} is at {home}; the plan moves it to {a} \
                 (a builtin cannot move)",
                w.controller(&c.id),
                machine.name
            );
            w.bad(Rule::Builtin, Subject::controller(&c.id), msg);
        }
    }
}

/// USB controllers: a port count within what the model supports.
fn check_usb_ports(w: &mut World, who: Who, m: &crate::catalog::StorageModel, ports: Option<u32>) {
    let Some(p) = ports else { return };
    if m.provides != ControllerType::Usb {
        let msg = format!("{who}: `ports` applies only to USB controllers");
        w.bad(Rule::UsbPorts, who.subject(), msg);
        return;
    }
    let max = m.max_ports.or(m.ports).unwrap_or(0);
    if p == 0 || p > max {
        let msg = format!("{who}: {p} USB ports; a {} has 1-{max}", m.model);
        w.bad(Rule::UsbPorts, who.subject(), msg);
    }
}

/// PCIe ports (root and downstream) are slot 0 of their chassis in QEMU, which refuses two
/// ports with the same chassis/slot pair; pci-bridges need a unique non-zero chassis_nr.
/// All of them are 8-bit properties. An attribute the model does not have is refused by
/// QEMU as an unknown property.
fn check_chassis(w: &mut World) {
    let mut ports: crate::topology::ByIndex<&str> = Default::default();
    let mut bridges: crate::topology::ByIndex<&str> = Default::default();
    let mut found = Vec::new();
    for &(c, m) in w.buses.values() {
        let has = |a: Attr| m.attrs.contains(&a);
        let who = w.controller(&c.id);
        let mut bad = |msg: String| {
            found.push(Finding::new(
                Rule::ChassisPort,
                Subject::controller(&c.id),
                msg,
            ));
        };
        let attrs = [
            (Attr::Chassis, c.chassis),
            (Attr::Port, c.port),
            (Attr::ChassisNr, c.chassis_nr),
            (Attr::BusNr, c.bus_nr),
        ];
        for (attr, v) in attrs {
            let Some(v) = v else { continue };
            let name = attr.name();
            if !has(attr) {
                bad(format!(
                    "{who}: {} has no `{name}` attribute (QEMU refuses the property)",
                    c.model
                ));
            } else if attr != Attr::BusNr && v > QEMU_CHASSIS_MAX {
                bad(format!(
                    "{who}: {name} {v} is out of range 0-{QEMU_CHASSIS_MAX}"
                ));
            }
        }
        if let Some(ch) = c.chassis.filter(|_| has(Attr::Chassis)) {
            if let Some(prev) = ports.insert(ch, &c.id) {
                bad(format!(
                    "controllers {} and {} are both chassis {ch} slot {PCIE_PORT_SLOT} \
                     (port {}): QEMU refuses two PCIe ports with the same chassis/slot pair",
                    w.id(prev),
                    w.id(&c.id),
                    c.port.map_or("-".to_string(), |p| p.to_string())
                ));
            }
        }
        if let Some(nr) = c.chassis_nr.filter(|_| has(Attr::ChassisNr)) {
            if nr == 0 {
                bad(format!(
                    "{who}: chassis_nr 0; a pci-bridge needs a chassis number 1-{QEMU_CHASSIS_MAX}"
                ));
            }
            if let Some(prev) = bridges.insert(nr, &c.id) {
                bad(format!(
                    "controllers {} and {} both have chassis_nr {nr}: each bridge needs \
                     a unique chassis number",
                    w.id(prev),
                    w.id(&c.id)
                ));
            }
        }
    }
    w.findings.extend(found);
}
