//! formulate: the placement as an integer program over *classes*. Identical devices form
//! one unit class and identical controllers to add form one bus class (model × NUMA zone ×
//! hotplug), so the program's size does not grow with the number of identical devices.
//!
//! Variables: `n_b` (controllers of template class b to add), `x_ub` (units of class u on
//! buses of class b), `agg_b`/`pack_b` (slots of b shared by eight functions), `w_b`
//! (instances of bridge class b that need an I/O window).
//!
//! [`formulate`] builds a [`Model`] one constraint family at a time, each a method named
//! for the family, in this order (the order of the variables and rows is part of the
//! program: the search is deterministic over it). Every variable and row carries its
//! origin as data ([`VarOrigin`](crate::backend::VarOrigin),
//! [`RowOrigin`](crate::backend::RowOrigin)); nothing is formatted unless shown:
//!
//! | family | rows (`RowOrigin::…`) | file |
//! |---|---|---|
//! | classes (bus and unit classes, template depths, useful templates) | — | `classes.rs` |
//! | variables and tightened bounds | `Link` | `variables.rs` |
//! | keep (units that may stay at their previous slot) | `Occupied`, `FunctionZero` | `keep.rs` |
//! | demand | `PlaceTemplate`, `ExtraDemand`, `Demand` | `demand.rs` |
//! | order | `NeverBack`, `RunsPerInstance`, `BeforeBelow`, `BelowFrom`, `PackedSlots`, `PackedEveryEight`, `RunStart` | `order.rs` |
//! | capacity and reserves | `Fill`, `Capacity`, `PackCover`, `Reserve` | `capacity.rs` |
//! | budgets (bus numbers, expander ranges, I/O windows) | `BusNumbers`, `ExpanderRange`, `RootBusRange`, `IoWindows`, `IoCover`, `IoCoverOfRuns`, `IoLink`, `IoWithin` | `budgets.rs` |
//! | objectives (kept by the solve: `ObjectiveKept`) | — | here |

mod budgets;
mod capacity;
mod classes;
mod demand;
mod keep;
mod order;
mod variables;

use super::backend::Ilp;
use crate::catalog::Catalog;
use crate::normalize::{Mode, Problem, Zone};
use crate::vocab::{pci, ConnectKind};
use std::collections::BTreeMap;

/// A class of buses: one existing bus, or a template for controllers to add.
#[derive(Debug, Clone)]
pub(crate) struct BusClass {
    /// Index into `Problem::buses` for an existing bus.
    pub existing: Option<usize>,
    pub model: String,
    pub zone: Zone,
    pub hotplug: bool,
    pub depth: u32,
    /// Slots of one instance.
    pub slots: u32,
    /// Existing bus: wholly free slots, and free functions in slots shared by root ports.
    pub free_whole: u32,
    pub agg_free: u32,
    /// Existing bus: it already has an I/O-BAR device on it.
    pub has_io: bool,
    /// Template: how many may be added.
    pub ub: u32,
    pub cost: u32,
    pub penalty: u32,
    pub bus_numbers: u32,
    pub connect: Option<ConnectKind>,
    pub aggregate: bool,
    pub numa: bool,
}

impl BusClass {
    fn is_root(&self) -> bool {
        self.connect.is_none()
    }
}

/// A class of interchangeable units, or a template (its instances must be placed too).
#[derive(Debug, Clone)]
pub(crate) struct UnitClass {
    /// Units (indexes into `Problem::units`, in placement order) or a template bus class.
    pub units: Vec<usize>,
    pub template: Option<usize>,
    /// None: a root bus model (no bus accepts it).
    pub connect: Option<ConnectKind>,
    pub hotplug: bool,
    pub zone: Zone,
    pub io: bool,
    pub mode: Mode,
    pub existing_only: bool,
    /// Bus indexes allowed by the ordering requirement (exclusive bounds).
    pub bus_range: (Option<u32>, Option<u32>),
    /// The capacity question's class: its demand is a variable to maximise.
    pub extra: bool,
    /// An ordered unit (a class of its own): its position in the ordering requirement.
    pub rank: Option<usize>,
}

/// Which requirements to drop (to explain infeasibility).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Relax {
    pub bus_numbers: bool,
    pub io_windows: bool,
    pub reserve: bool,
    pub templates: bool,
    /// Treat the root bus as having unlimited slots.
    pub root_slots: bool,
    /// Drop the ordering requirement.
    pub order: bool,
}

