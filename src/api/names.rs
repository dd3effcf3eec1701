//! The names of the options' values (`yaml`, `hotplug-ready`), as the CLI and the
//! bindings spell them: one table per option type, parsed and listed from it.

use crate::error::{Code, Error};
use crate::spec::Preset;

/// A value of an option with a fixed set of names.
pub trait Named: Sized + Copy + 'static {
    /// What the option is called in messages (`format`).
    const OPTION: &'static str;
    /// Every value with its name.
    const NAMES: &'static [(&'static str, Self)];

    /// The value named `name`, or bad input listing the names there are.
    fn from_name(name: &str) -> Result<Self, Error> {
        Self::NAMES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::NAMES.iter().map(|(n, _)| *n).collect();
                Error::input(
                    Self::OPTION,
                    format!(
                        "unknown {} `{name}`; expected {}",
                        Self::OPTION,
                        names.join(", ")
                    ),
                )
                .with_code(Code::UnknownValue)
            })
    }
}

/// `FromStr` for each named type (`"json".parse::<PlanFormat>()`).
macro_rules! from_str_by_name {
    ($($t:ty),*) => {$(
        impl std::str::FromStr for $t {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self, Error> {
                <$t as Named>::from_name(s)
            }
        }
    )*};
}

use super::{CapacityFormat, CheckFormat, HotplugFormat, InputKind, ModelsFormat, PlanFormat};
from_str_by_name!(
    PlanFormat,
    InputKind,
    HotplugFormat,
    CapacityFormat,
    CheckFormat,
    ModelsFormat
);

impl Named for Preset {
    const OPTION: &'static str = "policy";
    const NAMES: &'static [(&'static str, Self)] = &[
        ("libvirt", Preset::Libvirt),
        ("hotplug-ready", Preset::HotplugReady),
        ("numa", Preset::Numa),
        ("dense", Preset::Dense),
    ];
}

impl Named for PlanFormat {
    const OPTION: &'static str = "format";
    const NAMES: &'static [(&'static str, Self)] = &[
        ("yaml", PlanFormat::Yaml),
        ("json", PlanFormat::Json),
        ("tree", PlanFormat::Tree),
        ("dot", PlanFormat::Dot),
        ("svg", PlanFormat::Svg),
        ("qemu", PlanFormat::Qemu),
        ("libvirt", PlanFormat::Libvirt),
    ];
}

impl Named for InputKind {
    const OPTION: &'static str = "input-format";
    const NAMES: &'static [(&'static str, Self)] =
        &[("spec", InputKind::Spec), ("libvirt", InputKind::Libvirt)];
}

impl Named for HotplugFormat {
    const OPTION: &'static str = "format";
    const NAMES: &'static [(&'static str, Self)] = &[
        ("yaml", HotplugFormat::Yaml),
        ("json", HotplugFormat::Json),
        ("libvirt", HotplugFormat::Libvirt),
        ("qemu", HotplugFormat::Qemu),
    ];
}

impl Named for CapacityFormat {
    const OPTION: &'static str = "format";
    const NAMES: &'static [(&'static str, Self)] = &[
        ("table", CapacityFormat::Table),
        ("text", CapacityFormat::Table),
        ("json", CapacityFormat::Json),
    ];
}

impl Named for CheckFormat {
    const OPTION: &'static str = "format";
    const NAMES: &'static [(&'static str, Self)] =
        &[("text", CheckFormat::Text), ("json", CheckFormat::Json)];
}

impl Named for ModelsFormat {
    const OPTION: &'static str = "format";
    const NAMES: &'static [(&'static str, Self)] = &[
        ("text", ModelsFormat::Text),
        ("yaml", ModelsFormat::Yaml),
        ("json", ModelsFormat::Json),
    ];
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_unknown_names_list_the_known() {
        assert_eq!("hotplug-ready".parse::<PlanFormat>().ok(), None);
        assert_eq!(
            Preset::from_name("hotplug-ready").ok(),
            Some(Preset::HotplugReady)
        );
        let e = "xml".parse::<PlanFormat>().unwrap_err();
        assert_eq!(e.code(), Some(Code::UnknownValue));
        let text = e.to_string();
        assert!(
            text.contains("`xml`") && text.contains("yaml, json, tree"),
            "{text}"
        );
    }
}
