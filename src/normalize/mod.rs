//! normalize: resolve the spec against the catalog and the policy into a placement
//! problem: existing buses (with what is already used on them), units to place on PCI
//! buses (devices, multifunction groups, implicit controllers), and non-PCI devices.

mod pins;
mod placement;
pub(crate) mod ports;
mod storage;

use crate::catalog::{Catalog, Family, IoBar, Kind, MachineModel, PciType, ReserveKind};
use crate::error::{Error, Result};
use crate::spec::{BusType, Effective, Multifunction, Prefer, Spec};
use crate::topology::PciAddress;
use crate::vocab::{pci, ConnectKind, ControllerType};
use std::collections::{BTreeMap, BTreeSet};

pub(crate) use storage::StorageCtl;

/// NUMA zone of a bus or unit: `None` = not below an expander bus.
pub(crate) type Zone = Option<u32>;

/// How a unit occupies a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Mode {
    /// A whole slot (functions of a group, or one device at function 0).
    Whole,
    /// One function; eight packed to a slot (`multifunction: pack`).
    Pack,
    /// One function of a slot shared with others of its kind (pcie-root-port).
    Aggregate,
}

/// An existing PCI bus: the root, a controller given in the spec, or a gap controller
/// added for a pinned address on a bus index that had no controller.
#[derive(Debug, Clone)]
pub(crate) struct Bus {
    pub index: u32,
    pub model: String,
    pub zone: Zone,
    pub hotplug: bool,
    /// Its own address (None for the root and for controllers still to be placed).
    pub address: Option<PciAddress>,
    /// Used functions per slot (bit f = function f).
    pub used: BTreeMap<u8, u8>,
    /// Slots whose first user aggregates (root ports share them).
    pub aggregate_slots: BTreeSet<u8>,
    /// Where it came from: a spec controller entry (by position), or a gap.
    pub entry: Option<usize>,
    /// The together component whose pinned devices it holds (it, and every bus below
    /// it, is that component's: see `placement::anchors`).
    pub set: Option<usize>,
}

/// What a unit is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum What {
    /// Spec devices (one, or a multifunction group in function order).
    Devices(Vec<usize>),
    /// An implicit storage/USB controller (index into `Problem::storage`).
    Storage(usize),
    /// An existing controller without an address (bus index).
    Controller(u32),
}

/// Something to place on a PCI bus.
#[derive(Debug, Clone)]
pub(crate) struct Unit {
    pub what: What,
    /// Connect kind: an endpoint kind or a controller's (None: a root bus model, which no
    /// bus accepts).
    pub connect: Option<ConnectKind>,
    pub hotplug: bool,
    pub zone: Zone,
    /// Needs an I/O window in the bridge above it.
    pub io: bool,
    pub mode: Mode,
    /// Position in the spec (stable placement order).
    pub order: usize,
    /// The ordering requirement against pinned devices: only buses with an index above
    /// `after` and below `before` may take it.
    pub bus_range: (Option<u32>, Option<u32>),
    /// Position in the ordering requirement of its first ordered device (None: unordered).
    pub rank: Option<usize>,
    /// `placement: root`: only the root bus (index 0) may take it.
    pub root: bool,
    /// In an `apart` set: a class of its own, on a bus whose upstream link is its own.
    pub apart: bool,
    /// The together component (outside NUMA nodes) whose switch or bridge it sits below.
    pub set: Option<usize>,
}

/// A resolved spec device.
#[derive(Debug, Clone)]
pub(crate) struct Dev {
    pub kind: DevKind,
    /// For PCI devices: conventional or PCIe after `bus:`/`prefer`/machine resolution.
    pub pcie: bool,
    pub hotplug: bool,
    pub zone: Zone,
    pub io: bool,
}

