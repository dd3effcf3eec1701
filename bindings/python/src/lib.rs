//! The native part of the Python package `devaddr` (`devaddr._devaddr`): one function
//! per command, each calling the library's facade ([`devaddr_core::api`]) — the calls
//! the CLI makes — with the GIL released while it plans. The Python layer
//! (`python/devaddr/__init__.py`) turns dicts into text, the output into dicts, and a
//! [`Failure`] into the typed exceptions.

use devaddr_core::api::{self, Engine, Named, Source};
use devaddr_core::report::Report;
use devaddr_core::Error;
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

create_exception!(
    _devaddr,
    Failure,
    PyException,
    "A failed call: args are (kind, report as JSON, report as text); the Python layer \
     raises the typed exception instead."
);

/// What every call returns: (output, warnings, moves, files as (id, text) pairs).
type Returned = (String, Vec<String>, Vec<String>, Vec<(String, String)>);

fn returned(out: api::Output) -> Returned {
    (
        out.text,
        out.warnings,
        out.moves.iter().map(api::move_line).collect(),
        out.files,
    )
}

/// The report of a failed call as the Python exception [`Failure`].
fn failure(report: &Report) -> PyErr {
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
fn detached<T: Send>(py: Python<'_>, f: impl FnOnce() -> Result<T, Report> + Send) -> PyResult<T> {
    py.detach(|| {
        catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|p| Err(Report::from_panic(p.as_ref())))
    })
    .map_err(|r| failure(&r))
}

/// Run `f` on the engine of `models` and `work_limit` without the GIL (see
/// [`detached`]).
fn with_engine<T: Send>(
    py: Python<'_>,
    models: Option<String>,
    work_limit: Option<u64>,
    f: impl FnOnce(&Engine) -> Result<T, Error> + Send,
) -> PyResult<T> {
    detached(py, move || {
        let engine = Engine::new(models.as_deref().map(Path::new), work_limit);
        engine.and_then(|e| f(&e)).map_err(|e| e.report())
    })
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
    with_engine(py, models, work_limit, move |engine| {
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
    with_engine(py, models, work_limit, move |engine| {
        let format = named(format.as_deref())?.unwrap_or(api::HotplugFormat::Yaml);
        Ok(returned(api::hotplug(
            Source::new(&running, &name),
            Source::new(&add, &add_name),
            format,
            engine.options(),
        )?))
    })
}

/// `devaddr capacity`: (text, name, kinds, node, bar64, live, format, models dir, work
/// limit).
#[pyfunction]
#[pyo3(signature = (text, name, kinds=Vec::new(), node=None, bar64=None, live=false,
    format=None, models=None, work_limit=None))]
#[allow(clippy::too_many_arguments)]
fn capacity(
    py: Python<'_>,
    text: String,
    name: String,
    kinds: Vec<String>,
    node: Option<u32>,
    bar64: Option<String>,
    live: bool,
    format: Option<String>,
    models: Option<String>,
    work_limit: Option<u64>,
) -> PyResult<Returned> {
    with_engine(py, models, work_limit, move |engine| {
        let req = api::CapacityRequest {
            kinds,
            node,
            bar64: bar64
                .as_deref()
                .map(api::CapacityRequest::parse_bar64)
                .transpose()?,
            live,
            format: named(format.as_deref())?,
        };
        Ok(returned(api::capacity(
            Source::new(&text, &name),
            &req,
            engine.options(),
        )?))
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
        let engine =
            Engine::new(models.as_deref().map(Path::new), work_limit).map_err(|e| e.report())?;
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
    with_engine(py, models, None, move |engine| {
        let format = named(format.as_deref())?.unwrap_or(api::ModelsFormat::Text);
        api::models(engine.catalog(), name.as_deref(), format)
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
