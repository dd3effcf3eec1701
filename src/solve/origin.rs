//! Where each variable and row of the integer program comes from, as data: what a
//! variable counts ([`VarOrigin`]) and which requirement a row states ([`RowOrigin`], with
//! its constraint [`Family`]), with the classes they concern. The planner's formulation
//! builds them as plain values; they become text only through their `Display` (the
//! names a debug dump shows).
//!
//! Indexes are positions in the formulation's class lists: a *unit class* is a set of
//! interchangeable devices (or a template of controllers to place), a *bus class* one
//! existing bus or a template of controllers to add. The keep family's `unit` is a
//! placement unit of the problem (a device, a group of functions or a controller).

use std::borrow::Cow;
use std::fmt;

/// What a variable of the program counts.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum VarOrigin {
    /// How many more units of the capacity question's class fit (`extra`).
    Extra,
    /// Controllers of template bus class `bus` to add (`n[b]`).
    Controllers {
        /// The template bus class.
        bus: usize,
    },
    /// Units of unit class `unit` on buses of class `bus` (`x[u,b]`).
    Placed {
        /// The unit class.
        unit: usize,
        /// The bus class.
        bus: usize,
    },
    /// Slots of bus class `bus` whose eight functions are shared: by aggregated root
    /// ports, or by packed devices when `packed` (`Aggregate[b]`, `Pack[b]`).
    SharedSlots {
        /// The bus class.
        bus: usize,
        /// Packed devices (`multifunction: pack`) rather than aggregated root ports.
        packed: bool,
    },
    /// Instances of bus class `bus` that need an I/O window (`w[b]`).
    IoWindows {
        /// The bus class.
        bus: usize,
    },
    /// Placement unit `unit` stays at its previous slot (`keep[u]`).
    Keep {
        /// The placement unit.
        unit: usize,
    },
    /// Slot `slot` of existing bus class `bus` is held by a unit that stays (`occ[b:s]`).
    Occupied {
        /// The bus class (an existing bus).
        bus: usize,
        /// The slot.
        slot: u8,
    },
    /// A run of the ordering requirement starts at ordered unit class `unit` on bus
    /// class `bus` (`run[u,b]`, `pack run[u,b]`, `io run[u,b]`).
    RunStart {
        /// Which runs are counted.
        run: RunKind,
        /// The ordered unit class.
        unit: usize,
        /// The bus class.
        bus: usize,
    },
    /// From ordered unit class `unit` on, the sequence has reached a bus below an
    /// instance of bus class `bus` (`below[u,b]`).
    Below {
        /// The ordered unit class.
        unit: usize,
        /// The template bus class.
        bus: usize,
    },
    /// A name given by a program built outside the planner (e.g. the libvirt policy's
    /// growth program, or a caller's own).
    Named(Cow<'static, str>),
}

/// Which runs of the ordering requirement a run-start variable or row counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RunKind {
    /// Runs of ordered units on the instances of a bus class.
    Units,
    /// Runs of packed ordered units (they fill packed slots of their own).
    Packed,
    /// Runs of ordered units with I/O BARs (they fill I/O windows of their own).
    Io,
    /// Packed slots a run of packed ordered units opens: at its start, and after every
    /// eight functions.
    PackedSlot,
}

impl RunKind {
    fn name(self) -> &'static str {
        match self {
            RunKind::Units => "run",
            RunKind::Packed => "pack run",
            RunKind::Io => "io run",
            RunKind::PackedSlot => "pack slot",
        }
    }
}

/// The bus classes a pack cover row counts packed slots on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PackSet {
    /// The bus classes the unit class of this index may use.
    Class(usize),
    /// Every bus class of a NUMA node (`None`: outside any node).
    Zone(Option<u32>),
}

/// The constraint families of the program (see [`RowOrigin::family`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Family {
    /// Tightened bounds: a unit class on an added bus class only if an instance exists.
    Link,
    /// Units that may stay at their previous slot.
    Keep,
    /// Every unit and every added controller placed; the capacity question's count.
    Demand,
    /// The ordering requirement.
    Order,
    /// Slots of each bus class, shared slots and packed slots.
    Capacity,
    /// Hotplug reserves.
    Reserve,
    /// Bus numbers, expander ranges and I/O windows.
    Budget,
    /// An earlier objective kept at its optimum.
    Objective,
    /// A row of a program built outside the planner.
    Other,
}

