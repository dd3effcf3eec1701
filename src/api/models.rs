//! `devaddr models`: the hardware catalog, or one entry of it.

use crate::error::Result;
use crate::formats::models as catalog_view;
use crate::Catalog;

/// Output formats of `models`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ModelsFormat {
    /// A description for people.
    Text,
    /// The catalog data as YAML.
    Yaml,
    /// The catalog data as JSON.
    Json,
}

/// The catalog (`name` None) or the machine, controller model or device kind `name`, as
/// `devaddr models` prints it.
pub fn models(cat: &Catalog, name: Option<&str>, format: ModelsFormat) -> Result<String> {
    Ok(match format {
        ModelsFormat::Text => catalog_view::render(cat, name)?,
        ModelsFormat::Yaml => {
            serde_yaml::to_string(&catalog_view::data(cat, name)?).unwrap_or_default()
        }
        ModelsFormat::Json => super::pretty_json(&catalog_view::data(cat, name)?),
    })
}