/// What the planner reads of a device's catalog kind (a copy of those fields, not of the
/// whole kind with its names).
#[derive(Debug, Clone)]
pub(crate) struct DevKind {
    pub family: Family,
    pub pci: Option<crate::catalog::PciType>,
    pub drive_bus: Option<crate::vocab::ControllerType>,
    pub video: bool,
    /// The storage controller model a device of this kind is.
    pub controller: Option<String>,
}

impl DevKind {
    fn of(k: &Kind) -> DevKind {
        DevKind {
            family: k.family,
            pci: k.pci,
            drive_bus: k.drive_bus,
            video: k.video,
            controller: k.controller.clone(),
        }
    }
}

/// A set of buses below one entry (see `Problem::sets`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SetInfo {
    /// The existing switch or bridge its pinned devices share (None: one is added).
    pub anchor: Option<u32>,
    /// The NUMA zone its buses are in.
    pub zone: Zone,
    /// The private bridge of one apart unit (its entry plugs into a root bus or a lane),
    /// rather than a together component.
    pub private: bool,
}

/// What kind of planning run the problem is for (a fresh plan needs none of it).
#[derive(Debug, Clone, Default)]
pub(crate) struct Context {
    /// The guest is running: no controller may be added that cannot be attached live, and
    /// no hotplug reserve applies (the reserve is what live hotplug consumes).
    pub live: bool,
    /// Devices (by spec position) that sat at these PCI addresses in the previous plan and
    /// may stay there or move (`--allow-moves`): the program decides, fewest moves first.
    pub previous: BTreeMap<usize, PciAddress>,
    /// A capacity question: how many more units like this one fit.
    pub extra: Option<ExtraUnit>,
    /// Given USB/drive addresses are not checked (the caller asks [`ports::findings`]).
    pub ports_unchecked: bool,
}

/// The unit a capacity question counts.
#[derive(Debug, Clone)]
pub(crate) struct ExtraUnit {
    pub connect: Option<ConnectKind>,
    pub hotplug: bool,
    pub zone: Zone,
    pub io: bool,
    pub mode: Mode,
    /// At most this many (e.g. a kind limited per guest).
    pub max: u32,
}

/// The normalized problem: the resolved devices, buses, units and pins, beside the spec
/// it was built from (borrowed: the entries a plan copies and the ids an explanation
/// names).
#[derive(Debug, Clone)]
pub(crate) struct Problem<'s> {
    pub machine: MachineModel,
    pub eff: Effective,
    pub spec: &'s Spec,
    pub devs: Vec<Dev>,
    pub buses: Vec<Bus>,
    pub units: Vec<Unit>,
    /// Fixed PCI addresses of spec devices (by device position).
    pub pinned: BTreeMap<usize, PciAddress>,
    /// Storage/USB controllers (builtin, from spec devices, from spec controllers, implicit).
    pub storage: Vec<StorageCtl>,
    /// Whether endpoints may sit directly on the PCIe root bus.
    pub endpoints_on_pcie_root: bool,
    pub ctx: Context,
    /// Units (by position in `units`) that may keep their previous slot: (bus, slot).
    pub optional: BTreeMap<usize, (u32, u8)>,
    /// The ordering requirement: devices (by spec position) whose PCI addresses ascend.
    pub sequence: Vec<usize>,
    /// The placement constraints (`placement: root`, `apart`, `together`).
    pub constraints: crate::spec::placement::Constraints,
    /// The sets of buses of their own below one entry (a switch or bridge): together
    /// components outside the NUMA nodes (by position in `constraints.together`), and
    /// private bridges of apart units that no root bus or lane takes (numbered after
    /// them).
    pub sets: BTreeMap<usize, SetInfo>,
    /// How explanations name the firmware whose budgets apply, and the other firmware's
    /// as a fix ([`crate::catalog::firmware_words`]); `machine.limits` are already the
    /// firmware's.
    pub firmware_words: (String, String),
}

impl Problem<'_> {
    pub fn bus(&self, index: u32) -> Option<&Bus> {
        self.buses.iter().find(|b| b.index == index)
    }
}

