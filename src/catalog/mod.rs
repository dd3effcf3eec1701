//! The hardware catalog: machine types, controller models and device kinds, loaded from the
//! YAML files under `models/` (embedded at build time) or from a user directory.

mod types;

pub use types::*;
mod firmware;
pub(crate) use firmware::{firmware_words, legacy_plan, spec_firmware, spec_limits};
// The crate-internal old name of `MachineModel`, kept only so that src/normalize/ (being
// restructured on another branch) compiles unchanged; remove once it says MachineModel.

use crate::error::{Error, Result};
use std::collections::BTreeMap;
use std::path::Path;

/// The embedded catalog: `models/` as JSON, written by build.rs from the YAML files (the
/// source of truth) so that start-up parses it with serde_json instead of serde_yaml.
macro_rules! embedded_json {
    ($file:literal) => {
        include_str!(concat!(env!("OUT_DIR"), "/models/", $file, ".json"))
    };
}
const EMBEDDED_MACHINES: &[(&str, &str)] = &[
    ("q35.yaml", embedded_json!("machines/q35")),
    ("pc-i440fx.yaml", embedded_json!("machines/pc-i440fx")),
    ("virt.yaml", embedded_json!("machines/virt")),
];
const EMBEDDED_CONTROLLERS: &str = embedded_json!("controllers");
const EMBEDDED_DEVICES: &str = embedded_json!("devices");

/// How the texts given to [`Catalog::from_texts`] are written.
#[derive(Clone, Copy)]
enum Syntax {
    /// A user's catalog directory, or the YAML files themselves.
    Yaml,
    /// The embedded catalog (build.rs's JSON form of the YAML).
    Json,
}

impl Syntax {
    fn parse<T: serde::de::DeserializeOwned>(self, name: &str, text: &str) -> Result<T> {
        match self {
            Syntax::Yaml => crate::yaml::from_str(text).map_err(|e| e.in_file(name)),
            Syntax::Json => serde_json::from_str(text)
                .map_err(|e| Error::input(name.to_string(), format!("embedded catalog: {e}"))),
        }
    }
}

/// The whole catalog, validated at load: every model a machine or kind names exists.
/// Build it with [`Catalog::embedded`] or [`Catalog::from_dir`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Catalog {
    /// Machine types (`models/machines/*.yaml`), in file-name order.
    pub machines: Vec<MachineModel>,
    /// PCI controller models (`pci:` of `controllers.yaml`), by model name.
    pub pci: BTreeMap<String, PciModel>,
    /// USB and drive controller models (`storage:` of `controllers.yaml`), by model name.
    pub storage: BTreeMap<String, StorageModel>,
    /// Device kinds (`devices.yaml`), in file order.
    pub kinds: Vec<Kind>,
}

