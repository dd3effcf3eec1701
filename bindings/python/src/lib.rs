//! The native part of the Python package `devaddr` (`devaddr._devaddr`): one function
//! per command, each calling the library's facade ([`devaddr_core::api`]) — the calls
//! the CLI makes — with the GIL released while it plans. The Python layer
//! (`python/devaddr/__init__.py`) turns dicts into text, the output into dicts, and a
//! [`Failure`] into the typed exceptions.

use devaddr_core::api::{self, Named, Source};
use devaddr_core::{Catalog, Error, WorkLimit};
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use std::panic::{catch_unwind, AssertUnwindSafe};

create_exception!(
    _devaddr,
    Failure,
    PyException,
    "A failed call: args are (kind, report as JSON, report as text); the Python layer \
     raises the typed exception instead."
);

/// What every call returns: (output, warnings, moves, files as (id, text) pairs).
type Returned = (String, Vec<String>, Vec<String>, Vec<(String, String)>);

/// The engine options of a call: catalog directory and work limit.
struct Engine {
    catalog: Option<Catalog>,
    work_limit: WorkLimit,
}

impl Engine {
    fn new(models: Option<&str>, work_limit: Option<u64>) -> Result<Self, Error> {
        Ok(Engine {
            catalog: models
                .map(|d| Catalog::from_dir(std::path::Path::new(d)))
                .transpose()?,
            work_limit: work_limit.map_or(WorkLimit::DEFAULT, WorkLimit),
        })
    }

    fn catalog(&self) -> &Catalog {
        self.catalog.as_ref().unwrap_or(Catalog::embedded())
    }

    fn options(&self) -> devaddr_core::Options<'_> {
        devaddr_core::Options::default()
            .with_catalog(self.catalog())
            .with_work_limit(self.work_limit)
    }
}

fn returned(out: api::Output) -> Returned {
    (
        out.text,
        out.warnings,
        out.moves.iter().map(api::move_line).collect(),
        out.files,
    )
}

/// The report of a failed call as the Python exception [`Failure`].
fn failure(report: &devaddr_core::report::Report) -> PyErr {
    let kind = report
        .errors
        .first()
        .map_or("internal".to_string(), |p| kind_name(p.kind));
    Failure::new_err((kind, report.to_json(), report.to_text()))
}

fn kind_name(k: devaddr_core::report::ProblemKind) -> String {
    use devaddr_core::report::ProblemKind;
    match k {
        ProblemKind::Input | ProblemKind::Usage => "input",
        ProblemKind::Infeasible => "infeasible",
        ProblemKind::Check => "check",
        _ => "internal",
    }
    .to_string()
}

/// Run `f` without the GIL, a panic caught as an internal error.
fn detached<T: Send>(
    py: Python<'_>,
    f: impl FnOnce() -> Result<T, devaddr_core::report::Report> + Send,
) -> PyResult<T> {
    py.detach(|| {
        catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|panic| {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".into());
            Err(devaddr_core::report::Report::internal(
                "panic",
                format!("devaddr panicked: {what}"),
            ))
        })
    })
    .map_err(|r| failure(&r))
}

fn named<T: Named>(name: Option<&str>) -> Result<Option<T>, Error> {
    name.map(T::from_name).transpose()
}

/// `devaddr plan`: (text, name, format, policy, input kind, new_domain, previous text,
/// previous name, allow_moves, models dir, work limit).
#[pyfunction]
#[pyo3(signature = (text, name, format=None, policy=None, input=None, new_domain=false,
    previous=None, previous_name=None, allow_moves=false, models=None, work_limit=None))]
#[allow(clippy::too_many_arguments)] // the CLI's options, one argument each
fn plan(
    py: Python<'_>,
    text: String,
    name: String,
    format: Option<String>,
    policy: Option<String>,
    input: Option<String>,
    new_domain: bool,
    previous: Option<String>,
    previous_name: Option<String>,
    allow_moves: bool,
    models: Option<String>,
    work_limit: Option<u64>,
) -> PyResult<Returned> {
    detached(py, move || {
        let run = || -> Result<Returned, Error> {
            let engine = Engine::new(models.as_deref(), work_limit)?;
            let prev_name = previous_name.unwrap_or_else(|| "<previous>".into());
            let req = api::PlanRequest {
                format: named(format.as_deref())?,
                policy: named(policy.as_deref())?,
                input: named(input.as_deref())?,
                new_domain,
                previous: previous.as_deref().map(|t| Source::new(t, &prev_name)),
                allow_moves,
            };
            Ok(returned(api::plan(
                Source::new(&text, &name),
                &req,
                engine.options(),
            )?))
        };
        run().map_err(|e| e.report())
    })
}