/// Build the problem from a parsed spec.
pub(crate) fn normalize<'s>(spec: &'s Spec, cat: &Catalog) -> Result<Problem<'s>> {
    normalize_in(spec, cat, Context::default())
}

/// Build the problem for a given kind of run.
pub(crate) fn normalize_in<'s>(spec: &'s Spec, cat: &Catalog, ctx: Context) -> Result<Problem<'s>> {
    crate::spec::bounds::check(spec)?;
    generated_ids(spec)?;
    let machine = cat
        .machine(&spec.machine)
        .ok_or_else(|| cat.unknown_machine(&spec.machine))?
        .clone();
    if let Some(arch) = &spec.arch {
        if arch != &machine.arch {
            return Err(Error::input(
                "arch",
                format!(
                    "machine `{}` is {}, but arch `{arch}` was given",
                    machine.name, machine.arch
                ),
            ));
        }
    }
    let mut eff = spec.effective_policy();
    eff.firmware = crate::catalog::spec_firmware(spec, &machine);
    check_policy(spec, &eff, &machine)?;
    let firmware_words = crate::catalog::firmware_words(&machine, eff.firmware);
    let mut machine = machine;
    machine.limits = crate::catalog::spec_limits(spec, &machine)?;

    let devs = resolve_devices(spec, cat, &machine, &eff)?;
    let sequence = crate::order::validate(spec, |i| devs[i].kind.family == Family::Pci)?;
    let constraints = placement::validate(spec, cat, &machine, &devs)?;
    let mut buses = pins::existing_buses(spec, cat, &machine, &eff)?;
    let pinned = pins::pin_devices(spec, cat, &machine, &devs, &mut buses, &ctx)?;
    let mut storage = storage::controllers(spec, cat, &machine, &devs)?;
    pins::pin_storage(cat, &machine, &mut storage, &mut buses)?;
    pins::function_zero(spec, &buses, &ctx)?;
    if ctx.live {
        storage::check_live(spec, cat, &storage)?;
    }

    let mut p = Problem {
        endpoints_on_pcie_root: eff.multifunction == Multifunction::Pack,
        machine,
        eff,
        spec,
        devs,
        buses,
        units: Vec::new(),
        pinned,
        storage,
        ctx,
        optional: BTreeMap::new(),
        sequence,
        constraints,
        sets: BTreeMap::new(),
        firmware_words,
    };
    p.sets = placement::anchors(&mut p, cat)?;
    if !p.ctx.ports_unchecked {
        if let Some((_, e)) = ports::findings(&p, cat, spec).into_iter().next() {
            return Err(e);
        }
    }
    p.units = build_units(&p, cat)?;
    placement::private_sets(&mut p, cat);
    for (ui, u) in p.units.iter().enumerate() {
        if let What::Devices(members) = &u.what {
            if let Some(a) = p.ctx.previous.get(&members[0]) {
                p.optional.insert(ui, (a.bus, a.slot));
            }
        }
    }
    Ok(p)
}

fn check_policy(spec: &Spec, eff: &Effective, machine: &MachineModel) -> Result<()> {
    crate::spec::bounds::against_machine(spec, machine)?;
    if spec.policy.hotplug_reserve_bar64.is_some() && machine.grow.pcie_port.is_none() {
        return Err(Error::input(
            "policy.hotplug_reserve_bar64",
            format!(
                "machine `{}` has no PCIe root ports, the only ports that keep 64-bit room \
                 for a device hot-added later; use q35 or virt",
                machine.name
            ),
        ));
    }
    if machine.grow.numa_expander.is_none() && eff.hotplug_reserve_per_node > 0 {
        return Err(Error::input(
            "policy.hotplug_reserve_per_node",
            format!("machine `{}` has no NUMA expander bus model", machine.name),
        ));
    }
    if eff.multifunction == Multifunction::Off {
        if let Some((i, d)) = spec
            .devices
            .iter()
            .enumerate()
            .find(|(_, d)| d.group.is_some())
        {
            return Err(Error::input(
                format!("devices[{i}].group"),
                format!(
                    "device `{}` names group `{}`, but policy.multifunction is off; \
                     expected multifunction: group or pack",
                    d.id,
                    d.group.as_deref().unwrap_or_default()
                ),
            ));
        }
    }
    Ok(())
}

