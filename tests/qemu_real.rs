//! Boots the topologies `devaddr plan --format qemu` emits in real QEMU and checks that
//! QEMU (and, on x86, the SeaBIOS firmware) sees exactly the planned PCI topology.
//!
//! * Every spec in `tests/qemu-specs/` is planned twice (`--format json`, `--format qemu`).
//! * The argument list: `-machine q35|pc|virt` (`-cpu cortex-a57` on virt), `-nodefaults`,
//!   exactly one `-device` per planned device and non-builtin controller, none for builtins.
//! * `-S` check (x86_64 and aarch64): QEMU is started paused and asked over QMP, for every
//!   planned PCI device and every non-builtin PCI/storage/USB controller, which bus it sits
//!   on (`parent_bus`) and at which devfn (`addr`); controller attributes (chassis, port,
//!   chassis_nr, bus_nr, expander numa_node, port hotplug, multifunction) are compared too.
//!   USB devices must sit on the planned controller's bus and port, SATA/IDE/SCSI disks on
//!   the planned controller, bus/port, target and unit. Every planned device must exist.
//!   Then the hotplug claims: every hotpluggable device must accept `device_del`, and
//!   `free.hotplug_pcie_ports` / `free.hotplug_pci_slots` / `free.usb_ports` must be
//!   backed by places where QEMU accepts a hot-added device.
//! * Boot check (x86_64 only): QEMU runs until SeaBIOS has enumerated the PCI buses and
//!   assigned BARs; `query-pci` must show every planned device with all BARs assigned, at the
//!   planned slot/function, on the guest bus number the firmware gave its parent bus.
//!
//! When `qemu-system-x86_64` / `qemu-system-aarch64` is missing the tests print a SKIPPED
//! line and pass, unless the `CI` environment variable is set (then they fail).
//!
//! Run: `cargo test --test qemu_real -- --nocapture`.

mod common;
#[path = "qemu_real/generated.rs"]
mod generated;
#[path = "qemu_real/linux_guest.rs"]
mod linux_guest;
use common::devaddr_ok as devaddr_cmd;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const X86: &str = "qemu-system-x86_64";
const ARM: &str = "qemu-system-aarch64";

/// PCI controller models: they provide a bus (the others sit on one).
const PCI_CONTROLLER_MODELS: &[&str] = &[
    "pcie-root",
    "pci-root",
    "pcie-root-port",
    "pcie-to-pci-bridge",
    "pci-bridge",
    "pcie-expander-bus",
    "pci-expander-bus",
    "pcie-switch-upstream-port",
    "pcie-switch-downstream-port",
    "dmi-to-pci-bridge",
];

fn is_pci_controller(model: &str) -> bool {
    PCI_CONTROLLER_MODELS.contains(&model) || model.starts_with("pcie-switch-")
}

// ---------------------------------------------------------------------------------------
// Environment

fn find_in_path(bin: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(bin))
        .find(|p| p.is_file())
}

/// `CI` is set (to anything but empty, `0` or `false`).
fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !matches!(v.trim(), "" | "0" | "false"))
}

/// The QEMU binary, or `None` after printing a SKIPPED line. Panics under CI.
fn qemu_or_skip(bin: &str, test: &str) -> Option<PathBuf> {
    match find_in_path(bin) {
        Some(p) => Some(p),
        None => {
            if in_ci() {
                panic!("qemu_real::{test}: {bin} not found on PATH, and CI is set: CI must not skip the real-QEMU tests");
            }
            eprintln!("SKIPPED qemu_real::{test}: {bin} not found");
            None
        }
    }
}

fn specs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/qemu-specs")
}

/// Spec files for one architecture: aarch64 specs are the `virt` machine ones.
fn spec_files(aarch64: bool) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(specs_dir())
        .expect("tests/qemu-specs exists")
        .map(|e| e.expect("readable dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .filter(|p| {
            let text = std::fs::read_to_string(p).expect("readable spec");
            let virt = text.lines().any(|l| {
                l.strip_prefix("machine:")
                    .is_some_and(|m| m.trim().trim_matches(['"', '\'']).starts_with("virt"))
            });
            virt == aarch64
        })
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "no specs for aarch64={aarch64} in {:?}",
        specs_dir()
    );
    files
}

fn unique_path(tag: &str, ext: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::SeqCst);
    // Unix socket paths are limited to ~108 bytes: keep the name short.
    let tag: String = tag.chars().take(20).collect();
    let name = format!("devaddr-{}-{n}-{tag}.{ext}", std::process::id());
    let dir = std::env::temp_dir();
    if dir.join(&name).as_os_str().len() < 100 {
        dir.join(name)
    } else {
        Path::new("/tmp").join(name)
    }
}

// ---------------------------------------------------------------------------------------
// The plan

fn devaddr(spec: &Path, format: &str) -> Result<String, String> {
    let out = Command::new(env!("CARGO_BIN_EXE_devaddr"))
        .args(["plan", "--format", format])
        .arg(spec)
        .output()
        .map_err(|e| format!("cannot run devaddr: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "`devaddr plan --format {format}` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    String::from_utf8(out.stdout).map_err(|e| format!("devaddr output is not UTF-8: {e}"))
}

/// A planned PCI function that QEMU must show: a device or a controller with a PCI address.
#[derive(Debug, Clone)]
struct PciItem {
    id: String,
    /// `device <kind>` or `controller <model>`.
    what: String,
    /// Plan index of the PCI controller providing the bus (0 = root).
    bus: u64,
    slot: u64,
    function: u64,
    /// Further QOM properties to compare: (property, expected, skip if QEMU lacks it).
    props: Vec<(&'static str, Value, bool)>,
}

/// QOM properties that must carry the plan's controller attributes.
fn controller_props(c: &Value, model: &str) -> Vec<(&'static str, Value, bool)> {
    let mut props = Vec::new();
    for key in ["chassis", "port", "chassis_nr", "bus_nr"] {
        if let Some(v) = c.get(key).and_then(Value::as_u64) {
            props.push((key, json!(v), false));
        }
    }
    if model.ends_with("expander-bus") {
        if let Some(v) = c.get("numa_node").and_then(Value::as_u64) {
            props.push(("numa_node", json!(v), false));
        }
    }
    // Only ports have a `hotplug` property; bridges hotplug through SHPC/ACPI.
    if let Some(v) = c.get("hotplug").and_then(Value::as_bool) {
        props.push(("hotplug", json!(v), true));
    }
    props
}

/// `multifunction=on` where the plan asks for it.
fn multifunction_prop(v: &Value) -> Option<(&'static str, Value, bool)> {
    let mf = v.get("address")?.get("multifunction")?.as_bool()?;
    mf.then_some(("multifunction", json!(true), false))
}

#[derive(Debug)]
struct Plan {
    spec: String,
    machine: String,
    root_bus_name: String,
    /// Items to check.
    pci: Vec<PciItem>,
    /// Every device id of the plan (PCI or not): each must exist in QEMU.
    device_ids: Vec<String>,
    /// PCI controllers by index: (id, model, bus_nr).
    pci_controllers: BTreeMap<u64, (String, String, Option<u64>)>,
    /// Builtin controller ids (no -device line).
    builtin_ids: Vec<String>,
    /// USB and drive devices with where QEMU must have attached them.
    attached: Vec<Attached>,
    /// `policy.preset` of the plan.
    preset: String,
    /// The plan's `controllers`, `devices` and `free` as written.
    controllers: Vec<Value>,
    devices: Vec<Value>,
    free: Value,
    args: Vec<String>,
    /// The guest bus number `--format tree` shows for each PCI controller id.
    tree_buses: BTreeMap<String, i64>,
    /// The placement constraints: `placement: root` devices, `apart` and `together` sets.
    placement: Placement,
}

/// The placement constraints of a plan, by device id.
#[derive(Debug, Default)]
struct Placement {
    root: Vec<String>,
    apart: Vec<Vec<String>>,
    together: Vec<Vec<String>>,
}

impl Placement {
    fn of(plan: &Value) -> Placement {
        let sets = |key: &str| -> Vec<Vec<String>> {
            serde_json::from_value(plan.get(key).cloned().unwrap_or(json!([]))).unwrap_or_default()
        };
        let root = plan
            .get("devices")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|d| d.get("placement").and_then(Value::as_str) == Some("root"))
            .map(|d| str_of(d, "id").to_string())
            .collect();
        Placement {
            root,
            apart: sets("apart"),
            together: sets("together"),
        }
    }
    fn is_empty(&self) -> bool {
        self.root.is_empty() && self.apart.is_empty() && self.together.is_empty()
    }
}

/// The guest bus number `--format tree` shows for each bus-providing controller: the
/// first number of the last bracket after the slot (`+-01.0-[01] pci.1 …` → 1,
/// `+-02.0-[0000:fb]-00.0-[fc-fd] pci.2 …` → 0xfc, `-[0000:f8-fc]` → 0xf8).
fn tree_bus_numbers(tree: &str) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    for line in tree.lines() {
        let Some(start) = line.find(|c: char| c.is_ascii_hexdigit()) else {
            continue;
        };
        let mut words = line[start..].split_whitespace();
        let (Some(at), Some(id)) = (words.next(), words.next()) else {
            continue;
        };
        let Some(last) = at.rsplit("-[").next().filter(|_| at.contains("-[")) else {
            continue;
        };
        let num = last.trim_end_matches(']');
        let num = num.rsplit(':').next().unwrap_or(num);
        let first = num.split('-').next().unwrap_or(num);
        if let Ok(n) = i64::from_str_radix(first, 16) {
            out.insert(id.to_string(), n);
        }
    }
    out
}

fn pci_addr(v: &Value) -> Option<(u64, u64, u64)> {
    let a = v.get("address")?;
    if a.get("type")?.as_str()? != "pci" {
        return None;
    }
    Some((
        a.get("bus")?.as_u64()?,
        a.get("slot")?.as_u64()?,
        a.get("function")?.as_u64()?,
    ))
}

/// A USB or drive device: the QEMU bus it must sit on and properties to compare.
#[derive(Debug, Clone)]
struct Attached {
    id: String,
    what: String,
    /// Expected last component of `parent_bus` (`usb0.0`, `ide.1`, `scsi0.0`).
    bus_name: String,
    /// (QOM property, expected value).
    props: Vec<(&'static str, Value)>,
}

/// What a storage/USB controller model (or controller device kind) provides.
fn provides(model_or_kind: &str) -> Option<&'static str> {
    Some(match model_or_kind {
        "ich9-ahci" => "sata",
        "piix3-ide" => "ide",
        "piix3-uhci" | "qemu-xhci" => "usb",
        "virtio-scsi" => "scsi",
        _ => return None,
    })
}

/// What bus a device kind plugs into.
fn needs(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "sata-disk" => "sata",
        "ide-disk" => "ide",
        "scsi-disk" => "scsi",
        k if k.starts_with("usb-") => "usb",
        _ => return None,
    })
}

/// Storage/USB controllers by (provides, index) -> (id, builtin). Plan controllers keep
/// their index; controllers declared as spec devices take the free indexes in order.
fn storage_controllers(
    controllers: &[Value],
    devices: &[Value],
) -> BTreeMap<(String, u64), (String, bool)> {
    let mut out = BTreeMap::new();
    for c in controllers {
        if let Some(p) = provides(str_of(c, "model")) {
            let index = c.get("index").and_then(Value::as_u64).unwrap_or(0);
            let builtin = c.get("builtin").and_then(Value::as_bool) == Some(true);
            out.insert(
                (p.to_string(), index),
                (str_of(c, "id").to_string(), builtin),
            );
        }
    }
    for d in devices {
        if let Some(p) = provides(str_of(d, "kind")) {
            let index = (0..)
                .find(|i| !out.contains_key(&(p.to_string(), *i)))
                .unwrap();
            out.insert((p.to_string(), index), (str_of(d, "id").to_string(), false));
        }
    }
    out
}

