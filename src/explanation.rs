//! Why no plan exists, as data: the binding requirement (a kind a caller can match on),
//! the devices and amounts it involves, and the fix — with a sentence for people.
//! Every infeasible answer of the library carries one ([`crate::Error::Infeasible`]),
//! and it serializes to JSON for management software.
//!
//! ```
//! use devaddr::{Binding, Error, Spec};
//! let spec = Spec::parse(
//!     "machine: q35\npolicy: {multifunction: 'off'}\ndevices:\n- {id: a, kind: e1000e}\n\
//!      - {id: b, kind: e1000e}\n- {id: c, kind: e1000e}\n- {id: d, kind: e1000e}\n\
//!      - {id: e, kind: e1000e}\n- {id: f, kind: e1000e}\n- {id: g, kind: e1000e}\n\
//!      - {id: h, kind: e1000e}\n- {id: i, kind: e1000e}\n- {id: j, kind: e1000e}\n\
//!      - {id: k, kind: e1000e}\n- {id: l, kind: e1000e}\n- {id: m, kind: e1000e}\n\
//!      - {id: n, kind: e1000e}\n",
//!     "s.yaml",
//! )?;
//! match devaddr::plan(&spec) {
//!     Err(Error::Infeasible { explanation }) => {
//!         // Fourteen e1000e, each on a root port with an I/O BAR: thirteen windows.
//!         assert_eq!(explanation.binding, Binding::IoWindows);
//!         let json = serde_json::to_value(&explanation).unwrap();
//!         assert_eq!(json["binding"], "io-windows");
//!     }
//!     other => panic!("{other:?}"),
//! }
//! # Ok::<(), devaddr::Error>(())
//! ```

use serde::Serialize;
use std::fmt;

/// The kind of requirement that stands in the way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Binding {
    /// The PCI domain's bus numbers (256 on x86): every port, bridge and expander bus
    /// takes one.
    BusNumbers,
    /// Bus numbers between NUMA expander buses that keep their `bus_nr`.
    ExpanderBusRanges,
    /// Free slots of the root bus, for the ports and expanders needed.
    RootBusSlots,
    /// The firmware's I/O space: one 4 KiB window per bridge or port holding a device
    /// with an I/O BAR.
    IoWindows,
    /// The 64-bit MMIO the big BARs (`bar64`) and 64-bit hotplug reserves need, beyond
    /// what the guest can address (`policy.phys_bits`) or the machine's fixed window.
    Mmio64,
    /// The hotplug reserve (total or per NUMA node).
    HotplugReserve,
    /// Bus numbers, I/O windows and the hotplug reserve together.
    CombinedBudgets,
    /// The ordering requirement (`order:`).
    Order,
    /// `placement: root`: the root bus has no free slot the device can take.
    RootPlacement,
    /// An `apart:` set: its devices cannot each get an upstream link of their own.
    Apart,
    /// A `together:` set: its devices do not fit below one switch, bridge or expander.
    Together,
    /// Two requirements of the spec contradict each other (e.g. a device both apart from
    /// and together with another); the explanation names both.
    Contradiction,
    /// Some device has no bus that could ever take it (hotplug, NUMA node, bus type or
    /// pinned controllers).
    NoCompatibleBus,
    /// Proven infeasible, but the search could not single out one requirement within its
    /// work limit.
    Undecided,
    /// The search reached its work limit before it found a plan or a proof.
    WorkLimit,
    /// A device that cannot be hot-plugged (QEMU or libvirt refuses it live).
    NotHotpluggable,
    /// A running guest has too few free hotpluggable slots or ports (or storage units)
    /// and cannot get new controllers.
    LiveCapacity,
    /// A device cannot keep its address from the previous plan (strict replan).
    KeptAddress,
    /// The solver itself failed (a bug).
    Solver,
}

/// Why no plan exists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Explanation {
    /// The kind of the binding requirement.
    pub binding: Binding,
    /// The requirement that cannot be met, as a sentence.
    pub requirement: String,
    /// The smallest change that would make the request feasible.
    pub fix: String,
    /// Ids of the devices the requirement concerns (empty when it is about the guest
    /// as a whole).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<String>,
    /// How much of the limited resource the request needs, when it is counted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub needed: Option<u64>,
    /// How much of it there is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub available: Option<u64>,
}

impl Explanation {
    /// An explanation of kind `binding`.
    pub fn new(binding: Binding, requirement: impl Into<String>, fix: impl Into<String>) -> Self {
        Explanation {
            binding,
            requirement: requirement.into(),
            fix: fix.into(),
            devices: Vec::new(),
            needed: None,
            available: None,
        }
    }

    /// The same, naming the devices involved.
    pub fn devices<I, S>(mut self, ids: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.devices = ids.into_iter().map(Into::into).collect();
        self
    }

    /// The same, with the amount needed and the amount available.
    pub fn amounts(mut self, needed: u64, available: u64) -> Self {
        self.needed = Some(needed);
        self.available = Some(available);
        self
    }
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}\n  fix: {}", self.requirement, self.fix)
    }
}