fn resolve_devices(
    spec: &Spec,
    cat: &Catalog,
    machine: &MachineModel,
    eff: &Effective,
) -> Result<Vec<Dev>> {
    // Each device is resolved on its own: every device's problems are reported at once.
    let mut ids = crate::light_hash::map::<&str, usize>(spec.devices.len());
    let mut devs = Vec::with_capacity(spec.devices.len());
    let mut errors = Vec::new();
    let kinds = crate::topology::catalog_kinds(spec.devices.iter().map(|d| d.kind.as_str()), cat);
    for (i, d) in spec.devices.iter().enumerate() {
        let at = |field: &str| format!("devices[{i}].{field}");
        if d.id.is_empty() {
            errors.push(Error::input(at("id"), "empty id; expected a unique name"));
        } else if let Some(prev) = ids.insert(d.id.as_str(), i) {
            errors.push(
                Error::input(
                    at("id"),
                    format!("duplicate id `{}` (also devices[{prev}])", d.id),
                )
                .with_code(crate::Code::Duplicate),
            );
        }
        match resolve_device(spec, cat, machine, eff, i, kinds[i]) {
            Ok(dev) => devs.push(dev),
            Err(e) => errors.push(e),
        }
    }
    Error::collect(errors)?;
    Ok(devs)
}

