//! The engine settings every caller turns into [`Options`]: a catalog directory (the
//! CLI's `--models`) and a work limit (`--work-limit`), owned.

use crate::error::Result;
use crate::{Catalog, Options, WorkLimit};
use std::path::Path;

/// The catalog and search budget of the calls of one command or binding call.
#[derive(Debug)]
pub struct Engine {
    /// The catalog read from a directory (None: the built-in one).
    catalog: Option<Catalog>,
    /// The search budget of each integer program.
    work_limit: WorkLimit,
}

impl Engine {
    /// The catalog in `models` (laid out like `models/`; None: built in) and the
    /// `work_limit` (None: [`WorkLimit::DEFAULT`]). Errors: the catalog cannot be read.
    pub fn new(models: Option<&Path>, work_limit: Option<u64>) -> Result<Self> {
        Ok(Engine {
            catalog: models.map(Catalog::from_dir).transpose()?,
            work_limit: work_limit.map_or(WorkLimit::DEFAULT, WorkLimit),
        })
    }

    /// The catalog.
    pub fn catalog(&self) -> &Catalog {
        self.catalog.as_ref().unwrap_or(Catalog::embedded())
    }

    /// The library options: this catalog and work limit, the default solver.
    pub fn options(&self) -> Options<'_> {
        Options::default()
            .with_catalog(self.catalog())
            .with_work_limit(self.work_limit)
    }
}
