//! A verifier finding as data: the rule a plan breaks (a kind a caller can match on), the
//! device, controller or part of the topology it concerns, and a sentence for people.
//! [`crate::check`], [`crate::Error::Check`] and `check` of a libvirt domain carry them;
//! they serialize to JSON for management software.
//!
//! ```
//! use devaddr::{Rule, Spec, Subject};
//! let plan = Spec::parse(
//!     "machine: q35\ndevices:\n\
//!      - {id: a, kind: virtio-net, address: {type: pci, bus: 0, slot: 3, function: 0}}\n\
//!      - {id: b, kind: virtio-net, address: {type: pci, bus: 0, slot: 3, function: 0}}\n",
//!     "plan.yaml",
//! )?;
//! let findings = devaddr::check(&plan)?;
//! let f = findings.iter().find(|f| f.rule == Rule::UniqueAddress).unwrap();
//! assert_eq!(f.subject, Subject::device("b"));
//! assert_eq!(f.to_string(), "device `b` and device `a` both use 0000:00:03.0");
//! let json = serde_json::to_value(f).unwrap();
//! assert_eq!(json["rule"], "unique-address");
//! assert_eq!(json["subject"]["id"], "b");
//! # Ok::<(), devaddr::Error>(())
//! ```

use serde::Serialize;
use std::fmt;

/// The rule a finding reports broken: one per family of the verifier's checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Rule {
    /// The plan cannot be read as a plan at all (an unknown machine, a number no plan
    /// can hold): reported as a finding by [`crate::verify::verify_against`].
    Unreadable,
    /// Ordered devices (`order:`) must have ascending PCI addresses.
    Order,
    /// A `placement: root` device sits on the root bus (index 0).
    RootPlacement,
    /// The devices of an `apart` set have upstream links of their own.
    Apart,
    /// The devices of a `together` set sit below one switch, bridge or expander.
    Together,
    /// Every device and controller id is unique.
    UniqueId,
    /// A controller model or device kind the catalog does not have.
    UnknownModel,
    /// The root bus: the machine's root model, at index 0 only.
    RootBus,
    /// Controller indexes: unique per controller type, within the PCI domain's bus
    /// numbers, `pci.N` the id of PCI bus N.
    ControllerIndex,
    /// No two devices or controllers share a PCI address (builtin functions included).
    UniqueAddress,
    /// A device or controller without an address, or without the PCI address it needs.
    MissingAddress,
    /// An address of the wrong type for the device (a PCI address for a USB device…).
    AddressType,
    /// A PCI address that does not exist: domain 0, function 0-7, a slot the bus has.
    SlotRange,
    /// A PCI address on a bus no controller provides.
    MissingBus,
    /// The bus accepts what plugs into it (endpoint, root port, bridge… connect kinds).
    ConnectKind,
    /// The bus type: PCIe-only device kinds and a device's `bus:` request.
    BusType,
    /// The controller tree: every parent chain reaches the root bus, expander buses sit
    /// on it.
    BusTree,
    /// NUMA nodes: expanders have one, devices sit below the expander of theirs, nodes
    /// exist.
    NumaNode,
    /// A device that needs hotplug sits on a hotpluggable bus.
    Hotplug,
    /// The devices of a `group` share one slot.
    Group,
    /// A slot's functions other than 0 need function 0.
    FunctionZero,
    /// A slot with several functions has function 0 marked multifunction.
    Multifunction,
    /// QEMU's `chassis`, `port`, `chassis_nr` and `bus_nr` properties: present on the
    /// model, in range, unique where QEMU needs them unique.
    ChassisPort,
    /// The PCI domain's bus numbers suffice for every bus.
    BusNumbers,
    /// Expander buses' `bus_nr` ranges hold the buses below them (and leave the root
    /// hierarchy its numbers).
    ExpanderRange,
    /// The firmware's I/O windows suffice for the bridges and ports holding devices
    /// with I/O BARs.
    IoWindows,
    /// The 64-bit aperture the big BARs and reserves need fits what the guest can address,
    /// and only ports with QEMU's resource reservation keep 64-bit room.
    Mmio64,
    /// The hotplug reserve (total or per NUMA node) is kept empty.
    HotplugReserve,
    /// A builtin controller is the machine's own, at the machine's address.
    Builtin,
    /// A USB controller's port count is within what its model supports.
    UsbPorts,
    /// A USB device's address: a controller on its bus, a port it has, used once.
    UsbAddress,
    /// A drive's address: a controller of its bus type, a unit it has, used once.
    DriveAddress,
    /// Every device and controller of the spec is in the plan, and the plan has no
    /// others.
    Missing,
    /// A device keeps its kind, a controller its index and model.
    Changed,
    /// Pinned addresses (and given controllers' addresses) are kept.
    PinnedAddress,
    /// libvirt would still add a device or controller the domain lacks.
    LibvirtWouldAdd,
    /// libvirt would still assign an address the domain lacks.
    LibvirtWouldAddress,
    /// The libvirt policy's integer program disagrees with libvirt's own growth (a bug;
    /// debug builds only).
    LibvirtReplay,
}