/// Resolve spec device `i` against its kind (`kind`, looked up in `cat`), the machine and
/// the policy.
fn resolve_device(
    spec: &Spec,
    cat: &Catalog,
    machine: &MachineModel,
    eff: &Effective,
    i: usize,
    kind: Option<&Kind>,
) -> Result<Dev> {
    let d = &spec.devices[i];
    let at = |field: &str| format!("devices[{i}].{field}");
    let kind = kind.ok_or_else(|| {
        Error::input(
            at("kind"),
            format!(
                "unknown device kind `{}` for device `{}`{}",
                d.kind,
                d.id,
                cat.kind_hint(&d.kind)
            ),
        )
        .with_code(crate::Code::UnknownName)
    })?;
    if let (Some(size), true) = (d.bar64, kind.family != Family::Pci) {
        return Err(Error::input(
            at("bar64"),
            format!(
                "device `{}` is a {} device and has no PCI BARs; bar64 ({size}) applies to \
                 PCI devices (vfio-pci)",
                d.id, d.kind
            ),
        ));
    }
    if let Some(n) = d.numa_node {
        if n >= eff.numa_nodes {
            return Err(Error::input(
                at("numa_node"),
                format!(
                    "device `{}` names NUMA node {n}, but the guest has {} NUMA node{} \
                     (nodes 0..{}); raise policy.numa_nodes or pick an existing node",
                    d.id,
                    eff.numa_nodes,
                    if eff.numa_nodes == 1 { "" } else { "s" },
                    eff.numa_nodes.saturating_sub(1)
                ),
            ));
        }
        if kind.family != Family::Pci {
            return Err(Error::input(
                at("numa_node"),
                format!(
                    "device `{}` is a {} device; only PCI devices sit below a NUMA \
                     expander bus",
                    d.id,
                    family_name(kind.family)
                ),
            ));
        }
        if machine.grow.numa_expander.is_none() {
            return Err(Error::input(
                at("numa_node"),
                format!("machine `{}` has no NUMA expander bus", machine.name),
            ));
        }
    }
    if let Some(max) = kind.max_per_guest {
        let n = spec.devices[..=i]
            .iter()
            .filter(|e| e.kind == kind.kind)
            .count() as u32;
        if n > max {
            return Err(Error::input(
                at("kind"),
                format!(
                    "device `{}`: a guest can have at most {max} {} device(s); found {n}",
                    d.id, kind.kind
                ),
            ));
        }
    }
    let hotplug = d.hotplug.unwrap_or(eff.hotplug_by_default && kind.hotplug);
    if hotplug && !kind.hotplug {
        return Err(Error::input(
            at("hotplug"),
            format!(
                "device `{}`: kind `{}` cannot be hotplugged",
                d.id, kind.kind
            ),
        ));
    }
    if d.ports.is_some()
        && kind.controller.as_deref().is_none_or(|c| {
            cat.storage
                .get(c)
                .is_none_or(|s| s.provides != ControllerType::Usb)
        })
    {
        return Err(Error::input(
            at("ports"),
            format!("device `{}`: `ports` applies only to USB controllers", d.id),
        ));
    }
    if d.host.is_some() && kind.kind != "vfio-pci" {
        return Err(Error::input(
            at("host"),
            format!("device `{}`: `host` applies only to vfio-pci", d.id),
        ));
    }
    let pcie = match kind.family {
        Family::Pci => {
            let t = kind.pci.unwrap_or(PciType::Pci);
            match (d.bus, t) {
                _ if !machine.pcie => {
                    if d.bus == Some(BusType::Pcie) {
                        return Err(Error::input(
                            at("bus"),
                            format!(
                                "device `{}` asks for PCIe, but machine `{}` has only \
                                 conventional PCI",
                                d.id, machine.name
                            ),
                        ));
                    }
                    false
                }
                (Some(BusType::Pcie), PciType::Pci) => {
                    return Err(Error::input(
                        at("bus"),
                        format!(
                            "device `{}`: kind `{}` is conventional PCI only; expected \
                             bus: pci",
                            d.id, kind.kind
                        ),
                    ))
                }
                (Some(BusType::Pci), PciType::Pcie) => {
                    return Err(Error::input(
                        at("bus"),
                        format!(
                            "device `{}`: kind `{}` is PCIe only; expected bus: pcie",
                            d.id, kind.kind
                        ),
                    ))
                }
                (Some(b), _) => b == BusType::Pcie,
                (None, PciType::Pcie) => true,
                (None, PciType::Pci) => false,
                (None, PciType::Either) => eff.prefer == Prefer::Pcie,
            }
        }
        _ => {
            if d.bus.is_some() {
                return Err(Error::input(
                    at("bus"),
                    format!(
                        "device `{}` is a {} device; `bus` applies to PCI devices",
                        d.id,
                        family_name(kind.family)
                    ),
                ));
            }
            if d.group.is_some() {
                return Err(Error::input(
                    at("group"),
                    format!(
                        "device `{}` is a {} device; only PCI devices form \
                         multifunction groups",
                        d.id,
                        family_name(kind.family)
                    ),
                ));
            }
            false
        }
    };
    let io = match kind.io_bar {
        IoBar::None => false,
        IoBar::Always => true,
        IoBar::Legacy => !pcie,
    };
    Ok(Dev {
        kind: DevKind::of(kind),
        pcie,
        hotplug,
        zone: d.numa_node,
        io,
    })
}

pub(crate) fn family_name(f: Family) -> &'static str {
    match f {
        Family::Pci => "PCI",
        Family::Usb => "USB",
        Family::Drive => "drive",
    }
}