/// The program plus what its variables mean.
#[derive(Debug, Clone)]
pub(crate) struct Formulation {
    pub buses: Vec<BusClass>,
    pub units: Vec<UnitClass>,
    pub ilp: Ilp,
    /// What to minimise, most important first (see [`super::lexicographic`]).
    pub objectives: Vec<Vec<(usize, f64)>>,
    pub x: BTreeMap<(usize, usize), usize>,
    pub n: BTreeMap<usize, usize>,
    /// `keep` binaries of units that may stay at their previous slot (by unit).
    pub keep: BTreeMap<usize, usize>,
    /// How many extra units fit (capacity questions).
    pub extra: Option<usize>,
    /// Bus numbers used by existing controllers (root included).
    pub existing_bus_numbers: u32,
}

/// Depth of a template class no existing bus can reach.
const INF: u32 = u32::MAX;

/// Functions of a PCI slot, as a coefficient.
const FUNCTIONS_PER_SLOT: f64 = pci::FUNCTIONS_PER_SLOT as f64;

/// The program as it is built: the classes, the variables so far, and what later
/// constraint families need from earlier ones.
struct Model<'a> {
    p: &'a Problem<'a>,
    cat: &'a Catalog,
    relax: Relax,
    buses: Vec<BusClass>,
    units: Vec<UnitClass>,
    ilp: Ilp,
    /// `x_ub`: units of class u on buses of class b, by `(u, b)`.
    x: BTreeMap<(usize, usize), usize>,
    /// `n_b`: controllers of template class b to add, by b.
    n: BTreeMap<usize, usize>,
    /// The capacity question's unit class and its demand variable.
    extra: Option<(usize, usize)>,
    /// The most units of each class that could ever be placed (see `tighten_counts`).
    most: Vec<f64>,
    /// `keep` binaries (by unit) and slot occupancy binaries (by bus class and slot).
    keep: BTreeMap<usize, usize>,
    occ: BTreeMap<(usize, u8), usize>,
    /// The packed-slot variable of each bus class with packed units on it.
    pack_slots: Vec<(usize, usize)>,
    /// Slots used on each bus class, as terms (for the reserves).
    used: Vec<Vec<(usize, f64)>>,
}

pub(crate) fn formulate(p: &Problem, cat: &Catalog, relax: Relax) -> Formulation {
    // A running guest gets no new PCI controllers and consumes its reserve.
    let relax = Relax {
        templates: relax.templates || p.ctx.live,
        reserve: relax.reserve || p.ctx.live,
        ..relax
    };
    let (buses, units) = classes::classes(p, cat, relax);
    let mut m = Model::new(p, cat, relax, buses, units);
    m.variables();
    m.tighten();
    m.keep_variables();
    m.function_zero_rows();
    m.demand_rows();
    if !relax.order {
        m.order_rows();
    }
    m.capacity_rows();
    if !relax.order {
        m.pack_run_rows();
    }
    m.pack_cover_rows();
    if !relax.reserve {
        m.reserve_rows();
    }
    if !relax.bus_numbers {
        m.bus_number_rows();
        m.expander_range_rows();
    }
    if !relax.io_windows {
        m.io_window_rows();
    }
    m.objectives()
}

impl Model<'_> {
    /// Objectives, in order: fewest (weighted) controllers; then the policy's preferences
    /// among equal counts (penalised templates) and shallow placement.
    fn objectives(mut self) -> Formulation {
        let buses = &self.buses;
        let controllers: Vec<(usize, f64)> = self
            .n
            .iter()
            .map(|(&t, &v)| (v, buses[t].cost as f64))
            .collect();
        let mut shape: Vec<(usize, f64)> = self
            .n
            .iter()
            .filter(|(&t, _)| buses[t].penalty > 0)
            .map(|(&t, &v)| (v, buses[t].penalty as f64))
            .collect();
        shape.extend(
            self.x
                .iter()
                .filter(|(&(_, bi), _)| buses[bi].depth > 0)
                .map(|(&(_, bi), &v)| (v, buses[bi].depth as f64)),
        );
        self.ilp.objective = controllers.clone();
        let existing_bus_numbers = self.existing_bus_numbers();
        Formulation {
            buses: self.buses,
            units: self.units,
            ilp: self.ilp,
            objectives: vec![controllers, shape],
            x: self.x,
            n: self.n,
            keep: self.keep,
            extra: self.extra.map(|(_, v)| v),
            existing_bus_numbers,
        }
    }
}