/// `devaddr hotplug`: (running, name, add, add name, format, models dir, work limit).
#[pyfunction]
#[pyo3(signature = (running, name, add, add_name, format=None, models=None, work_limit=None))]
#[allow(clippy::too_many_arguments)]
fn hotplug(
    py: Python<'_>,
    running: String,
    name: String,
    add: String,
    add_name: String,
    format: Option<String>,
    models: Option<String>,
    work_limit: Option<u64>,
) -> PyResult<Returned> {
    detached(py, move || {
        let run = || -> Result<Returned, Error> {
            let engine = Engine::new(models.as_deref(), work_limit)?;
            let format = named(format.as_deref())?.unwrap_or(api::HotplugFormat::Yaml);
            Ok(returned(api::hotplug(
                Source::new(&running, &name),
                Source::new(&add, &add_name),
                format,
                engine.options(),
            )?))
        };
        run().map_err(|e| e.report())
    })
}

/// `devaddr capacity`: (text, name, kinds, node, live, format, models dir, work limit).
#[pyfunction]
#[pyo3(signature = (text, name, kinds=Vec::new(), node=None, live=false, format=None,
    models=None, work_limit=None))]
#[allow(clippy::too_many_arguments)]
fn capacity(
    py: Python<'_>,
    text: String,
    name: String,
    kinds: Vec<String>,
    node: Option<u32>,
    live: bool,
    format: Option<String>,
    models: Option<String>,
    work_limit: Option<u64>,
) -> PyResult<Returned> {
    detached(py, move || {
        let run = || -> Result<Returned, Error> {
            let engine = Engine::new(models.as_deref(), work_limit)?;
            let req = api::CapacityRequest {
                kinds,
                node,
                live,
                format: named(format.as_deref())?,
            };
            Ok(returned(api::capacity(
                Source::new(&text, &name),
                &req,
                engine.options(),
            )?))
        };
        run().map_err(|e| e.report())
    })
}

/// `devaddr check`: (text, name, format, models dir, work limit). Findings raise a
/// `check` failure.
#[pyfunction]
#[pyo3(signature = (text, name, format=None, models=None, work_limit=None))]
fn check(
    py: Python<'_>,
    text: String,
    name: String,
    format: Option<String>,
    models: Option<String>,
    work_limit: Option<u64>,
) -> PyResult<Returned> {
    detached(py, move || {
        let engine = Engine::new(models.as_deref(), work_limit).map_err(|e| e.report())?;
        let format = named(format.as_deref())
            .map_err(|e| e.report())?
            .unwrap_or(api::CheckFormat::Text);
        let checked = api::check(Source::new(&text, &name), format, engine.options())
            .map_err(|e| e.report())?;
        match checked.report() {
            Some(report) => Err(report),
            None => Ok(returned(checked.output)),
        }
    })
}

/// `devaddr models`: (name, format, models dir).
#[pyfunction]
#[pyo3(signature = (name=None, format=None, models=None))]
fn models(
    py: Python<'_>,
    name: Option<String>,
    format: Option<String>,
    models: Option<String>,
) -> PyResult<String> {
    detached(py, move || {
        let run = || -> Result<String, Error> {
            let engine = Engine::new(models.as_deref(), None)?;
            let format = named(format.as_deref())?.unwrap_or(api::ModelsFormat::Text);
            api::models(engine.catalog(), name.as_deref(), format)
        };
        run().map_err(|e| e.report())
    })
}

/// devaddr's version.
#[pyfunction]
fn version() -> &'static str {
    api::version()
}

#[pymodule]
fn _devaddr(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("Failure", m.py().get_type::<Failure>())?;
    m.add_function(wrap_pyfunction!(plan, m)?)?;
    m.add_function(wrap_pyfunction!(hotplug, m)?)?;
    m.add_function(wrap_pyfunction!(capacity, m)?)?;
    m.add_function(wrap_pyfunction!(check, m)?)?;
    m.add_function(wrap_pyfunction!(models, m)?)?;
    m.add_function(wrap_pyfunction!(version, m)?)?;
    Ok(())
}