fn build_units(p: &Problem, cat: &Catalog) -> Result<Vec<Unit>> {
    let spec = p.spec;
    let root = cat.pci_model(&p.buses[0].model);
    let ranges = BusRanges::new(spec, &p.sequence, |i| {
        let d = &p.devs[i];
        d.kind.family == Family::Pci
            && (d.zone.is_some()
                || (d.hotplug && !root.bus.hotplug)
                || !root.bus.accepts(ConnectKind::endpoint(d.pcie))
                || (root.bus.express && !p.endpoints_on_pcie_root))
    });
    let mut units = Vec::with_capacity(spec.devices.len());
    // Groups first gather their members (in spec order).
    let mut groups: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, d) in spec.devices.iter().enumerate() {
        if let Some(g) = &d.group {
            groups.entry(g).or_default().push(i);
        }
    }
    let mut done_groups = BTreeSet::new();
    for (i, d) in spec.devices.iter().enumerate() {
        let dev = &p.devs[i];
        if dev.kind.family != Family::Pci || p.pinned.contains_key(&i) {
            continue;
        }
        let members = match &d.group {
            Some(g) => {
                if !done_groups.insert(g.clone()) {
                    continue;
                }
                groups[g.as_str()].clone()
            }
            None => vec![i],
        };
        let first = &p.devs[members[0]];
        let (mut hotplug, mut io) = (false, false);
        for &m in &members {
            let md = &p.devs[m];
            let at = || format!("devices[{m}]");
            if md.pcie != first.pcie {
                return Err(Error::input(
                    at(),
                    format!(
                        "group `{}` mixes conventional PCI and PCIe devices (`{}` and `{}`); \
                         set `bus:` on its members so that they agree",
                        d.group.as_deref().unwrap_or_default(),
                        spec.devices[members[0]].id,
                        spec.devices[m].id
                    ),
                ));
            }
            if md.zone != first.zone {
                return Err(Error::input(
                    format!("{}.numa_node", at()),
                    format!(
                        "group `{}`: its devices name different NUMA nodes",
                        d.group.as_deref().unwrap_or_default()
                    ),
                ));
            }
            hotplug |= md.hotplug;
            io |= md.io;
        }
        let per_slot = usize::from(pci::FUNCTIONS_PER_SLOT);
        if members.len() > per_slot {
            return Err(Error::input(
                format!("devices[{}].group", members[per_slot]),
                format!(
                    "group `{}` has {} devices; a slot has {per_slot} functions",
                    d.group.as_deref().unwrap_or_default(),
                    members.len()
                ),
            ));
        }
        let apart = members
            .iter()
            .any(|&m| p.constraints.apart_of(m).next().is_some());
        let mode = if d.group.is_none()
            && p.eff.multifunction == Multifunction::Pack
            && !hotplug
            && !apart
        {
            Mode::Pack
        } else {
            Mode::Whole
        };
        let range = ranges.of(&members);
        let rank = ranges.rank(&members);
        let c = &p.constraints;
        let root = members.iter().any(|m| c.root.contains(m));
        let apart = members.iter().any(|&m| c.apart_of(m).next().is_some());
        let set = members
            .iter()
            .find_map(|&m| c.together_of(m))
            .filter(|j| p.sets.contains_key(j));
        units.push(Unit {
            root,
            apart,
            set,
            rank,
            what: What::Devices(members),
            connect: Some(ConnectKind::endpoint(first.pcie)),
            hotplug,
            zone: first.zone,
            io,
            mode,
            order: i,
            bus_range: range,
        });
    }
    // Implicit storage/USB controllers.
    for (si, s) in p.storage.iter().enumerate() {
        if !s.implicit || s.address.is_some() {
            continue;
        }
        let kind = cat
            .kind(&s.model)
            .expect("storage kinds are in the catalog");
        let pcie = p.machine.pcie && kind.pci != Some(PciType::Pci);
        let io = match kind.io_bar {
            IoBar::None => false,
            IoBar::Always => true,
            IoBar::Legacy => !pcie,
        };
        units.push(Unit {
            what: What::Storage(si),
            connect: Some(ConnectKind::endpoint(pcie)),
            hotplug: p.ctx.live,
            zone: None,
            io,
            mode: if p.eff.multifunction == Multifunction::Pack {
                Mode::Pack
            } else {
                Mode::Whole
            },
            order: spec.devices.len() + si,
            bus_range: (None, None),
            rank: None,
            root: false,
            apart: false,
            set: None,
        });
    }
    // Existing controllers that still need a slot.
    for b in &p.buses {
        if b.index == 0 || b.address.is_some() {
            continue;
        }
        let m = cat.pci_model(&b.model);
        units.push(Unit {
            what: What::Controller(b.index),
            connect: m.connect,
            hotplug: false,
            zone: if m.numa { None } else { b.zone },
            io: false,
            mode: if m.aggregate {
                Mode::Aggregate
            } else {
                Mode::Whole
            },
            order: b.index as usize,
            bus_range: (None, None),
            rank: None,
            root: false,
            apart: false,
            set: b.set,
        });
    }
    Ok(units)
}