impl Catalog {
    /// The catalog built into the binary.
    pub fn embedded() -> &'static Catalog {
        use std::sync::OnceLock;
        static CATALOG: OnceLock<Catalog> = OnceLock::new();
        CATALOG.get_or_init(|| {
            Catalog::from_texts(
                Syntax::Json,
                EMBEDDED_MACHINES
                    .iter()
                    .map(|(n, t)| (n.to_string(), t.to_string())),
                ("controllers.yaml", EMBEDDED_CONTROLLERS),
                ("devices.yaml", EMBEDDED_DEVICES),
            )
            .unwrap_or_else(|e| panic!("embedded catalog is invalid: {e}"))
        })
    }

    /// Load a catalog from a directory laid out like `models/`. A name outside the
    /// hardware vocabulary ([`crate::vocab`]) fails the load with the file and the name.
    pub fn from_dir(dir: &Path) -> Result<Catalog> {
        let read = |p: &Path| {
            std::fs::read_to_string(p)
                .map_err(|e| Error::input(p.display().to_string(), format!("cannot read: {e}")))
        };
        let mut machines = Vec::new();
        let mdir = dir.join("machines");
        let entries = std::fs::read_dir(&mdir)
            .map_err(|e| Error::input(mdir.display().to_string(), format!("cannot read: {e}")))?;
        let mut names: Vec<_> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
            .collect();
        names.sort();
        for p in names {
            machines.push((p.display().to_string(), read(&p)?));
        }
        let controllers = dir.join("controllers.yaml");
        let devices = dir.join("devices.yaml");
        Catalog::from_texts(
            Syntax::Yaml,
            machines,
            (&controllers.display().to_string(), &read(&controllers)?),
            (&devices.display().to_string(), &read(&devices)?),
        )
    }

    /// Parse the files, each `(name for errors, text)`.
    fn from_texts(
        syntax: Syntax,
        machines: impl IntoIterator<Item = (String, String)>,
        controllers: (&str, &str),
        devices: (&str, &str),
    ) -> Result<Catalog> {
        let mut ms = Vec::new();
        for (name, text) in machines {
            ms.push(syntax.parse::<MachineModel>(&name, &text)?);
        }
        let ctl: ControllersFile = syntax.parse(controllers.0, controllers.1)?;
        let dev: DevicesFile = syntax.parse(devices.0, devices.1)?;
        let cat = Catalog {
            machines: ms,
            pci: ctl.pci.into_iter().map(|m| (m.model.clone(), m)).collect(),
            storage: ctl
                .storage
                .into_iter()
                .map(|m| (m.model.clone(), m))
                .collect(),
            kinds: dev.kinds,
        };
        cat.validate()?;
        Ok(cat)
    }

    /// Cross-reference checks so that a bad catalog fails at load, not mid-plan.
    fn validate(&self) -> Result<()> {
        for m in &self.machines {
            let need = [
                Some(&m.root),
                m.grow.pcie_port.as_ref(),
                m.grow.pci_bridge.as_ref(),
                m.grow.pcie_switch_upstream.as_ref(),
                m.grow.pcie_switch_downstream.as_ref(),
                m.grow.numa_expander.as_ref(),
            ];
            for model in need
                .into_iter()
                .flatten()
                .chain(m.grow.pci_bridge_first.iter())
            {
                if !self.pci.contains_key(model) {
                    return Err(Error::input(
                        format!("machines/{}.grow", m.name),
                        format!("unknown PCI controller model `{model}`"),
                    ));
                }
            }
            for c in &m.builtin_controllers {
                if !self.storage.contains_key(&c.model) {
                    return Err(Error::input(
                        format!("machines/{}.builtin_controllers", m.name),
                        format!("unknown controller model `{}`", c.model),
                    ));
                }
            }
        }
        for m in self.pci.values() {
            let [lo, hi] = m.bus.slots;
            if lo > hi || hi > crate::vocab::pci::MAX_SLOT {
                return Err(Error::input(
                    format!("controllers.yaml model {}", m.model),
                    format!(
                        "bus slots [{lo}, {hi}]; expected a range within 0-{}",
                        crate::vocab::pci::MAX_SLOT
                    ),
                ));
            }
        }
        for k in &self.kinds {
            let drive_bus_ok = match k.family {
                Family::Drive => k.drive_bus.is_some_and(|b| b != ControllerType::Usb),
                _ => k.drive_bus.is_none(),
            };
            if !drive_bus_ok {
                return Err(Error::input(
                    format!("devices.yaml kind {}", k.kind),
                    "a drive kind needs a drive_bus (sata, scsi or ide), and only drive kinds                      have one",
                ));
            }
            if let Some(c) = &k.controller {
                if !self.storage.contains_key(c) {
                    return Err(Error::input(
                        format!("devices.yaml kind {}", k.kind),
                        format!("unknown controller `{c}`"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Find a machine by name, alias or versioned name (`pc-q35-9.2`, `pc-i440fx-8.0`, `virt-9.0`).
    pub fn machine(&self, name: &str) -> Option<&MachineModel> {
        self.machines
            .iter()
            .find(|m| m.name == name || m.aliases.iter().any(|a| a == name))
            .or_else(|| {
                self.machines.iter().find(|m| {
                    std::iter::once(&m.name)
                        .chain(m.aliases.iter())
                        .any(|a| a != "pc" && name.starts_with(&format!("{a}-")))
                })
            })
    }

    /// Find a device kind.
    pub fn kind(&self, name: &str) -> Option<&Kind> {
        self.kinds.iter().find(|k| k.kind == name)
    }

    /// A PCI controller model (panics on names that the catalog validated).
    pub fn pci_model(&self, name: &str) -> &PciModel {
        &self.pci[name]
    }

    /// Known names close to `name`, closest first (at most three), for "did you mean"
    /// messages; empty when none is close. Close means: the same ignoring case, or
    /// within a few edits for its length (Damerau-Levenshtein: one edit per four
    /// characters, at least one and at most three; a swap of two letters is one edit), or a
    /// normalized similarity of at least 0.8, or one name containing the other when that
    /// is at least half of it (`virtio-blk` in `virtio-blk-pci`). `xyz` is close to
    /// nothing; `q53` is close to `q35`.
    pub fn near<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Vec<String> {
        let wanted = name.to_lowercase();
        let n = wanted.chars().count();
        if n == 0 {
            return Vec::new();
        }
        let allowed = (n / 4).clamp(1, 3);
        let mut scored: Vec<(usize, &str)> = candidates
            .filter_map(|c| {
                let lc = c.to_lowercase();
                let d = strsim::damerau_levenshtein(&wanted, &lc);
                let similar = strsim::normalized_damerau_levenshtein(&wanted, &lc) >= 0.8;
                let (short, long) = if n <= lc.chars().count() {
                    (&wanted, &lc)
                } else {
                    (&lc, &wanted)
                };
                let contained = short.chars().count() >= 4
                    && 2 * short.chars().count() >= long.chars().count()
                    && long.contains(short.as_str());
                (d <= allowed || similar || contained).then_some((d, c))
            })
            .collect();
        scored.sort();
        scored.dedup_by(|a, b| a.1 == b.1);
        scored
            .into_iter()
            .take(3)
            .map(|(_, c)| c.to_string())
            .collect()
    }
}

/// `; did you mean a, b?` for the names [`Catalog::near`] `name`, or nothing.
pub(crate) fn did_you_mean<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> String {
    let near = Catalog::near(name, candidates);
    if near.is_empty() {
        String::new()
    } else {
        format!("; did you mean {}?", near.join(", "))
    }
}

impl Catalog {
    /// Every machine name and alias, sorted.
    pub(crate) fn machine_names(&self) -> Vec<&str> {
        let mut all: Vec<&str> = self
            .machines
            .iter()
            .flat_map(|m| std::iter::once(&m.name).chain(m.aliases.iter()))
            .map(String::as_str)
            .collect();
        all.sort();
        all.dedup();
        all
    }

    /// The message for a machine type the catalog does not have.
    pub(crate) fn unknown_machine(&self, name: &str) -> Error {
        let all = self.machine_names();
        Error::input(
            "machine",
            format!(
                "unknown machine type `{name}`; expected one of: {} (or a versioned name \
                 like pc-q35-9.2){}",
                all.join(", "),
                did_you_mean(name, all.iter().copied())
            ),
        )
        .with_code(crate::Code::UnknownName)
    }

    /// `; did you mean …?` for a device kind the catalog does not have, or a pointer to
    /// the list.
    pub(crate) fn kind_hint(&self, name: &str) -> String {
        let near = did_you_mean(name, self.kinds.iter().map(|k| k.kind.as_str()));
        if near.is_empty() {
            "; run `devaddr models` for the list".into()
        } else {
            near
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_catalog_loads_and_resolves_aliases() {
        let c = Catalog::embedded();
        assert_eq!(c.machine("pc").unwrap().name, "pc-i440fx");
        assert_eq!(c.machine("pc-i440fx-8.2").unwrap().name, "pc-i440fx");
        assert_eq!(c.machine("pc-q35-9.0").unwrap().name, "q35");
        assert_eq!(c.machine("virt-8.0").unwrap().name, "virt");
        assert!(c.machine("isapc").is_none());
        assert!(c.kind("virtio-net").is_some());
        assert_eq!(c.pci_model("pcie-root-port").bus.slots, [0, 0]);
    }

    /// A copy of the embedded models/ in a fresh directory, with `edit` applied to the
    /// text of `file`.
    fn models_with(tag: &str, file: &str, edit: impl Fn(&str) -> String) -> std::path::PathBuf {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
        let dir =
            std::env::temp_dir().join(format!("devaddr-catalog-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("machines")).unwrap();
        for name in ["controllers.yaml", "devices.yaml"] {
            let text = std::fs::read_to_string(src.join(name)).unwrap();
            let text = if name == file { edit(&text) } else { text };
            std::fs::write(dir.join(name), text).unwrap();
        }
        for (name, _) in EMBEDDED_MACHINES {
            let path = format!("machines/{name}");
            let text = std::fs::read_to_string(src.join(&path)).unwrap();
            let text = if path == file { edit(&text) } else { text };
            std::fs::write(dir.join(&path), text).unwrap();
        }
        dir
    }

    #[test]
    fn a_copy_of_the_embedded_models_loads() {
        let dir = models_with("same", "", |t| t.to_string());
        let c = Catalog::from_dir(&dir).unwrap();
        std::fs::remove_dir_all(&dir).ok();
        assert_eq!(c.pci.len(), Catalog::embedded().pci.len());
    }

    #[test]
    fn unknown_names_fail_with_the_file_and_the_name() {
        // (file, text, replaced by, the unknown name)
        let cases = [
            (
                "controllers.yaml",
                "connect: pcie-root-port",
                "connect: pcie-root-prt",
                "pcie-root-prt",
            ),
            (
                "controllers.yaml",
                "accepts: [pcie-device,",
                "accepts: [pcie-devce,",
                "pcie-devce",
            ),
            ("controllers.yaml", "provides: sata", "provides: sas", "sas"),
            (
                "controllers.yaml",
                "attrs: [chassis_nr]",
                "attrs: [chassis_number]",
                "chassis_number",
            ),
            ("devices.yaml", "drive_bus: scsi", "drive_bus: scsy", "scsy"),
        ];
        for (i, (file, from, to, name)) in cases.into_iter().enumerate() {
            let dir = models_with(&format!("unknown{i}"), file, |t| {
                assert!(t.contains(from), "{file} has no `{from}`");
                t.replacen(from, to, 1)
            });
            let err = Catalog::from_dir(&dir).unwrap_err().to_string();
            std::fs::remove_dir_all(&dir).ok();
            assert!(err.contains(file), "`{err}` does not name {file}");
            assert!(
                err.contains(&format!("`{name}`")),
                "`{err}` does not name `{name}`"
            );
        }
    }

    #[test]
    fn slots_out_of_range_fail_the_load() {
        let dir = models_with("slot", "machines/q35.yaml", |t| {
            t.replacen(
                "{slot: 0x1f, functions: [3]",
                "{slot: 0x20, functions: [3]",
                1,
            )
        });
        let err = Catalog::from_dir(&dir).unwrap_err().to_string();
        std::fs::remove_dir_all(&dir).ok();
        assert!(err.contains("q35.yaml") && err.contains("slot 32"), "{err}");
    }

    #[test]
    fn near_matches_suggest_close_names() {
        let c = Catalog::embedded();
        let kinds = || c.kinds.iter().map(|k| k.kind.as_str());
        let n = Catalog::near("virtio-nett", kinds());
        assert_eq!(n.first().map(String::as_str), Some("virtio-net"));
        let machines = c.machine_names();
        assert_eq!(Catalog::near("q53", machines.iter().copied()), ["q35"]);
        assert_eq!(Catalog::near("Q35", machines.iter().copied()), ["q35"]);
        assert_eq!(
            Catalog::near("virtio-blk-pci", kinds())
                .first()
                .map(String::as_str),
            Some("virtio-blk")
        );
    }

    #[test]
    fn far_names_suggest_nothing() {
        let c = Catalog::embedded();
        let all: Vec<&str> = c
            .machine_names()
            .into_iter()
            .chain(c.pci.keys().map(String::as_str))
            .chain(c.kinds.iter().map(|k| k.kind.as_str()))
            .collect();
        for far in ["xyz", "abc", "foo", "q99", "x", "network"] {
            let n = Catalog::near(far, all.iter().copied());
            assert!(n.is_empty(), "`{far}` suggests {n:?}");
        }
    }

    /// The embedded catalog (build.rs's JSON) is exactly what the YAML files of `models/`
    /// say, machine order included (the first match wins in [`Catalog::machine`]).
    #[test]
    fn the_embedded_json_is_the_yaml_catalog() {
        let yaml = Catalog::from_texts(
            Syntax::Yaml,
            [
                ("q35.yaml", include_str!("../../models/machines/q35.yaml")),
                (
                    "pc-i440fx.yaml",
                    include_str!("../../models/machines/pc-i440fx.yaml"),
                ),
                ("virt.yaml", include_str!("../../models/machines/virt.yaml")),
            ]
            .map(|(n, t)| (n.to_string(), t.to_string())),
            (
                "controllers.yaml",
                include_str!("../../models/controllers.yaml"),
            ),
            ("devices.yaml", include_str!("../../models/devices.yaml")),
        )
        .expect("models/ parses");
        assert_eq!(format!("{:#?}", Catalog::embedded()), format!("{yaml:#?}"));
        assert_eq!(EMBEDDED_MACHINES.len(), 3);
    }
}