/// The requirement a row of the program states, and what it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RowOrigin {
    /// Unit class `unit` uses added bus class `bus` only with an instance of it
    /// (`link u to b`).
    Link {
        /// The unit class.
        unit: usize,
        /// The template bus class.
        bus: usize,
    },
    /// Placement unit `unit`, staying, holds its slot (`occupied by u`).
    Occupied {
        /// The placement unit.
        unit: usize,
    },
    /// Placement unit `unit` stays only if function 0 of its slot does
    /// (`function 0 under u`).
    FunctionZero {
        /// The placement unit.
        unit: usize,
    },
    /// Every instance of template bus class `bus` is placed (`place template b`).
    PlaceTemplate {
        /// The template bus class.
        bus: usize,
    },
    /// The capacity question's unit class `unit` counts its extra units (`extra u`).
    ExtraDemand {
        /// The unit class.
        unit: usize,
    },
    /// Every unit of unit class `unit` is placed or stays (`demand u`).
    Demand {
        /// The unit class.
        unit: usize,
    },
    /// Ordered unit class `next` sits on a bus no earlier than `unit`'s
    /// (`order: unit class u before v`).
    NeverBack {
        /// The earlier ordered unit class.
        unit: usize,
        /// The next one in the order.
        next: usize,
    },
    /// Added bus class `bus` has an instance for each run of the order on it
    /// (`order: one run per instance of b`).
    RunsPerInstance {
        /// The template bus class.
        bus: usize,
    },
    /// Ordered unit class `unit` is not on bus class `bus` once an earlier one sits
    /// below it (`order: u on b before what is below it`).
    BeforeBelow {
        /// The ordered unit class.
        unit: usize,
        /// The template bus class.
        bus: usize,
    },
    /// The `below` marker of bus class `bus` is set from ordered unit class `unit` on
    /// (`order: below b from u on`).
    BelowFrom {
        /// The ordered unit class.
        unit: usize,
        /// The template bus class.
        bus: usize,
    },
    /// Packed slots of bus class `bus` hold the runs of packed ordered units
    /// (`order: packed slots of b`).
    PackedSlots {
        /// The bus class.
        bus: usize,
    },
    /// Nine packed ordered units in a row on bus class `bus`, up to unit class `unit`,
    /// fill more than one slot: one of the last eight opens a slot
    /// (`order: a pack slot within eight up to u on b`).
    PackedEveryEight {
        /// The last ordered unit class of the nine.
        unit: usize,
        /// The bus class.
        bus: usize,
    },
    /// A run of the order starts at ordered unit class `unit` on bus class `bus` unless
    /// the one before it is there too (`order: run of u on b`).
    RunStart {
        /// Which runs are counted.
        run: RunKind,
        /// The ordered unit class.
        unit: usize,
        /// The bus class.
        bus: usize,
    },
    /// The functions of bus class `bus`'s shared slots (aggregated root ports, or packed
    /// devices when `packed`) fill them (`Aggregate fill b`, `Pack fill b`).
    Fill {
        /// The bus class.
        bus: usize,
        /// Packed devices rather than aggregated root ports.
        packed: bool,
    },
    /// The slots used on bus class `bus` fit its free slots or its instances'
    /// (`capacity b`).
    Capacity {
        /// The bus class.
        bus: usize,
    },
    /// Packed units confined to a set of bus classes fill whole slots there
    /// (`pack cover …`).
    PackCover {
        /// The set of bus classes.
        set: PackSet,
    },
    /// Free hotpluggable slots of the hotplug reserve, of NUMA node `node` or of the
    /// whole guest (`reserve …`).
    Reserve {
        /// The NUMA node (`None`: the whole guest).
        node: Option<u32>,
    },
    /// Existing and added controllers within the machine's bus numbers (`bus numbers`).
    BusNumbers,
    /// Controllers added on NUMA node `node` within the bus numbers its expander's
    /// bus_nr leaves (`expander range node k`).
    ExpanderRange {
        /// The NUMA node.
        node: u32,
    },
    /// The root hierarchy within the bus numbers below the lowest fixed expander
    /// (`root bus range`).
    RootBusRange,
    /// Bridges and ports with I/O windows within the firmware's (`io windows`).
    IoWindows,
    /// The I/O units on bus class `bus` have instances with a window (`io cover b`).
    IoCover {
        /// The bus class.
        bus: usize,
    },
    /// Ordered I/O units on bus class `bus` bring windows of their own
    /// (`io cover of ordered runs b`).
    IoCoverOfRuns {
        /// The bus class.
        bus: usize,
    },
    /// I/O unit class `unit` on bus class `bus` only with a window there
    /// (`io link u to b`).
    IoLink {
        /// The unit class.
        unit: usize,
        /// The bus class.
        bus: usize,
    },
    /// No more instances of bus class `bus` with a window than instances
    /// (`io within b`).
    IoWithin {
        /// The template bus class.
        bus: usize,
    },
    /// Objective `phase` stays within the optimum it reached (`objective p kept`).
    ObjectiveKept {
        /// The phase (0: the most important objective).
        phase: usize,
    },
    /// A name given by a program built outside the planner.
    Named(Cow<'static, str>),
}

impl RowOrigin {
    /// The constraint family of the row.
    pub fn family(&self) -> Family {
        use RowOrigin::*;
        match self {
            Link { .. } => Family::Link,
            Occupied { .. } | FunctionZero { .. } => Family::Keep,
            PlaceTemplate { .. } | ExtraDemand { .. } | Demand { .. } => Family::Demand,
            NeverBack { .. }
            | RunsPerInstance { .. }
            | BeforeBelow { .. }
            | BelowFrom { .. }
            | PackedSlots { .. }
            | PackedEveryEight { .. }
            | RunStart { .. } => Family::Order,
            Fill { .. } | Capacity { .. } | PackCover { .. } => Family::Capacity,
            Reserve { .. } => Family::Reserve,
            BusNumbers
            | ExpanderRange { .. }
            | RootBusRange
            | IoWindows
            | IoCover { .. }
            | IoCoverOfRuns { .. }
            | IoLink { .. }
            | IoWithin { .. } => Family::Budget,
            ObjectiveKept { .. } => Family::Objective,
            Named(_) => Family::Other,
        }
    }
}