fn attached_devices(controllers: &[Value], devices: &[Value]) -> Result<Vec<Attached>, String> {
    let ctls = storage_controllers(controllers, devices);
    let mut out = Vec::new();
    for d in devices {
        let id = str_of(d, "id").to_string();
        let kind = str_of(d, "kind");
        let Some(a) = d.get("address") else { continue };
        let Some(need) = needs(kind) else { continue };
        let num = |k: &str| a.get(k).and_then(Value::as_u64).unwrap_or(0);
        let what = format!("device {kind}");
        match str_of(a, "type") {
            "usb" => {
                let Some((ctl, builtin)) = ctls.get(&(need.to_string(), num("bus"))) else {
                    return Err(format!(
                        "{what} {id}: plan has no USB controller with index {}",
                        num("bus")
                    ));
                };
                let port = match a.get("port") {
                    Some(Value::String(s)) => s.clone(),
                    Some(v) => v.to_string(),
                    None => String::new(),
                };
                if !builtin {
                    out.push(Attached {
                        id,
                        what,
                        bus_name: format!("{ctl}.0"),
                        props: vec![("port", Value::String(port))],
                    });
                }
            }
            "drive" => {
                let Some((ctl, builtin)) = ctls.get(&(need.to_string(), num("controller"))) else {
                    return Err(format!(
                        "{what} {id}: plan has no {need} controller with index {}",
                        num("controller")
                    ));
                };
                // QEMU names the buses of the chipset's own IDE/AHCI controller `ide.N`.
                let prefix = if *builtin { "ide" } else { ctl.as_str() };
                let (bus_name, props) = match need {
                    "sata" => (format!("{prefix}.{}", num("unit")), vec![]),
                    "ide" => (
                        format!("{prefix}.{}", num("bus")),
                        vec![("unit", json!(num("unit")))],
                    ),
                    _ => (
                        format!("{prefix}.{}", num("bus")),
                        vec![
                            ("scsi-id", json!(num("target"))),
                            ("lun", json!(num("unit"))),
                        ],
                    ),
                };
                out.push(Attached {
                    id,
                    what,
                    bus_name,
                    props,
                });
            }
            _ => {}
        }
    }
    Ok(out)
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

fn load_plan(spec_path: &Path) -> Result<Plan, String> {
    let spec = spec_path
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let json_text = devaddr(spec_path, "json")?;
    let plan: Value = serde_json::from_str(&json_text)
        .map_err(|e| format!("plan JSON does not parse: {e}\n{json_text}"))?;
    let qemu_text = devaddr(spec_path, "qemu")?;
    let tree_buses = tree_bus_numbers(&devaddr(spec_path, "tree")?);
    let args: Vec<String> = qemu_text
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    if args.is_empty() {
        return Err("`devaddr plan --format qemu` printed nothing".into());
    }
    let machine = str_of(&plan, "machine").to_string();
    let controllers = plan
        .get("controllers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let devices = plan
        .get("devices")
        .and_then(Value::as_array)
        .cloned()
        .ok_or("plan JSON has no `devices` array")?;
    let root_model = controllers
        .iter()
        .find(|c| {
            c.get("index").and_then(Value::as_u64) == Some(0)
                && is_pci_controller(str_of(c, "model"))
        })
        .map(|c| str_of(c, "model").to_string());
    let root_bus_name = match root_model.as_deref() {
        Some("pcie-root") => "pcie.0",
        Some("pci-root") => "pci.0",
        _ if machine == "q35" || machine.starts_with("pc-q35") || machine.starts_with("virt") => {
            "pcie.0"
        }
        _ => "pci.0",
    }
    .to_string();

    let mut pci = Vec::new();
    let mut pci_controllers = BTreeMap::new();
    let mut builtin_ids = Vec::new();
    for c in &controllers {
        let id = str_of(c, "id").to_string();
        let model = str_of(c, "model").to_string();
        let index = c.get("index").and_then(Value::as_u64).unwrap_or(0);
        let builtin = c.get("builtin").and_then(Value::as_bool) == Some(true);
        if builtin {
            builtin_ids.push(id.clone());
        }
        if is_pci_controller(&model) {
            pci_controllers.insert(
                index,
                (
                    id.clone(),
                    model.clone(),
                    c.get("bus_nr").and_then(Value::as_u64),
                ),
            );
        }
        if builtin {
            continue;
        }
        if let Some((bus, slot, function)) = pci_addr(c) {
            let mut props = controller_props(c, &model);
            props.extend(multifunction_prop(c));
            pci.push(PciItem {
                id,
                what: format!("controller {model}"),
                bus,
                slot,
                function,
                props,
            });
        }
    }
    let attached = attached_devices(&controllers, &devices)?;
    let mut device_ids = Vec::new();
    for d in &devices {
        let id = str_of(d, "id").to_string();
        device_ids.push(id.clone());
        if let Some((bus, slot, function)) = pci_addr(d) {
            pci.push(PciItem {
                id,
                what: format!("device {}", str_of(d, "kind")),
                bus,
                slot,
                function,
                props: multifunction_prop(d).into_iter().collect(),
            });
        }
    }
    Ok(Plan {
        spec,
        machine,
        root_bus_name,
        pci,
        device_ids,
        pci_controllers,
        builtin_ids,
        attached,
        free: plan.get("free").cloned().unwrap_or(Value::Null),
        preset: plan
            .get("policy")
            .map(|p| str_of(p, "preset").to_string())
            .unwrap_or_default(),
        controllers,
        devices,
        args,
        tree_buses,
        placement: Placement::of(&plan),
    })
}

impl Plan {
    /// QEMU name of the bus with plan index `bus`.
    fn expected_bus_name(&self, bus: u64) -> String {
        if bus == 0 {
            self.root_bus_name.clone()
        } else {
            format!("pci.{bus}")
        }
    }

    /// Static checks of the argument list against the plan.
    fn check_args(&self, failures: &mut Vec<String>) {
        let spec = &self.spec;
        let a = &self.args;
        let has = |s: &str| a.iter().any(|x| x == s);
        if a.first().map(String::as_str) != Some("-machine") {
            failures.push(format!(
                "[{spec}] qemu args: expected to start with `-machine`, got {:?}",
                a.first()
            ));
        }
        let machine_arg = a.get(1).map(String::as_str).unwrap_or_default();
        let want_machine = match self.root_bus_name.as_str() {
            "pci.0" => "pc",
            _ if self.machine.starts_with("virt") => "virt",
            _ => "q35",
        };
        if machine_arg.split(',').next() != Some(want_machine) {
            failures.push(format!(
                "[{spec}] qemu args: `-machine {want_machine}` expected for plan machine {}, got `-machine {machine_arg}`",
                self.machine
            ));
        }
        if want_machine == "virt" && !a.windows(2).any(|w| w[0] == "-cpu" && w[1] == "cortex-a57") {
            failures.push(format!(
                "[{spec}] qemu args: `-cpu cortex-a57` missing for virt"
            ));
        }
        if !has("-nodefaults") {
            failures.push(format!("[{spec}] qemu args: `-nodefaults` missing"));
        }
        let device_lines: Vec<&String> = a
            .windows(2)
            .filter(|w| w[0] == "-device")
            .map(|w| &w[1])
            .collect();
        let id_count = |id: &str| {
            device_lines
                .iter()
                .filter(|l| l.split(',').any(|kv| kv == format!("id={id}")))
                .count()
        };
        let mut wanted: Vec<&str> = self.device_ids.iter().map(String::as_str).collect();
        wanted.extend(self.pci.iter().map(|p| p.id.as_str()));
        wanted.sort();
        wanted.dedup();
        for id in wanted {
            let n = id_count(id);
            if n != 1 {
                failures.push(format!(
                    "[{spec}] qemu args: expected exactly one `-device ...,id={id}` line, found {n}"
                ));
            }
        }
        for id in &self.builtin_ids {
            let n = id_count(id);
            if n != 0 {
                failures.push(format!(
                    "[{spec}] qemu args: builtin controller {id} must get no -device line, found {n}"
                ));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// QEMU process and QMP

struct Qemu {
    child: Child,
    files: Vec<PathBuf>,
    stderr_path: PathBuf,
    sock: PathBuf,
    debug_log: Option<PathBuf>,
}

impl Drop for Qemu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for f in &self.files {
            let _ = std::fs::remove_file(f);
        }
    }
}

impl Qemu {
    /// Starts QEMU. `paused`: with `-S`. `debugcon`: x86 SeaBIOS debug log.
    fn start(bin: &Path, plan: &Plan, paused: bool, debugcon: bool) -> Qemu {
        Self::start_with(bin, plan, paused, debugcon, &[])
    }

    /// [`Qemu::start`] with `extra` arguments (a firmware).
    fn start_with(bin: &Path, plan: &Plan, paused: bool, debugcon: bool, extra: &[String]) -> Qemu {
        let tag = plan.spec.trim_end_matches(".yaml");
        let sock = unique_path(tag, "sock");
        let stderr_path = unique_path(tag, "stderr");
        let mut files = vec![sock.clone(), stderr_path.clone()];
        let mut cmd = Command::new(bin);
        // A UEFI plan (`firmware: uefi`, or aarch64 virt) carries the firmware's flash drives.
        let uefi = plan.args.iter().any(|a| a.starts_with("if=pflash"));
        cmd.args(&plan.args)
            .args(extra)
            .args(["-accel", "tcg", "-display", "none", "-monitor", "none"])
            .arg("-qmp")
            .arg(format!("unix:{},server=on,wait=off", sock.display()));
        if paused {
            cmd.arg("-S");
        }
        let mut debug_log = None;
        if debugcon && uefi {
            // OVMF/AAVMF (release builds) log to the serial console: the boot manager's
            // `BdsDxe:` lines say PCI enumeration is over.
            let log = unique_path(tag, "uefi.log");
            cmd.arg("-serial").arg(format!("file:{}", log.display()));
            files.push(log.clone());
            debug_log = Some(log);
        } else {
            cmd.args(["-serial", "none"]);
        }
        if debugcon && !uefi {
            let log = unique_path(tag, "seabios.log");
            cmd.arg("-chardev")
                .arg(format!("file,id=seabios,path={}", log.display()))
                .args(["-device", "isa-debugcon,iobase=0x402,chardev=seabios"]);
            files.push(log.clone());
            debug_log = Some(log);
        }
        let stderr = std::fs::File::create(&stderr_path).expect("create stderr file");
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        Qemu {
            child,
            files,
            stderr_path,
            sock,
            debug_log,
        }
    }

    fn stderr_text(&self) -> String {
        std::fs::read_to_string(&self.stderr_path)
            .unwrap_or_default()
            .trim()
            .to_string()
    }

    /// `Err` with QEMU's error text when it exited.
    fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(format!("QEMU exited ({status}): {}", self.stderr_text())),
            _ => None,
        }
    }

    /// Connects to QMP (waits for the socket), negotiates capabilities.
    fn qmp(&mut self) -> Result<Qmp, String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(e) = self.exited() {
                return Err(e);
            }
            if let Ok(s) = UnixStream::connect(&self.sock) {
                let mut q = Qmp::new(s)?;
                q.read_message()?; // greeting
                q.execute("qmp_capabilities", json!({}))?;
                return Ok(q);
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "QMP socket {} did not come up in 20 s; stderr: {}",
                    self.sock.display(),
                    self.stderr_text()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// [`Qemu::qmp`], or `None` after recording that QEMU rejected the planned arguments.
    fn qmp_or_fail(&mut self, spec: &str, failures: &mut Vec<String>) -> Option<Qmp> {
        self.qmp()
            .map_err(|e| {
                failures.push(format!("[{spec}] QEMU rejected the planned arguments: {e}"))
            })
            .ok()
    }

    /// Firmware log (SeaBIOS debug port, UEFI serial): error lines plus the tail, for
    /// failure messages.
    fn firmware_log_excerpt(&self) -> String {
        let Some(p) = &self.debug_log else {
            return String::new();
        };
        let text = std::fs::read_to_string(p).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let errors: Vec<&str> = lines
            .iter()
            .copied()
            .filter(|l| {
                let l = l.to_ascii_lowercase();
                (l.contains("out of") || l.contains("error") || l.contains("fail"))
                    && !l.contains("boot failed")
            })
            .collect();
        let tail = &lines[lines.len().saturating_sub(25)..];
        format!(
            "firmware log ({} lines); error lines: {:?}\n  last lines:\n    {}",
            lines.len(),
            errors,
            tail.join("\n    ")
        )
    }
}

struct Qmp {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Qmp {
    fn new(s: UnixStream) -> Result<Qmp, String> {
        s.set_read_timeout(Some(Duration::from_secs(30)))
            .map_err(|e| e.to_string())?;
        let writer = s.try_clone().map_err(|e| e.to_string())?;
        Ok(Qmp {
            reader: BufReader::new(s),
            writer,
        })
    }

    fn read_message(&mut self) -> Result<Value, String> {
        let mut line = String::new();
        let n = self
            .reader
            .read_line(&mut line)
            .map_err(|e| format!("QMP read: {e}"))?;
        if n == 0 {
            return Err("QMP connection closed".into());
        }
        serde_json::from_str(&line).map_err(|e| format!("QMP message does not parse ({e}): {line}"))
    }

    /// Runs a command: `Ok(return value)` or `Err(QMP error description)`.
    fn execute(&mut self, cmd: &str, args: Value) -> Result<Value, String> {
        let msg = json!({"execute": cmd, "arguments": args});
        self.writer
            .write_all(format!("{msg}\n").as_bytes())
            .map_err(|e| format!("QMP write: {e}"))?;
        loop {
            let m = self.read_message()?;
            if m.get("event").is_some() {
                continue;
            }
            if let Some(r) = m.get("return") {
                return Ok(r.clone());
            }
            if let Some(e) = m.get("error") {
                return Err(format!("{}: {}", str_of(e, "class"), str_of(e, "desc")));
            }
        }
    }

    fn qom_get(&mut self, path: &str, property: &str) -> Result<Value, String> {
        self.execute("qom-get", json!({"path": path, "property": property}))
    }
}

// ---------------------------------------------------------------------------------------
// Paused check: QOM parent bus and devfn

/// Returns how many hotplug operations were tried.
fn check_paused(bin: &Path, plan: &Plan, failures: &mut Vec<String>) -> usize {
    let spec = &plan.spec;
    let mut qemu = Qemu::start(bin, plan, true, false);
    let Some(mut qmp) = qemu.qmp_or_fail(spec, failures) else {
        return 0;
    };
    for id in &plan.device_ids {
        if let Err(e) = qmp.qom_get(&format!("/machine/peripheral/{id}"), "type") {
            failures.push(format!("[{spec}] device {id}: not present in QEMU ({e})"));
        }
    }
    for item in &plan.attached {
        let path = format!("/machine/peripheral/{}", item.id);
        match qmp.qom_get(&path, "parent_bus") {
            Ok(v) => {
                let qom = v.as_str().unwrap_or_default();
                let actual = qom.rsplit('/').next().unwrap_or_default();
                if actual != item.bus_name {
                    failures.push(format!(
                        "[{spec}] {} {}: parent bus expected {}, QEMU has {actual} ({qom})",
                        item.what, item.id, item.bus_name
                    ));
                }
            }
            Err(e) => failures.push(format!(
                "[{spec}] {} {}: qom-get parent_bus failed: {e}",
                item.what, item.id
            )),
        }
        for (prop, want) in &item.props {
            match qmp.qom_get(&path, prop) {
                Ok(v) if &v == want => {}
                Ok(v) => failures.push(format!(
                    "[{spec}] {} {}: {prop} expected {want}, QEMU has {v}",
                    item.what, item.id
                )),
                Err(e) => failures.push(format!(
                    "[{spec}] {} {}: qom-get {prop} failed: {e}",
                    item.what, item.id
                )),
            }
        }
    }
    check_pci_items(&mut qmp, plan, failures);
    check_placement_paused(&mut qmp, plan, failures);
    // Last: hot-unplug requests and hot-added devices change the topology.
    check_hotplug(&mut qmp, plan, failures)
}

fn check_pci_items(qmp: &mut Qmp, plan: &Plan, failures: &mut Vec<String>) {
    let spec = &plan.spec;
    for item in &plan.pci {
        let path = format!("/machine/peripheral/{}", item.id);
        let expected_bus = plan.expected_bus_name(item.bus);
        match qmp.qom_get(&path, "parent_bus") {
            Ok(v) => {
                let qom = v.as_str().unwrap_or_default();
                let actual = qom.rsplit('/').next().unwrap_or_default();
                if actual != expected_bus {
                    failures.push(format!(
                        "[{spec}] {} {}: parent bus expected {expected_bus} (plan bus {}), QEMU has {actual} ({qom})",
                        item.what, item.id, item.bus
                    ));
                }
            }
            Err(e) => {
                failures.push(format!(
                    "[{spec}] {} {}: qom-get parent_bus failed: {e}",
                    item.what, item.id
                ));
                continue;
            }
        }
        match qmp.qom_get(&path, "addr") {
            Ok(v) => {
                let devfn = v.as_i64().unwrap_or(-1);
                let expected = (item.slot << 3 | item.function) as i64;
                if devfn != expected {
                    failures.push(format!(
                        "[{spec}] {} {}: devfn expected {:#x}.{:#x} (={expected}), QEMU has {} (={devfn})",
                        item.what,
                        item.id,
                        item.slot,
                        item.function,
                        if devfn >= 0 { format!("{:#x}.{:#x}", devfn >> 3, devfn & 7) } else { "none".into() },
                    ));
                }
            }
            Err(e) => failures.push(format!(
                "[{spec}] {} {}: qom-get addr failed: {e}",
                item.what, item.id
            )),
        }
        for (prop, want, optional) in &item.props {
            match qmp.qom_get(&path, prop) {
                Ok(v) if &v == want => {}
                Ok(v) => failures.push(format!(
                    "[{spec}] {} {}: {prop} expected {want} (plan), QEMU has {v}",
                    item.what, item.id
                )),
                Err(e) if *optional && e.contains("not found") => {}
                Err(e) => failures.push(format!(
                    "[{spec}] {} {}: qom-get {prop} failed: {e}",
                    item.what, item.id
                )),
            }
        }
    }
}

/// Hotplug claims of the plan, tried on the paused machine (QEMU treats `device_add` and
/// `device_del` after machine creation as hotplug and refuses them on buses that cannot):
/// * every device planned with `hotplug: true` (or, under preset hotplug-ready, without
///   `hotplug: false`) accepts an unplug request;
/// * `free.usb_ports` more USB devices can be added;
/// * for every group of `free.hotplug_pcie_ports` / `free.hotplug_pci_slots` (`root`,
///   `node<N>`), QEMU accepts a hot-added device in at least that many places: empty
///   hotpluggable PCIe ports, or free slots of conventional buses, of that group.
fn check_hotplug(qmp: &mut Qmp, plan: &Plan, failures: &mut Vec<String>) -> usize {
    let mut tried = 0;
    let spec = &plan.spec;
    struct Bus {
        id: String,
        model: String,
        parent: Option<u64>,
        numa_node: Option<u64>,
        hotplug: Option<bool>,
    }
    let mut buses: BTreeMap<u64, Bus> = BTreeMap::new();
    for c in &plan.controllers {
        let model = str_of(c, "model");
        if !is_pci_controller(model) {
            continue;
        }
        let index = c.get("index").and_then(Value::as_u64).unwrap_or(0);
        buses.insert(
            index,
            Bus {
                id: str_of(c, "id").to_string(),
                model: model.to_string(),
                parent: pci_addr(c).map(|a| a.0),
                numa_node: c.get("numa_node").and_then(Value::as_u64),
                hotplug: c.get("hotplug").and_then(Value::as_bool),
            },
        );
    }
    // Slots in use per bus index.
    let mut used: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for v in plan.controllers.iter().chain(&plan.devices) {
        if let Some((bus, slot, _)) = pci_addr(v) {
            used.entry(bus).or_default().push(slot);
        }
    }
    let group_of = |mut index: u64| -> String {
        for _ in 0..64 {
            let Some(b) = buses.get(&index) else {
                break;
            };
            if b.model.ends_with("expander-bus") {
                return format!("node{}", b.numa_node.unwrap_or(0));
            }
            match b.parent {
                Some(p) => index = p,
                None => break,
            }
        }
        "root".to_string()
    };
    let bus_name = |index: u64| -> String {
        if index == 0 {
            plan.root_bus_name.clone()
        } else {
            buses
                .get(&index)
                .map_or(format!("pci.{index}"), |b| b.id.clone())
        }
    };

    // Preset hotplug-ready makes every device hotpluggable unless it says `hotplug: false`.
    let hotplug_by_default = plan.preset == "hotplug-ready";
    for d in &plan.devices {
        let hotplug = d.get("hotplug").and_then(Value::as_bool);
        if hotplug != Some(true) && !(hotplug_by_default && hotplug.is_none()) {
            continue;
        }
        let Some((bus, _, _)) = pci_addr(d) else {
            continue;
        };
        let id = str_of(d, "id");
        tried += 1;
        if let Err(e) = qmp.execute("device_del", json!({"id": id})) {
            failures.push(format!(
                "[{spec}] device {} {id}: planned hotpluggable on {} ({}), but QEMU refuses to unplug it: {e}",
                str_of(d, "kind"),
                bus_name(bus),
                group_of(bus)
            ));
        }
    }

    let mut n = 0;
    let mut try_add = |qmp: &mut Qmp, bus: &str, slot: u64| -> Result<(), String> {
        n += 1;
        qmp.execute(
            "device_add",
            json!({"driver": "virtio-rng-pci", "id": format!("devaddr-hp{n}"),
                   "bus": bus, "addr": format!("{slot:#x}")}),
        )
        .map(|_| ())
    };
    // free.usb_ports: that many more USB devices fit on the planned USB controllers.
    if let Some(claim) = plan.free.get("usb_ports").and_then(Value::as_u64) {
        for k in 0..claim {
            let id = format!("devaddr-usb{k}");
            tried += 1;
            if let Err(e) = qmp.execute("device_add", json!({"driver": "usb-kbd", "id": id})) {
                failures.push(format!(
                    "[{spec}] free.usb_ports = {claim}, but hot-adding USB device {} of {claim} failed: {e}",
                    k + 1
                ));
                break;
            }
        }
    }
    for (key, pcie) in [("hotplug_pcie_ports", true), ("hotplug_pci_slots", false)] {
        let Some(claims) = plan.free.get(key).and_then(Value::as_object) else {
            continue;
        };
        // group -> (accepted, errors)
        let mut accepted: BTreeMap<String, (u64, Vec<String>)> = BTreeMap::new();
        for (&index, b) in &buses {
            let model = &b.model;
            let group = group_of(index);
            if !claims.contains_key(&group) {
                continue;
            }
            let is_port = model == "pcie-root-port" || model == "pcie-switch-downstream-port";
            let conventional = matches!(
                model.as_str(),
                "pci-root" | "pci-bridge" | "pci-expander-bus" | "pcie-to-pci-bridge"
            );
            let slots: Vec<u64> = if pcie && is_port && b.hotplug != Some(false) {
                if used.contains_key(&index) {
                    continue;
                }
                vec![0]
            } else if !pcie && conventional {
                (0..32)
                    .filter(|s| !used.get(&index).is_some_and(|u| u.contains(s)))
                    .collect()
            } else {
                continue;
            };
            let entry = accepted.entry(group).or_default();
            let name = bus_name(index);
            for slot in slots {
                tried += 1;
                match try_add(qmp, &name, slot) {
                    Ok(()) => entry.0 += 1,
                    Err(e) => {
                        let whole_bus = e.contains("does not support hotplugging");
                        entry.1.push(format!("{name} slot {slot:#x}: {e}"));
                        if whole_bus {
                            break;
                        }
                    }
                }
            }
        }
        for (group, claim) in claims {
            let claim = claim.as_u64().unwrap_or(0);
            let (ok, errors) = accepted.remove(group).unwrap_or_default();
            if ok < claim {
                let mut errors = errors;
                errors.dedup_by(|a, b| a.split(": ").nth(1) == b.split(": ").nth(1));
                errors.truncate(4);
                failures.push(format!(
                    "[{spec}] free.{key}.{group} = {claim}, but QEMU accepted a hot-added device in only {ok} place(s) of that group; errors: {errors:?}"
                ));
            }
        }
    }
    tried
}

/// Run `check` on every spec file, print one line per spec, and fail with every finding.
/// `check` returns the summary shown after the spec name ("ok"-line details).
fn run_specs(
    test: &str,
    aarch64: bool,
    ok_word: &str,
    mut check: impl FnMut(&Plan, &mut Vec<String>) -> String,
) {
    let start = Instant::now();
    let mut failures = Vec::new();
    for path in spec_files(aarch64) {
        let t = Instant::now();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let plan = match load_plan(&path) {
            Ok(p) => p,
            Err(e) => {
                failures.push(format!("[{name}] {e}"));
                continue;
            }
        };
        let before = failures.len();
        let summary = check(&plan, &mut failures);
        let verdict = verdict(&failures, before, ok_word);
        eprintln!(
            "qemu_real::{test}: {name} ({}, {} PCI functions{summary}): {verdict} in {:.1} s",
            plan.machine,
            plan.pci.len(),
            t.elapsed().as_secs_f64()
        );
    }
    eprintln!(
        "qemu_real::{test}: done in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    assert_no_failures(&failures);
}

/// `ok_word` when no failure came after the first `before`, else `FAILED`.
fn verdict<'a>(failures: &[String], before: usize, ok_word: &'a str) -> &'a str {
    if failures.len() == before {
        ok_word
    } else {
        "FAILED"
    }
}

/// Fails with every finding, counted.
fn assert_no_failures(failures: &[String]) {
    assert!(
        failures.is_empty(),
        "{} failure(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn run_paused_checks(bin: &Path, aarch64: bool, test: &str) {
    run_specs(test, aarch64, "ok", |plan, failures| {
        plan.check_args(failures);
        let hotplug_ops = check_paused(bin, plan, failures);
        format!(
            ", {} USB/drive devices, {hotplug_ops} hotplug operations checked",
            plan.attached.len()
        )
    });
}

// ---------------------------------------------------------------------------------------
// Boot check: SeaBIOS enumeration via query-pci

/// One function as the guest sees it.
#[derive(Debug, Clone)]
struct Seen {
    qdev_id: String,
    bus: i64,
    slot: i64,
    function: i64,
    /// BARs with no address assigned: (bar, type).
    unassigned: Vec<(i64, String)>,
    /// Secondary bus number when the function is a bridge.
    secondary: Option<i64>,
}

fn collect_seen(devices: &Value, out: &mut Vec<Seen>) {
    for d in devices.as_array().into_iter().flatten() {
        let unassigned = d
            .get("regions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            // BAR 6 is the expansion ROM: SeaBIOS programs it with the enable bit clear
            // (QEMU then reports address -1), so only BARs 0-5 are checked.
            .filter(|r| r.get("bar").and_then(Value::as_i64).is_some_and(|b| b < 6))
            .filter(|r| r.get("address").and_then(Value::as_i64).unwrap_or(-1) == -1)
            .map(|r| {
                (
                    r.get("bar").and_then(Value::as_i64).unwrap_or(-1),
                    str_of(r, "type").to_string(),
                )
            })
            .collect();
        let bridge = d.get("pci_bridge");
        out.push(Seen {
            qdev_id: str_of(d, "qdev_id").to_string(),
            bus: d.get("bus").and_then(Value::as_i64).unwrap_or(-1),
            slot: d.get("slot").and_then(Value::as_i64).unwrap_or(-1),
            function: d.get("function").and_then(Value::as_i64).unwrap_or(-1),
            unassigned,
            secondary: bridge
                .and_then(|b| b.get("bus"))
                .and_then(|b| b.get("secondary"))
                .and_then(Value::as_i64),
        });
        if let Some(b) = bridge {
            if let Some(devs) = b.get("devices") {
                collect_seen(devs, out);
            }
        }
    }
}

fn query_pci(qmp: &mut Qmp) -> Result<Vec<Seen>, String> {
    let buses = qmp.execute("query-pci", json!({}))?;
    let mut out = Vec::new();
    for b in buses.as_array().into_iter().flatten() {
        if let Some(devs) = b.get("devices") {
            collect_seen(devs, &mut out);
        }
    }
    Ok(out)
}

/// Guest bus number of plan bus `index` as the firmware numbered it.
fn guest_bus(plan: &Plan, seen: &[Seen], index: u64) -> Result<i64, String> {
    if index == 0 {
        return Ok(0);
    }
    let Some((id, model, bus_nr)) = plan.pci_controllers.get(&index) else {
        return Err(format!("plan has no PCI controller with index {index}"));
    };
    // A bridge (and the internal pci-bridge of an i440fx pxb, which has the pxb's id).
    let bridges: Vec<&Seen> = seen
        .iter()
        .filter(|s| &s.qdev_id == id && s.secondary.is_some())
        .collect();
    if let [b] = bridges.as_slice() {
        let n = b.secondary.unwrap();
        return if n > 0 {
            Ok(n)
        } else {
            Err(format!(
                "{id} ({model}) has no secondary bus number assigned"
            ))
        };
    }
    if bridges.len() > 1 {
        return Err(format!(
            "{id} ({model}) appears as {} bridges",
            bridges.len()
        ));
    }
    // pxb-pcie: its root bus has the number bus_nr.
    match bus_nr {
        Some(n) => Ok(*n as i64),
        None => Err(format!(
            "{id} ({model}) is not visible as a bridge and has no bus_nr"
        )),
    }
}

/// Checks one query-pci snapshot; returns the failures (empty = all enumerated).
fn enumeration_gaps(plan: &Plan, seen: &[Seen]) -> Vec<String> {
    let spec = &plan.spec;
    let mut out = Vec::new();
    for item in &plan.pci {
        let label = format!("[{spec}] {} {}", item.what, item.id);
        let occ: Vec<&Seen> = seen.iter().filter(|s| s.qdev_id == item.id).collect();
        if occ.is_empty() {
            out.push(format!("{label}: not enumerated (absent from query-pci)"));
            continue;
        }
        let want_bus = match guest_bus(plan, seen, item.bus) {
            Ok(n) => n,
            Err(e) => {
                out.push(format!(
                    "{label}: cannot find the guest bus of plan bus {}: {e}",
                    item.bus
                ));
                continue;
            }
        };
        let Some(s) = occ.iter().find(|s| s.bus == want_bus) else {
            let at: Vec<String> = occ
                .iter()
                .map(|s| format!("{:02x}:{:02x}.{}", s.bus, s.slot, s.function))
                .collect();
            out.push(format!(
                "{label}: expected on guest bus {want_bus:#04x} (plan bus {}), enumerated at {at:?}",
                item.bus
            ));
            continue;
        };
        if (s.slot, s.function) != (item.slot as i64, item.function as i64) {
            out.push(format!(
                "{label}: guest sees slot/function {:#x}.{:#x}, plan says {:#x}.{:#x}",
                s.slot, s.function, item.slot, item.function
            ));
        }
        if !s.unassigned.is_empty() {
            out.push(format!(
                "{label}: firmware left BARs unassigned (bar, type): {:?}",
                s.unassigned
            ));
        }
        if let Some(sec) = s.secondary {
            if sec <= 0 {
                out.push(format!(
                    "{label}: bridge has no secondary bus number assigned"
                ));
            }
        }
    }
    out
}

fn qmp_seen(qmp: &mut Qmp) -> Vec<Seen> {
    query_pci(qmp).unwrap_or_default()
}

/// The bus numbers `--format tree` shows are the ones the firmware assigned.
fn check_tree_bus_numbers(plan: &Plan, seen: &[Seen], failures: &mut Vec<String>) {
    let spec = &plan.spec;
    if seen.is_empty() {
        failures.push(format!("[{spec}] query-pci failed after enumeration"));
        return;
    }
    for (&index, (id, model, _)) in &plan.pci_controllers {
        if index == 0 {
            continue;
        }
        let firmware = guest_bus(plan, seen, index);
        let shown = plan.tree_buses.get(id).copied();
        if firmware.as_ref().ok() != shown.as_ref() {
            failures.push(format!(
                "[{spec}] {id} ({model}): --format tree shows bus {shown:x?}, the firmware \
                 numbered it {firmware:x?}"
            ));
        }
    }
}

fn check_boot(bin: &Path, plan: &Plan, failures: &mut Vec<String>) {
    // SeaBIOS under TCG assigns BARs at some 25 functions per second; OVMF and AAVMF
    // take 10-40 s to reach their boot manager on a shared 2-core machine. The loop ends
    // as soon as everything is enumerated or the firmware is past PCI setup, so the
    // deadline only bounds a firmware that never gets there.
    let uefi = plan.args.iter().any(|a| a.starts_with("if=pflash"));
    let base = if uefi { 300 } else { 20 };
    let wait = Duration::from_secs(base + plan.pci.len() as u64 / 10);
    check_boot_within(bin, plan, failures, wait);
}

/// [`check_boot`] asserting every planned device is resourced: how long the boot took.
fn boot_fully(bin: &Path, plan: &Plan) -> Duration {
    let mut failures = Vec::new();
    let t = Instant::now();
    check_boot(bin, plan, &mut failures);
    let took = t.elapsed();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    took
}

/// [`check_boot`] giving the firmware at most `wait` to enumerate.
fn check_boot_within(bin: &Path, plan: &Plan, failures: &mut Vec<String>, wait: Duration) {
    let spec = &plan.spec;
    let mut qemu = Qemu::start(bin, plan, false, true);
    let Some(mut qmp) = qemu.qmp_or_fail(spec, failures) else {
        return;
    };
    let deadline = Instant::now() + wait;
    let mut last_count = usize::MAX;
    let mut stable_since = Instant::now();
    let gaps = loop {
        let seen = match query_pci(&mut qmp) {
            Ok(s) => s,
            Err(e) => {
                let why = qemu.exited().unwrap_or_default();
                failures.push(format!("[{spec}] query-pci failed: {e} {why}"));
                return;
            }
        };
        let gaps = enumeration_gaps(plan, &seen);
        if gaps.is_empty() {
            break gaps;
        }
        let count = seen.iter().filter(|s| s.unassigned.is_empty()).count();
        if count != last_count {
            last_count = count;
            stable_since = Instant::now();
        }
        let log = qemu.firmware_log_excerpt();
        // "PCI: out of I/O address space" (or 32-bit memory): SeaBIOS stops assigning.
        let gave_up = log.contains("PCI: out of");
        // SeaBIOS has moved past PCI setup when it prints its boot menu / boot attempts.
        let past_pci = std::fs::read_to_string(qemu.debug_log.as_ref().unwrap())
            .map(|t| {
                t.contains("Searching bootorder")
                    || t.contains("Booting from")
                    || t.contains("No bootable device")
                    || t.contains("BdsDxe:")
            })
            .unwrap_or(false);
        let stable_for = stable_since.elapsed();
        if Instant::now() > deadline || gave_up || (past_pci && stable_for > Duration::from_secs(2))
        {
            break gaps;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    if gaps.is_empty() {
        check_tree_bus_numbers(plan, &qmp_seen(&mut qmp), failures);
        check_placement_enumerated(&mut qmp, plan, failures);
    }
    if !gaps.is_empty() {
        let bad: std::collections::BTreeSet<&str> = plan
            .pci
            .iter()
            .map(|i| i.id.as_str())
            .filter(|id| gaps.iter().any(|g| g.contains(&format!(" {id}: "))))
            .collect();
        failures.push(format!(
            "[{spec}] the firmware did not enumerate {} of {} planned PCI functions as planned:",
            bad.len(),
            plan.pci.len()
        ));
        const SHOWN: usize = 20;
        failures.extend(gaps.iter().take(SHOWN).map(|g| format!("  {g}")));
        if gaps.len() > SHOWN {
            failures.push(format!("  ... and {} more", gaps.len() - SHOWN));
        }
        failures.push(format!("  [{spec}] {}", qemu.firmware_log_excerpt()));
    }
}

fn run_boot_checks(bin: &Path, test: &str) {
    run_specs(test, false, "enumerated", |plan, failures| {
        check_boot(bin, plan, failures);
        String::new()
    });
}

// ---------------------------------------------------------------------------------------
// Placement constraints as QEMU built the guest

/// Each device's path as QEMU has it: its top (`root` for the root bus, else the id of the
/// expander whose bus is its root bus), then every bridge or port below that down to the
/// device's own bus.
type Chains = BTreeMap<String, Vec<String>>;

/// The placement constraints on `chains`: root devices directly on the root bus; apart
/// devices below different links (the first bridge below their top, or none); together
/// devices below one common expander, switch or bridge (a controller whose bus has
/// several slots), the root bus excepted.
fn placement_failures(plan: &Plan, chains: &Chains) -> Vec<String> {
    const FAN_OUT: &[&str] = &[
        "pcie-switch-upstream-port",
        "pci-bridge",
        "pcie-to-pci-bridge",
        "dmi-to-pci-bridge",
        "pcie-expander-bus",
        "pci-expander-bus",
    ];
    let spec = &plan.spec;
    let model: BTreeMap<&str, &str> = plan
        .pci_controllers
        .values()
        .map(|(id, m, _)| (id.as_str(), m.as_str()))
        .collect();
    let mut out = Vec::new();
    let chain = |id: &str| chains.get(id).cloned();
    for id in &plan.placement.root {
        match chain(id) {
            Some(c) if c == ["root"] => {}
            c => out.push(format!(
                "[{spec}] {id} has placement: root, QEMU has it below {c:?}"
            )),
        }
    }
    for set in &plan.placement.apart {
        let mut links: BTreeMap<String, &str> = BTreeMap::new();
        for id in set {
            let Some(c) = chain(id) else {
                out.push(format!("[{spec}] apart {set:?}: {id} not seen"));
                continue;
            };
            if let Some(link) = c.get(1) {
                if let Some(other) = links.insert(link.clone(), id) {
                    out.push(format!(
                        "[{spec}] apart {set:?}: {other} and {id} share {link}"
                    ));
                }
            }
        }
    }
    for set in &plan.placement.together {
        let cs: Vec<Vec<String>> = set.iter().filter_map(|id| chain(id)).collect();
        let shared = cs.len() == set.len()
            && cs[0].iter().any(|b| {
                b != "root"
                    && model.get(b.as_str()).is_some_and(|m| FAN_OUT.contains(m))
                    && cs.iter().all(|c| c.contains(b))
            });
        if !shared {
            out.push(format!(
                "[{spec}] together {set:?}: no common switch, bridge or expander in {cs:?}"
            ));
        }
    }
    out
}

/// The chains of every planned item from QOM (`parent_bus` of each device and controller,
/// on the paused machine): a bus is named by the controller that provides it.
fn qom_chains(qmp: &mut Qmp, plan: &Plan) -> Result<Chains, String> {
    let mut parent: BTreeMap<String, String> = BTreeMap::new();
    for item in &plan.pci {
        let path = format!("/machine/peripheral/{}", item.id);
        let v = qmp.qom_get(&path, "parent_bus")?;
        let bus = v
            .as_str()
            .unwrap_or_default()
            .rsplit('/')
            .next()
            .unwrap_or_default();
        parent.insert(item.id.clone(), bus.to_string());
    }
    let expander = |id: &str| {
        plan.pci_controllers
            .values()
            .any(|(c, m, _)| c == id && m.ends_with("expander-bus"))
    };
    let mut chains = Chains::new();
    for item in &plan.pci {
        let mut up = Vec::new();
        let mut cur = parent[&item.id].clone();
        while cur != plan.root_bus_name && !expander(&cur) && up.len() < 64 {
            up.push(cur.clone());
            cur = parent
                .get(&cur)
                .cloned()
                .unwrap_or_else(|| plan.root_bus_name.clone());
        }
        up.push(if cur == plan.root_bus_name {
            "root".into()
        } else {
            cur
        });
        up.reverse();
        chains.insert(item.id.clone(), up);
    }
    Ok(chains)
}

/// The chains of every function the firmware enumerated, from `query-pci`: each root bus
/// (bus 0, or an expander's, found by its `bus_nr`) and the bridges nested below it.
fn query_pci_chains(plan: &Plan, buses: &Value) -> Chains {
    fn walk(devices: &Value, above: &[String], out: &mut Chains) {
        for d in devices.as_array().into_iter().flatten() {
            let id = str_of(d, "qdev_id").to_string();
            if !id.is_empty() {
                out.insert(id.clone(), above.to_vec());
            }
            if let Some(below) = d.get("pci_bridge").and_then(|b| b.get("devices")) {
                let mut next = above.to_vec();
                next.push(id);
                walk(below, &next, out);
            }
        }
    }
    let mut out = Chains::new();
    for b in buses.as_array().into_iter().flatten() {
        let n = b.get("bus").and_then(Value::as_u64).unwrap_or(0);
        let top = if n == 0 {
            "root".to_string()
        } else {
            plan.pci_controllers
                .values()
                .find(|(_, _, nr)| *nr == Some(n))
                .map_or(format!("bus {n}"), |(id, _, _)| id.clone())
        };
        if let Some(devs) = b.get("devices") {
            walk(devs, &[top], &mut out);
        }
    }
    out
}

/// QEMU's answer for the placement constraints on the paused machine (both
/// architectures): the tree it built from the planned arguments, read back over QMP.
fn check_placement_paused(qmp: &mut Qmp, plan: &Plan, failures: &mut Vec<String>) {
    if plan.placement.is_empty() {
        return;
    }
    match qom_chains(qmp, plan) {
        Ok(chains) => failures.extend(placement_failures(plan, &chains)),
        Err(e) => failures.push(format!("[{}] qom-get parent_bus failed: {e}", plan.spec)),
    }
}

/// The firmware's answer (SeaBIOS on x86, UEFI on aarch64): after it enumerated the
/// buses, `query-pci` shows every function below its bridges; the constraints hold there.
fn check_placement_enumerated(qmp: &mut Qmp, plan: &Plan, failures: &mut Vec<String>) {
    if plan.placement.is_empty() {
        return;
    }
    match qmp.execute("query-pci", json!({})) {
        Ok(buses) => failures.extend(placement_failures(plan, &query_pci_chains(plan, &buses))),
        Err(e) => failures.push(format!("[{}] query-pci failed: {e}", plan.spec)),
    }
}

/// The aarch64 UEFI firmware (AAVMF / EDK2), if installed.
fn aarch64_firmware() -> Option<PathBuf> {
    [
        "/usr/share/AAVMF/AAVMF_CODE.fd",
        "/usr/share/qemu-efi-aarch64/QEMU_EFI.fd",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
}

/// Boot an aarch64 spec with placement constraints in UEFI, wait until the firmware
/// has enumerated every planned function, and check the constraints with `query-pci`.
fn check_uefi_placement(bin: &Path, firmware: &Path, plan: &Plan, failures: &mut Vec<String>) {
    let spec = &plan.spec;
    // A plan of a UEFI machine carries the firmware's flash drives already.
    let extra: Vec<String> = if plan.args.iter().any(|a| a.starts_with("if=pflash")) {
        Vec::new()
    } else {
        vec!["-bios".into(), firmware.display().to_string()]
    };
    let mut qemu = Qemu::start_with(bin, plan, false, false, &extra);
    let Some(mut qmp) = qemu.qmp_or_fail(spec, failures) else {
        return;
    };
    let wanted: Vec<&str> = plan.pci.iter().map(|i| i.id.as_str()).collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let seen = match qmp.execute("query-pci", json!({})) {
            Ok(b) => query_pci_chains(plan, &b),
            Err(e) => {
                failures.push(format!("[{spec}] query-pci failed: {e}"));
                return;
            }
        };
        let missing: Vec<&&str> = wanted
            .iter()
            .filter(|id| !seen.contains_key(**id))
            .collect();
        if missing.is_empty() {
            break;
        }
        if Instant::now() > deadline {
            failures.push(format!(
                "[{spec}] UEFI did not enumerate {missing:?} in 120 s"
            ));
            return;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    check_placement_enumerated(&mut qmp, plan, failures);
}

// ---------------------------------------------------------------------------------------
// Tests

#[test]
fn x86_64_qemu_accepts_planned_topology() {
    let test = "x86_64_qemu_accepts_planned_topology";
    if let Some(bin) = qemu_or_skip(X86, test) {
        run_paused_checks(&bin, false, test);
    }
}

#[test]
fn x86_64_seabios_enumerates_planned_topology() {
    let test = "x86_64_seabios_enumerates_planned_topology";
    if let Some(bin) = qemu_or_skip(X86, test) {
        run_boot_checks(&bin, test);
    }
}

/// aarch64 specs with placement constraints, booted in UEFI: the firmware enumerates
/// them, and `query-pci` shows the constraints met.
#[test]
fn aarch64_uefi_enumerates_placement_constraints() {
    let test = "aarch64_uefi_enumerates_placement_constraints";
    let Some(bin) = qemu_or_skip(ARM, test) else {
        return;
    };
    let Some(firmware) = aarch64_firmware() else {
        let why = format!(
            "{test}: the aarch64 UEFI firmware is not installed (apt-get install qemu-efi-aarch64)"
        );
        if in_ci() {
            panic!("CI must run this test, but {why}");
        }
        eprintln!("SKIPPED: {why}");
        return;
    };
    run_specs(test, true, "enumerated", |plan, failures| {
        if !plan.placement.is_empty() {
            check_uefi_placement(&bin, &firmware, plan, failures);
        }
        String::new()
    });
}

#[test]
fn aarch64_qemu_accepts_planned_topology() {
    let test = "aarch64_qemu_accepts_planned_topology";
    if let Some(bin) = qemu_or_skip(ARM, test) {
        run_paused_checks(&bin, true, test);
    }
}

// ---------------------------------------------------------------------------------------
// Live hotplug through QMP: `devaddr hotplug --format qemu`

/// For the lifecycle specs: start the planned guest, ask `capacity --live` how many NICs
/// fit, and run the QMP commands of `devaddr hotplug --format qemu` for exactly that many
/// (NICs and disks): QEMU accepts every `netdev_add`/`blockdev-add`/`device_add`, and each
/// new device sits on the planned bus at the planned devfn.
#[test]
fn x86_64_qemu_accepts_hotplug_commands() {
    let test = "x86_64_qemu_accepts_hotplug_commands";
    let Some(bin) = qemu_or_skip(X86, test) else {
        return;
    };
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lifecycle");
    let mut failures = Vec::new();
    for name in ["q35-reserve.yaml", "q35-numa.yaml", "pc-basic.yaml"] {
        let spec = dir.join(name);
        let plan = load_plan(&spec).unwrap_or_else(|e| panic!("{name}: {e}"));
        let plan_file = unique_path(name.trim_end_matches(".yaml"), "plan.yaml");
        std::fs::write(&plan_file, devaddr(&spec, "yaml").unwrap()).unwrap();
        let p = plan_file.to_str().unwrap();
        let rows: Value = serde_json::from_str(&devaddr_cmd(&[
            "capacity",
            p,
            "--kind",
            "virtio-net",
            "--format",
            "json",
        ]))
        .unwrap();
        let mut add = String::new();
        let mut n = 0;
        for r in rows.as_array().unwrap() {
            for k in 0..r["live"].as_u64().unwrap() {
                let kind = if k % 2 == 0 {
                    "virtio-net"
                } else {
                    "virtio-blk"
                };
                let node = r["node"]
                    .as_u64()
                    .map_or(String::new(), |x| format!(", numa_node: {x}"));
                add.push_str(&format!("- {{id: hq{n}, kind: {kind}{node}}}\n"));
                n += 1;
            }
        }
        let add_file = unique_path(name.trim_end_matches(".yaml"), "add.yaml");
        std::fs::write(&add_file, &add).unwrap();
        let a = add_file.to_str().unwrap();
        let cmds = devaddr_cmd(&["hotplug", p, "--add", a, "--format", "qemu"]);
        let after: Value = serde_json::from_str(&devaddr_cmd(&[
            "hotplug", p, "--add", a, "--format", "json",
        ]))
        .unwrap();
        let mut qemu = Qemu::start(&bin, &plan, false, false);
        let mut qmp = match qemu.qmp() {
            Ok(q) => q,
            Err(e) => {
                failures.push(format!("[{name}] {e}"));
                continue;
            }
        };
        for line in cmds.lines() {
            let c: Value = serde_json::from_str(line).unwrap();
            if let Err(e) = qmp.execute(c["execute"].as_str().unwrap(), c["arguments"].clone()) {
                failures.push(format!("[{name}] {line}: {e}"));
            }
        }
        for d in after["devices"].as_array().unwrap() {
            let id = str_of(d, "id");
            if !id.starts_with("hq") {
                continue;
            }
            let Some((_, slot, func)) = pci_addr(d) else {
                failures.push(format!("[{name}] {id}: no PCI address"));
                continue;
            };
            match qmp.qom_get(&format!("/machine/peripheral/{id}"), "addr") {
                Ok(v) if v.as_i64() == Some((slot * 8 + func) as i64) => {}
                other => failures.push(format!(
                    "[{name}] {id}: devfn {other:?}, planned {slot}.{func}"
                )),
            }
        }
        let _ = std::fs::remove_file(&plan_file);
        let _ = std::fs::remove_file(&add_file);
        eprintln!("qemu_real::{test}: {name}: {n} devices hot-added through QMP");
        assert!(n > 0, "{name}: capacity predicted nothing");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ---------------------------------------------------------------------------------------
// UEFI: OVMF (q35, pc) and AAVMF (aarch64 virt), `policy.firmware`

fn firmware_specs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/firmware-specs")
}

/// The UEFI flash images a plan's `--format qemu` names must exist (Debian's `ovmf` and
/// `qemu-efi-aarch64`); `false` after printing a SKIPPED line, a panic under CI.
fn firmware_files_or_skip(plan: &Plan, test: &str) -> bool {
    let files: Vec<&str> = plan
        .args
        .iter()
        .filter(|a| a.starts_with("if=pflash"))
        .filter_map(|a| a.split(",file=").nth(1))
        .collect();
    assert!(!files.is_empty(), "[{}] boots no UEFI flash", plan.spec);
    if let Some(missing) = files.iter().find(|f| !Path::new(f).is_file()) {
        if in_ci() {
            panic!("qemu_real::{test}: {missing} not found, and CI is set (install ovmf and qemu-efi-aarch64)");
        }
        eprintln!("SKIPPED qemu_real::{test}: firmware image {missing} not found");
        return false;
    }
    true
}

/// The QEMU binary and the plan of a UEFI spec, or `None` after a SKIPPED line when QEMU
/// or the firmware images are missing (a panic under CI).
fn uefi_plan_or_skip(qemu: &str, spec: &Path, test: &str) -> Option<(PathBuf, Plan)> {
    let bin = qemu_or_skip(qemu, test)?;
    let plan = load_plan(spec).unwrap_or_else(|e| panic!("{}: {e}", spec.display()));
    firmware_files_or_skip(&plan, test).then_some((bin, plan))
}

/// What `devaddr plan` says refusing `over` (a spec in `dir` planned for SeaBIOS, one
/// over a UEFI limit) under `firmware: uefi`, after checking it exits 1.
fn refused_as_uefi(dir: &Path, over: &str) -> String {
    let over_text = std::fs::read_to_string(dir.join(over)).unwrap();
    assert!(
        over_text.contains("firmware: bios"),
        "{over}: planned for SeaBIOS"
    );
    let as_uefi = over_text.replace("firmware: bios", "firmware: uefi");
    let o = common::run(&["plan", "-"], Some(as_uefi.as_bytes()));
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(1), "{over} as uefi: {err}");
    err
}

/// Readies `over` (a topology `devaddr plan` refuses under UEFI, planned for SeaBIOS) to
/// boot under OVMF anyway: the UEFI flash drives of `uefi`'s arguments and, when given,
/// the 64-bit aperture (MiB) to ask OVMF for with `X-PciMmio64Mb`.
fn under_uefi_of(over: &mut Plan, uefi: &Plan, mmio64_mb: Option<u64>) {
    let drives: Vec<String> = uefi
        .args
        .windows(2)
        .filter(|w| w[0] == "-drive" && w[1].starts_with("if=pflash"))
        .flat_map(|w| w.iter().cloned())
        .collect();
    over.args.extend(drives);
    if let Some(mb) = mmio64_mb {
        over.args.extend([
            "-fw_cfg".to_string(),
            format!("name=opt/ovmf/X-PciMmio64Mb,string={mb}"),
        ]);
    }
}

/// The I/O-window boundary of one machine under UEFI: the plan at the firmware's budget
/// (`firmware: uefi`) boots with every device resourced; one window more is refused by
/// `devaddr plan` (exit 1 naming the firmware and the fix), and booting that topology
/// anyway (planned with `firmware: bios`, booted with the same OVMF flash) leaves a device
/// without resources.
fn ovmf_io_boundary(bin: &Path, at_limit: &str, over: &str, test: &str) {
    ovmf_io_boundary_as(bin, at_limit, over, test, |_| {}, false);
}

/// [`ovmf_io_boundary`], the topology one over readied by `as_planned` (to boot it as
/// devaddr planned it for UEFI before it counted the window that blocks it). `stops`:
/// OVMF is expected to give the whole enumeration up there (NUMA expanders), printing
/// nothing: it gets four times as long as the boot at the limit took (at least 20 s).
fn ovmf_io_boundary_as(
    bin: &Path,
    at_limit: &str,
    over: &str,
    test: &str,
    as_planned: impl Fn(&mut Plan),
    stops: bool,
) {
    let dir = firmware_specs_dir();
    let plan = load_plan(&dir.join(at_limit)).unwrap_or_else(|e| panic!("{at_limit}: {e}"));
    if !firmware_files_or_skip(&plan, test) {
        return;
    }
    let took = boot_fully(bin, &plan);
    eprintln!(
        "qemu_real::{test}: {at_limit}: {} PCI functions enumerated under OVMF in {:.1} s",
        plan.pci.len(),
        took.as_secs_f64()
    );

    // One more: refused for UEFI, naming the firmware's budget and the fix.
    let err = refused_as_uefi(&dir, over);
    assert!(
        err.contains("I/O") && err.contains("OVMF") && err.contains("fix:"),
        "{over} as uefi: the refusal names the firmware's I/O windows and a fix: {err}"
    );

    // And the firmware really cannot: the same topology under OVMF leaves a device bare.
    let mut plan_over = load_plan(&dir.join(over)).unwrap_or_else(|e| panic!("{over}: {e}"));
    under_uefi_of(&mut plan_over, &plan, None);
    as_planned(&mut plan_over);
    let mut over_failures = Vec::new();
    let t = Instant::now();
    if stops {
        let wait = (took * 4).max(Duration::from_secs(20));
        check_boot_within(bin, &plan_over, &mut over_failures, wait);
    } else {
        check_boot(bin, &plan_over, &mut over_failures);
    }
    let bare = over_failures
        .iter()
        .any(|f| f.contains("unassigned") || f.contains("not enumerated"));
    assert!(
        bare,
        "{over}: one I/O window over OVMF's budget, yet every device was resourced: {over_failures:?}"
    );
    eprintln!(
        "qemu_real::{test}: {over}: under OVMF a device is left without resources, as expected ({:.1} s)",
        t.elapsed().as_secs_f64()
    );
}

#[test]
fn x86_64_ovmf_q35_io_window_boundary() {
    let test = "x86_64_ovmf_q35_io_window_boundary";
    if let Some(bin) = qemu_or_skip(X86, test) {
        ovmf_io_boundary(&bin, "q35-uefi-io-9.yaml", "q35-io-10.yaml", test);
    }
}

/// The I/O budget counts the window OVMF gives a `pcie-to-pci-bridge` whatever is below
/// it (QEMU 7.2 has no `io-reserve` on it): on 3 NUMA nodes an i6300esb (no I/O BAR)
/// behind one beside 8 e1000e boots with every BAR assigned; beside 9 it is refused, and
/// that topology as devaddr planned it before it counted the bridge (the root port above
/// the bridge with `io-reserve=0`) leaves the devices without resources under OVMF (with
/// NUMA expanders OVMF does not drop the bridge's padding: it gives the enumeration up).
/// Without expanders OVMF drops the padding when I/O runs out (measured: the same 9 +
/// bridge on the root complex boots), so the count is conservative there.
#[test]
fn x86_64_ovmf_q35_io_window_boundary_with_a_padded_bridge() {
    let test = "x86_64_ovmf_q35_io_window_boundary_with_a_padded_bridge";
    let Some(bin) = qemu_or_skip(X86, test) else {
        return;
    };
    ovmf_io_boundary_as(
        &bin,
        "q35-uefi-io-bridge-8.yaml",
        "q35-io-bridge-9.yaml",
        test,
        |plan| {
            let bridge_bus = plan
                .args
                .iter()
                .find(|a| a.starts_with("pcie-pci-bridge,"))
                .and_then(|a| a.split(',').find_map(|p| p.strip_prefix("bus=")))
                .map(|b| format!("id={b}"))
                .expect("a pcie-pci-bridge below a root port");
            let port = plan
                .args
                .iter_mut()
                .find(|a| a.starts_with("pcie-root-port,") && a.split(',').any(|p| p == bridge_bus))
                .expect("the root port above the bridge");
            port.push_str(",io-reserve=0");
        },
        true,
    );
}

#[test]
fn x86_64_ovmf_pc_io_window_boundary() {
    let test = "x86_64_ovmf_pc_io_window_boundary";
    if let Some(bin) = qemu_or_skip(X86, test) {
        ovmf_io_boundary(&bin, "pc-uefi-io-3.yaml", "pc-io-4.yaml", test);
    }
}

/// OVMF's I/O padding of hotplug ports across NUMA expanders: at the 9 I/O windows, the
/// virtio-blk's root port (no I/O BAR) is planned with `io-reserve=0` and the guest boots
/// with every device resourced; the same topology with the port left to OVMF's default
/// padding stops OVMF's enumeration (nothing resourced), which is why the plan says so.
/// With fewer NICs only as many ports give it up as the budget is short of, and the
/// padded rest fits.
#[test]
fn x86_64_ovmf_io_padding_given_up_across_numa_expanders() {
    let test = "x86_64_ovmf_io_padding_given_up_across_numa_expanders";
    let spec = firmware_specs_dir().join("q35-uefi-io-padding-numa3.yaml");
    let Some((bin, plan)) = uefi_plan_or_skip(X86, &spec, test) else {
        return;
    };
    let zeroed: Vec<&String> = plan
        .args
        .iter()
        .filter(|a| a.starts_with("pcie-root-port,") && a.ends_with(",io-reserve=0"))
        .collect();
    assert_eq!(
        zeroed.len(),
        1,
        "[{}] one port (the virtio-blk's) gives its I/O padding up: {zeroed:?}",
        plan.spec
    );
    let took = boot_fully(&bin, &plan);
    eprintln!(
        "qemu_real::{test}: {} PCI functions enumerated under OVMF in {:.1} s",
        plan.pci.len(),
        took.as_secs_f64()
    );

    // Without io-reserve=0 OVMF pads that port and the enumeration fails.
    let mut padded = load_plan(&spec).unwrap_or_else(|e| panic!("{}: {e}", spec.display()));
    for a in padded.args.iter_mut() {
        if a.starts_with("pcie-root-port,") {
            *a = a.replace(",io-reserve=0", "");
        }
    }
    // OVMF prints nothing when it gives the enumeration up: it gets ten times as long as
    // the planned boot took (at least 30 s) to enumerate. A slower machine slows both.
    let wait = (took * 10).max(Duration::from_secs(30));
    let mut padded_failures = Vec::new();
    check_boot_within(&bin, &padded, &mut padded_failures, wait);
    assert!(
        !padded_failures.is_empty(),
        "[{}] with OVMF's default I/O padding on every port the guest still enumerated fully",
        plan.spec
    );
    eprintln!(
        "qemu_real::{test}: with the padding kept, as expected: {}",
        padded_failures.first().map_or("", String::as_str)
    );

    // Below the budget only as many ports give the padding up as it is short of: 8 NICs
    // and 3 padded ports, two given up, the third keeps its window, and all boot.
    let partial = firmware_specs_dir().join("q35-uefi-io-padding-partial.yaml");
    let plan = load_plan(&partial).unwrap_or_else(|e| panic!("{}: {e}", partial.display()));
    let zeroed = plan
        .args
        .iter()
        .filter(|a| a.starts_with("pcie-root-port,") && a.ends_with(",io-reserve=0"))
        .count();
    assert_eq!(zeroed, 2, "[{}] {:?}", plan.spec, plan.args);
    let mut failures = Vec::new();
    check_boot(&bin, &plan, &mut failures);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// pc's empty hotplug pci-bridges under OVMF, which pads them with I/O (SHPC): at the
/// 3 I/O windows (3 pxb buses with an e1000 each), two empty bridges on the root bus and
/// one below each pxb boot with every device resourced as planned — without
/// `io-reserve` on them (OVMF drops the root bus's padding when I/O runs out, and a
/// bridge below a pxb shares its window), and with `io-reserve=0` on every bridge too,
/// so the plan need neither count those windows nor give the padding up.
#[test]
fn x86_64_ovmf_pc_padded_bridges_need_no_window() {
    let test = "x86_64_ovmf_pc_padded_bridges_need_no_window";
    let spec = firmware_specs_dir().join("pc-uefi-io-bridge-pad.yaml");
    let Some((bin, plan)) = uefi_plan_or_skip(X86, &spec, test) else {
        return;
    };
    let bridges = |p: &Plan| {
        p.args
            .iter()
            .filter(|a| a.starts_with("pci-bridge,"))
            .map(|a| (a.contains(",bus=pci.0,"), a.contains("io-reserve")))
            .collect::<Vec<_>>()
    };
    let planned = bridges(&plan);
    assert_eq!(
        (
            planned.iter().filter(|b| b.0).count(),
            planned.iter().filter(|b| !b.0).count(),
            planned.iter().filter(|b| b.1).count()
        ),
        (2, 3, 0),
        "[{}] two root-bus and three per-node bridges, no io-reserve: {:?}",
        plan.spec,
        plan.args
    );
    let took = boot_fully(&bin, &plan);
    let mut hinted = plan;
    for a in hinted.args.iter_mut() {
        if a.starts_with("pci-bridge,") {
            a.push_str(",io-reserve=0");
        }
    }
    let mut hinted_failures = Vec::new();
    check_boot(&bin, &hinted, &mut hinted_failures);
    assert!(hinted_failures.is_empty(), "{}", hinted_failures.join("\n"));
    eprintln!(
        "qemu_real::{test}: {} PCI functions enumerated under OVMF as planned ({:.1} s), and \
         with io-reserve=0 on the bridges",
        hinted.pci.len(),
        took.as_secs_f64()
    );
}

/// An aarch64 spec boots in AAVMF (virt boots UEFI only, so its `--format qemu` carries
/// the flash drives) with every planned device resourced and every bridge numbered, on
/// two NUMA nodes' expander buses. AAVMF enables decoding only for devices it has a driver
/// for, and QEMU reports the BARs of a device without decoding as unassigned: the spec
/// holds virtio devices only (`virt-basic.yaml`'s e1000 would read as unassigned).
#[test]
fn aarch64_aavmf_enumerates_planned_topology() {
    let test = "aarch64_aavmf_enumerates_planned_topology";
    let spec = specs_dir().join("virt-numa2.yaml");
    let Some((bin, plan)) = uefi_plan_or_skip(ARM, &spec, test) else {
        return;
    };
    let mut failures = Vec::new();
    let t = Instant::now();
    check_boot(&bin, &plan, &mut failures);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    eprintln!(
        "qemu_real::{test}: virt-numa2.yaml: {} PCI functions enumerated under AAVMF in {:.1} s",
        plan.pci.len(),
        t.elapsed().as_secs_f64()
    );
}

/// OVMF pads every hotplug port without a `pref64-reserve` hint with 1/256 of its 64-bit
/// aperture: a 128 GiB BAR beside one empty hotplug port needs more than the 128 GiB it
/// fills exactly. The plan asks 256 GiB and the BAR is assigned; asked for the BAR's
/// exact fill, OVMF leaves it bare.
#[test]
fn x86_64_ovmf_pads_hotplug_ports_in_the_64_bit_aperture() {
    let test = "x86_64_ovmf_pads_hotplug_ports_in_the_64_bit_aperture";
    let spec = "q35-uefi-bar64-exact-fill.yaml";
    let Some(bare) = padded_aperture_boundary(spec, test, 256 * 1024, 128 * 1024) else {
        return;
    };
    assert!(
        bare.iter().any(|f| f.contains("unassigned")),
        "in an aperture the BAR fills exactly OVMF's port padding should leave it bare: {bare:?}"
    );
    eprintln!("qemu_real::{test}: 128 GiB BAR assigned in 256 GiB, bare in 128 GiB");
}

/// `spec` (q35 or pc under UEFI) asks OVMF for `planned` MiB of 64-bit aperture, which
/// holds its BARs and OVMF's padding of hotplug bridges, and boots with every BAR
/// assigned; the failures of the same plan booted with `exact` MiB (what the BARs fill
/// without the padding) are returned. None after a SKIPPED line without QEMU or OVMF.
fn padded_aperture_boundary(
    spec: &str,
    test: &str,
    planned: u64,
    exact: u64,
) -> Option<Vec<String>> {
    let spec = firmware_specs_dir().join(spec);
    let (bin, plan) = uefi_plan_or_skip(X86, &spec, test)?;
    let asked = "name=opt/ovmf/X-PciMmio64Mb,string=";
    let mmio = plan
        .args
        .iter()
        .position(|a| a.starts_with(asked))
        .expect("the plan asks OVMF for its 64-bit aperture");
    assert_eq!(plan.args[mmio], format!("{asked}{planned}"));
    let took = boot_fully(&bin, &plan);
    let mut exact_plan = load_plan(&spec).unwrap();
    exact_plan.args[mmio] = format!("{asked}{exact}");
    // OVMF prints nothing when it stops: four times the planned boot (at least 20 s).
    let mut bare = Vec::new();
    let wait = (took * 4).max(Duration::from_secs(20));
    check_boot_within(&bin, &exact_plan, &mut bare, wait);
    Some(bare)
}

/// The 64-bit aperture's bound under OVMF is the firmware's address width, which 1 GiB
/// pages lift: OVMF 2022.11 takes its address width from the end of its aperture
/// (placed at a multiple of its own size above RAM) and maps more than 40 bits only with
/// 1 GiB pages, which `qemu64` lacks. With 41 physical address bits a 512 GiB aperture
/// boots with every BAR assigned, without the feature. Two 256 GiB BARs on two NUMA
/// nodes and an empty hotplug port need 1 TiB: at 41 bits `devaddr plan` asks for
/// `+pdpe1gb` and the plan boots with every BAR assigned; the same boot without the
/// feature enumerates nothing (so the feature is what lifts it); at the default 40 bits
/// the spec is refused naming phys_bits and the 1 GiB pages.
#[test]
fn x86_64_ovmf_aperture_bound_is_the_firmware_address_width() {
    let test = "x86_64_ovmf_aperture_bound_is_the_firmware_address_width";
    let dir = firmware_specs_dir();
    let Some((bin, plan)) = uefi_plan_or_skip(X86, &dir.join("q35-uefi-bar64-phys41.yaml"), test)
    else {
        return;
    };
    let asked = "name=opt/ovmf/X-PciMmio64Mb,string=";
    assert!(
        plan.args
            .iter()
            .any(|a| a == &format!("{asked}{}", 512 * 1024))
            && plan.args.iter().any(|a| a == "qemu64,phys-bits=41"),
        "[{}] asks 512 GiB at 41 bits without 1 GiB pages: {:?}",
        plan.spec,
        plan.args
    );
    let took = boot_fully(&bin, &plan);

    // One aperture more, at 41 bits too: planned with 1 GiB pages, and it boots.
    let wide = "q35-uefi-bar64-1t-pdpe1gb.yaml";
    let plan_wide = load_plan(&dir.join(wide)).unwrap_or_else(|e| panic!("{wide}: {e}"));
    let cpu = "qemu64,phys-bits=41,+pdpe1gb";
    assert!(
        plan_wide.args.iter().any(|a| a == cpu)
            && plan_wide
                .args
                .iter()
                .any(|a| a == &format!("{asked}{}", 1024 * 1024)),
        "{wide}: asks a 1 TiB aperture with 1 GiB pages: {:?}",
        plan_wide.args
    );
    let t = Instant::now();
    let mut with_1g = Vec::new();
    check_boot(&bin, &plan_wide, &mut with_1g);
    let took_wide = t.elapsed();
    assert!(
        with_1g.is_empty(),
        "{wide} with 1 GiB pages: {}",
        with_1g.join("\n")
    );
    // The plan without the feature: OVMF enumerates nothing. It prints nothing when it
    // stops: it gets four times as long as the planned boot took (at least 20 s).
    let mut stripped = plan_wide;
    for a in stripped.args.iter_mut() {
        if a == cpu {
            *a = "qemu64,phys-bits=41".into();
        }
    }
    let mut bare = Vec::new();
    check_boot_within(
        &bin,
        &stripped,
        &mut bare,
        (took_wide * 4).max(Duration::from_secs(20)),
    );
    assert!(
        !bare.is_empty(),
        "{wide}: a 1 TiB aperture on qemu64 without 1 GiB pages under OVMF, yet every \
         device was resourced"
    );

    // At the default 40 bits: refused, naming phys_bits and the 1 GiB pages.
    let text = std::fs::read_to_string(dir.join(wide)).unwrap();
    let narrow = text.replace("  phys_bits: 41\n", "");
    assert_ne!(narrow, text);
    let o = common::run(&["plan", "-"], Some(narrow.as_bytes()));
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(1), "{wide} at 40 bits: {err}");
    assert!(
        err.contains("OVMF")
            && err.contains("40 address bits")
            && err.contains("1 GiB pages")
            && err.contains("fix: raise policy.phys_bits to 41"),
        "{wide} at 40 bits: the refusal names OVMF's address width and the fix: {err}"
    );
    eprintln!(
        "qemu_real::{test}: 512 GiB at 41 bits boots ({:.1} s); 1 TiB at 41 bits boots \
         with +pdpe1gb ({:.1} s), enumerates nothing without it; refused at 40 bits",
        took.as_secs_f64(),
        took_wide.as_secs_f64()
    );
}

/// `capacity --bar64 128G` at next boot, proven under OVMF at a power-of-two edge
/// (`q35-uefi-bar64-pow2-edge.yaml`: 255 GiB of BARs, three empty hotplug ports): the
/// count is 1, the spec with one 128 GiB stand-in more boots with every BAR assigned, and
/// with two more (which `devaddr plan` refuses; planned for SeaBIOS, booted under OVMF
/// with the 512 GiB aperture the unpadded count would ask) OVMF's padding of the empty
/// ports leaves a BAR bare.
#[test]
fn x86_64_ovmf_bar64_next_boot_count_at_a_power_of_two_edge() {
    let test = "x86_64_ovmf_bar64_next_boot_count_at_a_power_of_two_edge";
    let spec = firmware_specs_dir().join("q35-uefi-bar64-pow2-edge.yaml");
    let cap = devaddr_cmd(&[
        "capacity",
        spec.to_str().unwrap(),
        "--kind",
        "vfio-pci",
        "--bar64",
        "128G",
        "--format",
        "json",
    ]);
    let rows: Value = serde_json::from_str(&cap).unwrap();
    assert_eq!(rows[0]["next_boot"], 1, "{rows}");
    let text = std::fs::read_to_string(&spec).unwrap();
    let more = |n: usize, firmware: &str| {
        let mut t = text.replace("firmware: uefi", firmware);
        for i in 0..n {
            t += &format!("  - {{id: more{i}, kind: vfio-pci, bar64: 128G}}\n");
        }
        common::tmp_file("fw-pow2-edge", &format!("more{n}.yaml"), t)
    };
    let one = more(1, "firmware: uefi");
    let Some((bin, plan)) = uefi_plan_or_skip(X86, Path::new(&*one), test) else {
        return;
    };
    let mut failures = Vec::new();
    check_boot(&bin, &plan, &mut failures);
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    let two = more(2, "firmware: bios");
    let mut over = load_plan(Path::new(&*two)).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        over.args
            .iter()
            .any(|a| a.ends_with("pci-hole64-size=512G")),
        "unpadded, two more fit 512 GiB: {:?}",
        over.args
    );
    under_uefi_of(&mut over, &plan, Some(512 * 1024));
    let mut bare = Vec::new();
    check_boot(&bin, &over, &mut bare);
    assert!(
        bare.iter().any(|f| f.contains("unassigned")),
        "two 128 GiB BARs more in 512 GiB: OVMF's padding should leave one bare: {bare:?}"
    );
    eprintln!("qemu_real::{test}: one more boots, two more leave a BAR bare");
}

/// OVMF pads pc's hotplug bridges too: an empty `pci-bridge` (SHPC) beside a 128 GiB
/// BAR gets 1/256 of the 64-bit aperture. The plan asks 256 GiB and the BAR is assigned;
/// in the 128 GiB the BAR fills exactly OVMF enumerates nothing.
#[test]
fn x86_64_ovmf_pads_pc_bridges_in_the_64_bit_aperture() {
    let test = "x86_64_ovmf_pads_pc_bridges_in_the_64_bit_aperture";
    let spec = "pc-uefi-bar64-bridge-pad.yaml";
    let Some(bare) = padded_aperture_boundary(spec, test, 256 * 1024, 128 * 1024) else {
        return;
    };
    assert!(
        !bare.is_empty(),
        "in an aperture the BAR fills exactly OVMF's bridge padding should leave it bare"
    );
    eprintln!("qemu_real::{test}: 128 GiB BAR assigned in 256 GiB, nothing enumerated in 128 GiB");
}

/// Big BARs under OVMF: two 128 GiB 64-bit BARs (ivshmem-plain stand-ins on sparse
/// memory backends, what `--format qemu` writes for a `vfio-pci` with `bar64` and no
/// `host:`) on two NUMA nodes' expanders. With the plan's `X-PciMmio64Mb` and
/// `pci-hole64-size` every BAR is assigned; without the fw_cfg setting OVMF's default
/// aperture leaves one bare.
#[test]
fn x86_64_ovmf_big_bars_on_numa_nodes() {
    let test = "x86_64_ovmf_big_bars_on_numa_nodes";
    let spec = firmware_specs_dir().join("q35-uefi-bar64-numa2.yaml");
    let Some((bin, plan)) = uefi_plan_or_skip(X86, &spec, test) else {
        return;
    };
    let mmio = plan
        .args
        .iter()
        .position(|a| a.starts_with("name=opt/ovmf/X-PciMmio64Mb,string="))
        .expect("the plan asks OVMF for its 64-bit aperture");
    assert!(
        plan.args.iter().any(|a| a.contains("pci-hole64-size=")),
        "{:?}",
        plan.args
    );
    for id in ["acc0", "acc1"] {
        assert!(
            plan.args
                .iter()
                .any(|a| a.starts_with(&format!("ivshmem-plain,id={id},"))),
            "{id}: a stand-in with a 64-bit BAR: {:?}",
            plan.args
        );
    }
    let mut failures = Vec::new();
    let t = Instant::now();
    check_boot(&bin, &plan, &mut failures);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    eprintln!(
        "qemu_real::{test}: 2 x 128 GiB BARs enumerated under OVMF with {} in {:.1} s",
        plan.args[mmio],
        t.elapsed().as_secs_f64()
    );
    let mut without = load_plan(&spec).unwrap();
    without.args.drain(mmio - 1..=mmio);
    let mut bare = Vec::new();
    check_boot(&bin, &without, &mut bare);
    assert!(
        bare.iter().any(|f| f.contains("unassigned")),
        "without X-PciMmio64Mb OVMF's default aperture should leave a big BAR bare: {bare:?}"
    );
}

/// The windows the firmware programmed into every bridge, by qdev id: the `bus` object
/// of query-pci (`io_range`, `memory_range`, `prefetchable_range`).
fn bridge_windows(qmp: &mut Qmp) -> Result<BTreeMap<String, Value>, String> {
    fn walk(devices: &Value, out: &mut BTreeMap<String, Value>) {
        for d in devices.as_array().into_iter().flatten() {
            if let Some(b) = d.get("pci_bridge") {
                out.insert(str_of(d, "qdev_id").to_string(), b["bus"].clone());
                if let Some(below) = b.get("devices") {
                    walk(below, out);
                }
            }
        }
    }
    let mut out = BTreeMap::new();
    for b in qmp
        .execute("query-pci", json!({}))?
        .as_array()
        .into_iter()
        .flatten()
    {
        if let Some(d) = b.get("devices") {
            walk(d, &mut out);
        }
    }
    Ok(out)
}

/// Bytes of a bridge window (`io_range`…) as programmed; 0 when the window is closed.
fn window_size(bus: &Value, range: &str) -> u64 {
    let r = &bus[range];
    match (r["base"].as_i64(), r["limit"].as_i64()) {
        (Some(b), Some(l)) if l > b => (l - b + 1) as u64,
        _ => 0,
    }
}

/// The prefetchable window the firmware programmed into bridge `id` (bytes; 0 when none).
fn prefetchable_window(qmp: &mut Qmp, id: &str) -> Result<u64, String> {
    let windows = bridge_windows(qmp)?;
    let bus = windows
        .get(id)
        .ok_or_else(|| format!("{id}: no such bridge in query-pci"))?;
    Ok(window_size(bus, "prefetchable_range"))
}

/// The I/O-window boundary under AAVMF (aarch64 virt): the plan at the budget (16 root
/// ports with an e1000e each) boots with an I/O and a memory window on every port holding
/// a NIC; one port more (added to the same arguments, since `devaddr plan` refuses it)
/// leaves a port with none, so its NIC gets no resources. AAVMF has no e1000e driver and
/// leaves its decoding off, so QEMU shows its BARs unassigned either way: the ports'
/// windows, which the firmware sizes from the BARs below them, are what is checked.
#[test]
fn aarch64_aavmf_io_window_boundary() {
    let test = "aarch64_aavmf_io_window_boundary";
    let spec = firmware_specs_dir().join("virt-uefi-io-16.yaml");
    let Some((bin, plan)) = uefi_plan_or_skip(ARM, &spec, test) else {
        return;
    };
    let nic_ports = |plan: &Plan| -> Vec<String> {
        plan.devices
            .iter()
            .filter(|d| str_of(d, "kind") == "e1000e")
            .filter_map(|d| Some(plan.pci_controllers.get(&pci_addr(d)?.0)?.0.clone()))
            .collect()
    };
    let ports = nic_ports(&plan);
    // Boots `plan`, waits for the boot manager, returns the NIC ports without windows.
    let bare_ports = |plan: &Plan, ports: &[String]| -> Vec<String> {
        let mut qemu = Qemu::start(&bin, plan, false, true);
        let mut qmp = qemu.qmp().unwrap();
        let log = qemu.debug_log.clone().unwrap();
        let deadline = Instant::now() + Duration::from_secs(300);
        while !std::fs::read_to_string(&log).is_ok_and(|t| t.contains("BdsDxe:")) {
            assert!(
                Instant::now() < deadline,
                "AAVMF did not reach its boot manager"
            );
            std::thread::sleep(Duration::from_millis(500));
        }
        let windows = bridge_windows(&mut qmp).unwrap();
        ports
            .iter()
            .filter(|p| {
                let w = &windows[p.as_str()];
                window_size(w, "io_range") == 0 || window_size(w, "memory_range") == 0
            })
            .cloned()
            .collect()
    };
    assert_eq!(ports.len(), 16, "{ports:?}");
    let bare = bare_ports(&plan, &ports);
    assert!(
        bare.is_empty(),
        "AAVMF left ports without windows: {bare:?}"
    );
    let over = spec.to_string_lossy().replace("16", "17");
    let text = std::fs::read_to_string(&spec).unwrap().replace(
        "nic15, kind: e1000e}",
        "nic15, kind: e1000e}\n  - {id: nic16, kind: e1000e}",
    );
    let o = common::run(&["plan", "-"], Some(text.as_bytes()));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{over}: {err}");
    assert!(err.contains("AAVMF") && err.contains("I/O"), "{err}");
    let mut plus = load_plan(&spec).unwrap();
    plus.args.extend(
        [
            "-device",
            "pcie-root-port,id=extra,bus=pcie.0,addr=0x10.0x0,chassis=200,port=0xc8",
            "-device",
            "e1000e,id=extranic,bus=extra,addr=0x0.0x0,netdev=extranet",
            "-netdev",
            "user,id=extranet",
        ]
        .map(String::from),
    );
    let mut all = ports.clone();
    all.push("extra".into());
    let bare = bare_ports(&plus, &all);
    assert_eq!(
        bare.len(),
        1,
        "17 NIC ports under AAVMF: one without windows: {bare:?}"
    );
    eprintln!("qemu_real::{test}: 16 NIC ports all get I/O windows under AAVMF; with 17, {bare:?} gets none");
}

/// Hotplug room for big devices under OVMF: the ports the plan reserves 128 GiB of 64-bit
/// room on (`hotplug_reserve_bar64`, QEMU `pref64-reserve`) get a prefetchable window at
/// least that large from the firmware, the other empty hotplug port a smaller one.
/// `capacity --kind vfio-pci --bar64 128G` says how many fit live; exactly that many
/// 128 GiB stand-ins (ivshmem-plain), placed by `devaddr hotplug` and hot-added with its
/// QMP commands after the firmware ran, are accepted by QEMU, each into a port whose
/// window holds its BAR (the guest OS places the BAR there); one more is refused by
/// `devaddr hotplug`.
#[test]
fn x86_64_ovmf_keeps_hotplug_room_for_a_big_bar() {
    let test = "x86_64_ovmf_keeps_hotplug_room_for_a_big_bar";
    let spec = firmware_specs_dir().join("q35-uefi-hotplug-bar64.yaml");
    let Some((bin, plan)) = uefi_plan_or_skip(X86, &spec, test) else {
        return;
    };
    let plan_file = common::tmp_file("fw-hotplug", "plan.yaml", devaddr(&spec, "yaml").unwrap());
    let rows: Value = serde_json::from_str(&devaddr_cmd(&[
        "capacity", &plan_file, "--kind", "vfio-pci", "--bar64", "128G", "--format", "json",
    ]))
    .unwrap();
    let live = rows[0]["live"].as_u64().unwrap() as usize;
    assert!(live > 0, "capacity predicts no big device live: {rows}");
    let entries = |n: usize| -> String {
        (0..n)
            .map(|i| format!("- {{id: big{i}, kind: vfio-pci, bar64: 128G}}\n"))
            .collect()
    };
    let add = common::tmp_file("fw-hotplug", "add.yaml", entries(live));
    let cmds = devaddr_cmd(&["hotplug", &plan_file, "--add", &add, "--format", "qemu"]);
    let after: Value = serde_json::from_str(&devaddr_cmd(&[
        "hotplug", &plan_file, "--add", &add, "--format", "json",
    ]))
    .unwrap();
    let one_more = common::tmp_file("fw-hotplug", "more.yaml", entries(live + 1));
    let o = common::run(&["hotplug", &plan_file, "--add", &one_more], None);
    assert_eq!(
        o.status.code(),
        Some(1),
        "one more big device than capacity says: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    // The ports the new devices went to, and an empty port without the reserve.
    let index_of = |id: &str| {
        plan.controllers
            .iter()
            .find(|c| str_of(c, "id") == id)
            .and_then(|c| c["index"].as_u64())
    };
    let ports: Vec<String> = (0..live)
        .map(|i| {
            let d = after["devices"]
                .as_array()
                .unwrap()
                .iter()
                .find(|d| str_of(d, "id") == format!("big{i}"))
                .unwrap();
            let bus = pci_addr(d).unwrap().0;
            plan.pci_controllers[&bus].0.clone()
        })
        .collect();
    let plain = plan
        .controllers
        .iter()
        .filter(|c| str_of(c, "model") == "pcie-root-port" && c.get("pref64_reserve").is_none())
        .map(|c| str_of(c, "id").to_string())
        .find(|id| {
            !plan
                .devices
                .iter()
                .any(|d| pci_addr(d).map(|a| a.0) == index_of(id))
        })
        .expect("an empty port without the reserve");

    let mut qemu = Qemu::start(&bin, &plan, false, true);
    let mut qmp = qemu.qmp().unwrap();
    // Polled until the firmware has enumerated every planned device (a generous deadline
    // bounds a firmware that never does).
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let gaps = enumeration_gaps(&plan, &query_pci(&mut qmp).unwrap());
        if gaps.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "OVMF did not enumerate the plan: {gaps:?}\n{}",
            qemu.firmware_log_excerpt()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let big = 128u64 << 30;
    for port in &ports {
        let room = prefetchable_window(&mut qmp, port).unwrap();
        assert!(
            room >= big,
            "{port}: prefetchable window {room:#x}, 128 GiB reserved"
        );
    }
    let other = prefetchable_window(&mut qmp, &plain).unwrap();
    assert!(
        other < big,
        "{plain}: without the reserve the window is smaller ({other:#x})"
    );
    for line in cmds.lines() {
        let c: Value = serde_json::from_str(line).unwrap();
        qmp.execute(c["execute"].as_str().unwrap(), c["arguments"].clone())
            .unwrap_or_else(|e| panic!("{line}: {e}"));
    }
    let seen = query_pci(&mut qmp).unwrap();
    for i in 0..live {
        assert!(
            seen.iter().any(|s| s.qdev_id == format!("big{i}")),
            "big{i}: the hot-added stand-in is on its bus"
        );
    }
    eprintln!(
        "qemu_real::{test}: capacity --live --bar64 128G = {live}; {live} stand-ins hot-added into {ports:?} (windows >= 128 GiB; {plain} has {} MiB)",
        other >> 20
    );
}
