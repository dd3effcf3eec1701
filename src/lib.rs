//! # devaddr — device address planning for QEMU/KVM guests
//!
//! devaddr takes a minimal description of a guest (machine type, placement tunables, the
//! devices wanted with optional pinned addresses) and returns the complete addressed
//! topology: every device with its PCI/PCIe, USB or drive address and every controller
//! that must be added (root ports, bridges, expander buses per NUMA node, USB/SATA/SCSI
//! controllers). The placement is solved as an integer linear program over *classes* of
//! interchangeable devices and buses (good_lp + microlp), decoded deterministically, and
//! checked by an independent verifier before it is returned.
//!
//! ## Pipeline and modules
//!
//! Every planning call ([`plan`], [`replan`], [`hotplug`], [`capacity`]) runs the same
//! stages. Modules in `code` without a link are private to the crate.
//!
//! | Stage | What happens | Where |
//! |-------|--------------|-------|
//! | parse | YAML/JSON spec or plan → [`Spec`] / [`Plan`], errors with file, path and line; libvirt domain XML in | [`spec`], [`input`], [`topology`], [`libvirt`] |
//! | (data) | machine models, controller models and device kinds from `models/`; the hardware vocabulary and limits | [`catalog`], [`vocab`], [`limits`] |
//! | normalize | defaults from the machine and the policy preset, implied controllers (AHCI for a SATA disk, a USB controller for a USB device…), pins, requirement classes | `normalize` |
//! | formulate | the integer program over counts per class (demand, capacity, reserves, budgets, order, keep) | `solve::formulate` |
//! | solve | the program handed to a [`Backend`] (default [`MicroLp`]) within a deterministic [`WorkLimit`] | [`backend`], `solve` |
//! | decode | counts → concrete controllers, indexes, buses, slots, functions, USB ports and drive units | `solve::decode`, `assemble`, `order` |
//! | verify | an independent checker that knows nothing of the program; every returned plan has passed it | [`verify`], [`check`] |
//! | emit | YAML/JSON plan, tree view, pictures (Graphviz, SVG), QEMU arguments, libvirt XML | [`topology`] ([`Plan::to_yaml`]), [`formats`], [`libvirt`] |
//! | (schemas) | JSON Schemas of a spec, a plan and the capacity rows, from the types | [`schema`] |
//!
//! Each CLI command is one call of [`api`] (text in → text out, with the warnings and
//! the error report): the C and Python bindings call the same functions, so all three
//! give the same bytes.
//!
//! Replanning, live hotplug and what-if capacity ([`replan`], [`hotplug`], [`capacity`])
//! run the same stages with the previous topology frozen. Errors are [`Error`] values: bad
//! input (CLI exit 2), an infeasible request or a failed check (exit 1).
//!
//! ## Example
//!
//! ```
//! // parse
//! let spec = devaddr::Spec::parse(
//!     r#"
//! machine: q35
//! devices:
//!   - {id: net0, kind: virtio-net, hotplug: true}
//!   - {id: disk0, kind: virtio-blk}
//!   - {id: tablet, kind: usb-tablet}
//! "#,
//!     "example.yaml",
//! )?;
//! // normalize → formulate → solve → decode → verify
//! let plan = devaddr::plan(&spec)?;
//! let net0 = plan.devices.iter().find(|d| d.id == "net0").unwrap();
//! assert!(matches!(net0.address, Some(devaddr::Address::Pci(_))));
//! // A plan is a valid spec: planning it again changes nothing.
//! assert_eq!(devaddr::plan(&plan.to_spec())?, plan);
//! // The verifier alone, as `devaddr check` runs it: no findings.
//! assert!(devaddr::check(&plan.to_spec())?.is_empty());
//! // emit
//! let tree = devaddr::formats::render(&plan, devaddr::formats::Format::Tree, devaddr::Catalog::embedded());
//! assert!(tree.contains("net0"));
//! assert!(plan.to_yaml().contains("id: net0"));
//! # Ok::<(), devaddr::Error>(())
//! ```

#![deny(missing_docs)]
#![deny(rustdoc::broken_intra_doc_links)]

pub mod api;
mod assemble;
pub mod catalog;
mod digits;
mod error;
pub mod explanation;
pub mod formats;
pub mod input;
pub mod libvirt;
mod lifecycle;
mod light_hash;
pub mod limits;
mod normalize;
mod order;
pub mod report;
pub mod schema;
mod solve;
pub mod spec;
pub mod stages;
pub mod topology;
pub mod verify;
pub mod vocab;
mod xml;
mod yaml;

pub use backend::{Backend, MicroLp, WorkLimit};
pub use catalog::Catalog;
pub use error::{Code, Error, Location, Result};
pub use explanation::{Binding, Explanation};
pub use lifecycle::{
    capacity, capacity_with, hotplug, hotplug_additions_with, hotplug_with, replan, replan_with,
    CapacityQuery, CapacityRow, Hotplugged, Move, Replanned,
};
// Crate-internal paths src/libvirt/ilp.rs still uses (public as `backend::{Ilp, Outcome}`).
pub use spec::{DeviceEntry, Placement, Spec};
pub use topology::{Address, ControllerEntry, DriveAddress, PciAddress, Plan, UsbAddress};
pub use verify::{Finding, Rule, Subject};