/// The buses ordered devices may use: above every pinned device before them in the order,
/// below every pinned one after them. Computed once for the whole order.
struct BusRanges {
    /// Position of each device in the order (by spec position).
    position: BTreeMap<usize, usize>,
    /// Highest pinned bus among the first k ordered devices (k = index).
    above: Vec<Option<u32>>,
    /// Lowest pinned bus among the ordered devices from k + 1 on.
    below: Vec<Option<u32>>,
}

impl BusRanges {
    /// `off_root(i)`: device `i` can never sit on the root bus (bus 0), so every device
    /// after it in the order must sit above bus 0 too.
    fn new(spec: &Spec, seq: &[usize], off_root: impl Fn(usize) -> bool) -> Self {
        let bus = |i: usize| match &spec.devices[i].address {
            Some(crate::topology::Address::Pci(a)) => Some(a.bus),
            _ => None,
        };
        let mut above = Vec::with_capacity(seq.len());
        let mut max = None;
        for &i in seq {
            above.push(max);
            let floor = (spec.devices[i].address.is_none() && off_root(i)).then_some(0);
            max = max.max(bus(i)).max(floor);
        }
        let mut below = vec![None; seq.len()];
        let mut min: Option<u32> = None;
        for (k, &i) in seq.iter().enumerate().rev() {
            below[k] = min;
            min = match (min, bus(i)) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        let position = seq.iter().enumerate().map(|(k, &i)| (i, k)).collect();
        BusRanges {
            position,
            above,
            below,
        }
    }

    /// Position in the order of the first ordered device among `members`.
    fn rank(&self, members: &[usize]) -> Option<usize> {
        members
            .iter()
            .filter_map(|i| self.position.get(i))
            .min()
            .copied()
    }

    fn of(&self, members: &[usize]) -> (Option<u32>, Option<u32>) {
        match members.iter().filter_map(|i| self.position.get(i)).min() {
            Some(&k) => (self.above[k], self.below[k]),
            None => (None, None),
        }
    }
}

/// `pci.N` is the id devaddr gives the PCI bus of index N: a spec controller may use it
/// only for that index, or two controllers of the plan would share an id.
fn generated_ids(spec: &Spec) -> Result<()> {
    for (i, c) in spec.controllers.iter().enumerate() {
        let Some(n) =
            c.id.strip_prefix("pci.")
                .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if n != c.index {
            return Err(Error::input(
                format!("controllers[{i}].id"),
                format!(
                    "controller id `{}` names PCI bus {n} (the id devaddr gives index {n}), but \
                     this controller has index {}; expected `pci.{}` or an id of another form",
                    c.id, c.index, c.index
                ),
            ));
        }
    }
    Ok(())
}

/// The reserve kind of a bus model: does an empty slot on it count toward the reserve?
pub(crate) fn counts_for_reserve(cat: &Catalog, machine: &MachineModel, model: &str) -> bool {
    counts_for_reserve_model(cat.pci_model(model), machine)
}

/// [`counts_for_reserve`] of a model already looked up.
pub(crate) fn counts_for_reserve_model(
    m: &crate::catalog::PciModel,
    machine: &MachineModel,
) -> bool {
    if !m.bus.hotplug {
        return false;
    }
    match machine.reserve_kind {
        ReserveKind::PciePort => m.bus.express && m.bus.slot_count() == 1,
        ReserveKind::PciSlot => !m.bus.express,
    }
}