impl Rule {
    /// The rule's name as in JSON (`unique-address`).
    pub fn name(self) -> &'static str {
        use Rule::*;
        match self {
            Unreadable => "unreadable",
            Order => "order",
            RootPlacement => "root-placement",
            Apart => "apart",
            Together => "together",
            UniqueId => "unique-id",
            UnknownModel => "unknown-model",
            RootBus => "root-bus",
            ControllerIndex => "controller-index",
            UniqueAddress => "unique-address",
            MissingAddress => "missing-address",
            AddressType => "address-type",
            SlotRange => "slot-range",
            MissingBus => "missing-bus",
            ConnectKind => "connect-kind",
            BusType => "bus-type",
            BusTree => "bus-tree",
            NumaNode => "numa-node",
            Hotplug => "hotplug",
            Group => "group",
            FunctionZero => "function-zero",
            Multifunction => "multifunction",
            ChassisPort => "chassis-port",
            BusNumbers => "bus-numbers",
            ExpanderRange => "expander-range",
            IoWindows => "io-windows",
            Mmio64 => "mmio64",
            HotplugReserve => "hotplug-reserve",
            Builtin => "builtin",
            UsbPorts => "usb-ports",
            UsbAddress => "usb-address",
            DriveAddress => "drive-address",
            Missing => "missing",
            Changed => "changed",
            PinnedAddress => "pinned-address",
            LibvirtWouldAdd => "libvirt-would-add",
            LibvirtWouldAddress => "libvirt-would-address",
            LibvirtReplay => "libvirt-replay",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a finding concerns.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Subject {
    /// A device of the plan, by id.
    Device {
        /// The device's id.
        id: String,
    },
    /// A controller of the plan (or the machine's root bus), by id.
    Controller {
        /// The controller's id.
        id: String,
    },
    /// A `group` of devices, by name.
    Group {
        /// The group's name.
        name: String,
    },
    /// A PCI slot.
    Slot {
        /// The bus index.
        bus: u32,
        /// The slot on that bus.
        slot: u8,
    },
    /// A NUMA node of the guest.
    NumaNode {
        /// The node.
        node: u32,
    },
    /// An element of a libvirt domain, as `check` of a domain names it
    /// (`<interface type='user'> model 'virtio' (line 12)`).
    Element {
        /// The element's description.
        element: String,
    },
    /// The plan or guest as a whole (budgets, reserves).
    Plan,
}

impl Subject {
    /// The device `id`.
    pub fn device(id: impl Into<String>) -> Self {
        Subject::Device { id: id.into() }
    }

    /// The controller `id`.
    pub fn controller(id: impl Into<String>) -> Self {
        Subject::Controller { id: id.into() }
    }

    /// The plan id of the device or controller concerned (None for other subjects).
    pub fn id(&self) -> Option<&str> {
        match self {
            Subject::Device { id } | Subject::Controller { id } => Some(id),
            _ => None,
        }
    }
}

/// One rule a plan breaks, for one subject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Finding {
    /// The rule broken.
    pub rule: Rule,
    /// What it concerns.
    pub subject: Subject,
    /// The finding as a sentence (what [`Display`](fmt::Display) prints).
    pub message: String,
}

impl Finding {
    /// A finding of `rule` about `subject`.
    pub fn new(rule: Rule, subject: Subject, message: impl Into<String>) -> Self {
        Finding {
            rule,
            subject,
            message: message.into(),
        }
    }
}

/// "1 finding" / "3 findings", for messages that refuse a plan or a domain.
pub(crate) fn counted(findings: &[Finding]) -> String {
    let n = findings.len();
    format!("{n} finding{}", if n == 1 { "" } else { "s" })
}

/// One `  - finding` line each, for the same messages.
pub(crate) fn bulleted(findings: &[Finding]) -> String {
    let lines: Vec<String> = findings.iter().map(|f| format!("  - {f}")).collect();
    lines.join("\n")
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}