pub mod backend {
    //! The solver backend contract: the integer program devaddr builds ([`Ilp`], with
    //! its [`Var`]s and [`Row`]s, each with its origin as data: [`VarOrigin`],
    //! [`RowOrigin`] and its constraint [`Family`]), the trait a MIP solver implements
    //! to solve it ([`Backend`]), what a solve returns ([`Outcome`], [`Status`]), the
    //! default implementation ([`MicroLp`]) and the deterministic search budget
    //! ([`WorkLimit`]). Pass another backend with
    //! [`Options::with_backend`](crate::Options::with_backend).
    pub use crate::solve::backend::{Backend, Ilp, MicroLp, Outcome, Row, Status, Var, WorkLimit};
    pub use crate::solve::origin::{Family, PackSet, RowOrigin, RunKind, VarOrigin};
}

/// Options of a planning run. Start from [`Options::default`] and change what differs:
///
/// ```
/// let opts = devaddr::Options::default().with_work_limit(devaddr::WorkLimit(100_000));
/// let spec = devaddr::Spec::parse("machine: q35\ndevices: [{id: n, kind: virtio-net}]\n", "s.yaml")?;
/// let plan = devaddr::plan_with(&spec, opts)?;
/// # Ok::<(), devaddr::Error>(())
/// ```
#[derive(Clone, Copy)]
#[non_exhaustive]
pub struct Options<'a> {
    /// The hardware catalog (default: the one built in).
    pub catalog: &'a Catalog,
    /// The MIP solver (default: microlp).
    pub backend: &'a dyn Backend,
    /// The search budget of each integer program (deterministic; default
    /// [`WorkLimit::DEFAULT`]). A search that reaches it returns its best verified plan
    /// with `solver: {status: feasible, gap}` in the plan header.
    pub work_limit: WorkLimit,
}

impl<'a> Options<'a> {
    /// The same options with another hardware catalog (e.g. [`Catalog::from_dir`]).
    pub fn with_catalog(mut self, catalog: &'a Catalog) -> Self {
        self.catalog = catalog;
        self
    }
    /// The same options with another MIP solver.
    pub fn with_backend(mut self, backend: &'a dyn Backend) -> Self {
        self.backend = backend;
        self
    }
    /// The same options with another search budget per integer program.
    pub fn with_work_limit(mut self, work_limit: WorkLimit) -> Self {
        self.work_limit = work_limit;
        self
    }
    pub(crate) fn solver(&self) -> solve::Solver<'a> {
        solve::Solver {
            backend: self.backend,
            limit: self.work_limit,
        }
    }
}

impl Default for Options<'_> {
    fn default() -> Self {
        Options {
            catalog: Catalog::embedded(),
            backend: &MicroLp,
            work_limit: WorkLimit::DEFAULT,
        }
    }
}

/// Plan a spec with the built-in catalog and the default solver.
///
/// The returned plan has passed [`verify::verify_against`]. Errors: [`Error::Input`] for a spec
/// that is malformed or names what does not exist; [`Error::Infeasible`] (with the
/// binding requirement and a fix) when no topology satisfies it.
pub fn plan(spec: &Spec) -> Result<Plan> {
    plan_with(spec, Options::default())
}

/// Plan a spec with explicit options.
pub fn plan_with(spec: &Spec, opts: Options<'_>) -> Result<Plan> {
    plan_in(spec, opts, normalize::Context::default())
}

/// The pipeline for one kind of run: normalize → formulate/solve → decode → order → verify.
pub(crate) fn plan_in(spec: &Spec, opts: Options<'_>, ctx: normalize::Context) -> Result<Plan> {
    let plan = plan_unverified(spec, opts, ctx)?;
    let (mut plan, findings) = verify::verify_owned(plan, spec, opts.catalog);
    if !findings.is_empty() {
        return Err(Error::Check { findings });
    }
    // Planning a plan again reproduces it: it keeps the search status it was found with.
    if let Some(before) = &spec.devaddr {
        if before.solver.is_some()
            && plan.controllers == spec.controllers
            && plan.devices == spec.devices
        {
            plan.devaddr.solver = before.solver;
        }
    }
    Ok(plan)
}

/// Parse → normalize → solve → decode, without the verifier: for callers that change the
/// plan further (hotplug records the reserve left) and verify what they return.
pub(crate) fn plan_unverified(
    spec: &Spec,
    opts: Options<'_>,
    ctx: normalize::Context,
) -> Result<Plan> {
    let problem = normalize::normalize_in(spec, opts.catalog, ctx)?;
    let placement = solve::solve_with(&problem, opts.catalog, opts.solver())?;
    assemble_checked(&problem, &placement, opts.catalog)
}

/// Assemble the plan of a placement and check the device order it promises.
fn assemble_checked(
    problem: &normalize::Problem<'_>,
    placement: &solve::decode::Placement,
    cat: &Catalog,
) -> Result<Plan> {
    let plan = assemble::assemble(problem, cat, placement)?;
    order::holds(&plan, problem)?;
    Ok(plan)
}

/// Check a plan (or any fully addressed spec) without planning: every rule the planner
/// guarantees. Returns one [`Finding`] per rule broken (empty = valid): its [`Rule`] and
/// [`Subject`] to match on, its `Display` the sentence `devaddr check` prints.
pub fn check(plan: &Spec) -> Result<Vec<Finding>> {
    check_with(plan, Catalog::embedded())
}

/// [`check`] with an explicit catalog.
pub fn check_with(spec: &Spec, cat: &Catalog) -> Result<Vec<Finding>> {
    verify::verify_spec(spec, cat)
}