fn shared(packed: bool) -> &'static str {
    if packed {
        "Pack"
    } else {
        "Aggregate"
    }
}

impl fmt::Display for VarOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use VarOrigin::*;
        match self {
            Extra => f.write_str("extra"),
            Controllers { bus } => write!(f, "n[{bus}]"),
            Placed { unit, bus } => write!(f, "x[{unit},{bus}]"),
            SharedSlots { bus, packed } => write!(f, "{}[{bus}]", shared(*packed)),
            IoWindows { bus } => write!(f, "w[{bus}]"),
            Keep { unit } => write!(f, "keep[{unit}]"),
            Occupied { bus, slot } => write!(f, "occ[{bus}:{slot}]"),
            RunStart { run, unit, bus } => write!(f, "{}[{unit},{bus}]", run.name()),
            Below { unit, bus } => write!(f, "below[{unit},{bus}]"),
            Named(name) => f.write_str(name),
        }
    }
}

impl fmt::Display for RowOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use RowOrigin::*;
        match self {
            Link { unit, bus } => write!(f, "link {unit} to {bus}"),
            Occupied { unit } => write!(f, "occupied by {unit}"),
            FunctionZero { unit } => write!(f, "function 0 under {unit}"),
            PlaceTemplate { bus } => write!(f, "place template {bus}"),
            ExtraDemand { unit } => write!(f, "extra {unit}"),
            Demand { unit } => write!(f, "demand {unit}"),
            NeverBack { unit, next } => write!(f, "order: unit class {unit} before {next}"),
            RunsPerInstance { bus } => write!(f, "order: one run per instance of {bus}"),
            BeforeBelow { unit, bus } => {
                write!(f, "order: {unit} on {bus} before what is below it")
            }
            BelowFrom { unit, bus } => write!(f, "order: below {bus} from {unit} on"),
            PackedSlots { bus } => write!(f, "order: packed slots of {bus}"),
            PackedEveryEight { unit, bus } => {
                write!(f, "order: a pack slot within eight up to {unit} on {bus}")
            }
            RunStart { run, unit, bus } => {
                write!(f, "order: {} of {unit} on {bus}", run.name())
            }
            Fill { bus, packed } => write!(f, "{} fill {bus}", shared(*packed)),
            Capacity { bus } => write!(f, "capacity {bus}"),
            PackCover {
                set: PackSet::Class(unit),
            } => write!(f, "pack cover of unit class {unit}"),
            PackCover {
                set: PackSet::Zone(Some(node)),
            } => write!(f, "pack cover of node {node}"),
            PackCover {
                set: PackSet::Zone(None),
            } => f.write_str("pack cover outside the nodes"),
            Reserve { node: Some(node) } => write!(f, "reserve node {node}"),
            Reserve { node: None } => f.write_str("reserve"),
            BusNumbers => f.write_str("bus numbers"),
            ExpanderRange { node } => write!(f, "expander range node {node}"),
            RootBusRange => f.write_str("root bus range"),
            IoWindows => f.write_str("io windows"),
            IoCover { bus } => write!(f, "io cover {bus}"),
            IoCoverOfRuns { bus } => write!(f, "io cover of ordered runs {bus}"),
            IoLink { unit, bus } => write!(f, "io link {unit} to {bus}"),
            IoWithin { bus } => write!(f, "io within {bus}"),
            ObjectiveKept { phase } => write!(f, "objective {phase} kept"),
            Named(name) => f.write_str(name),
        }
    }
}

impl From<&'static str> for VarOrigin {
    fn from(name: &'static str) -> Self {
        VarOrigin::Named(Cow::Borrowed(name))
    }
}

impl From<String> for VarOrigin {
    fn from(name: String) -> Self {
        VarOrigin::Named(Cow::Owned(name))
    }
}

impl From<&'static str> for RowOrigin {
    fn from(name: &'static str) -> Self {
        RowOrigin::Named(Cow::Borrowed(name))
    }
}

impl From<String> for RowOrigin {
    fn from(name: String) -> Self {
        RowOrigin::Named(Cow::Owned(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_render_as_their_requirement_and_know_their_family() {
        let r = RowOrigin::RunStart {
            run: RunKind::Packed,
            unit: 3,
            bus: 7,
        };
        assert_eq!(r.to_string(), "order: pack run of 3 on 7");
        assert_eq!(r.family(), Family::Order);
        assert_eq!(
            RowOrigin::Reserve { node: Some(2) }.family(),
            Family::Reserve
        );
        assert_eq!(RowOrigin::from("spare if grown").family(), Family::Other);
        let v = VarOrigin::SharedSlots {
            bus: 4,
            packed: true,
        };
        assert_eq!(v.to_string(), "Pack[4]");
    }
}
