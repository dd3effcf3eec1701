//! Serde types of the catalog files.

use crate::spec::{ByteSize, Firmware};
pub use crate::vocab::{Attr, ConnectFlags, ConnectKind, ControllerType, Function, Slot};
use serde::{Deserialize, Serialize};

/// A machine type (`models/machines/*.yaml`): QEMU's `-machine` board with its chipset,
/// root bus, built-in devices, the controller models the planner may add to it and its
/// firmware limits.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct MachineModel {
    /// Canonical name, written into plans as `machine:` (`q35`, `pc-i440fx`, `virt`).
    pub name: String,
    /// Other names a spec may use (`pc`, `pc-q35`). A versioned QEMU machine name
    /// (`pc-q35-9.2`, `pc-i440fx-8.0`, `virt-9.0`) matches the name or an alias followed
    /// by `-` ([`Catalog::machine`](crate::Catalog::machine)).
    #[serde(default)]
    pub aliases: Vec<String>,
    /// Guest architecture as libvirt and QEMU name it (`x86_64`, `aarch64`); a spec's
    /// `arch:` must equal it.
    pub arch: String,
    /// The QEMU emulator for this machine (`qemu-system-x86_64`), used by the QEMU
    /// output format and the real-QEMU tests.
    pub qemu_binary: String,
    /// Value of QEMU's `-machine` option (`q35`, `pc`, `virt`).
    pub qemu_machine: String,
    /// QEMU's host bridge device whose `pci-hole64-size` sizes the 64-bit PCI window
    /// (`q35-pcihost`, `i440FX-pcihost`); none where the window is fixed (`virt`).
    #[serde(default)]
    pub qemu_pci_host: Option<String>,
    /// QEMU CPU model to name with `-cpu MODEL,phys-bits=N` when a spec sets
    /// `policy.phys_bits` (`qemu64`); none where the CPU is given in `qemu_extra`.
    #[serde(default)]
    pub qemu_cpu: Option<String>,
    /// Further QEMU arguments the machine needs to start (`["-cpu", "cortex-a57"]` on
    /// `virt`); empty by default.
    #[serde(default)]
    pub qemu_extra: Vec<String>,
    /// Firmware [`limits`](Self::limits) were measured with (`seabios`; `uefi` on `virt`,
    /// which boots nothing else).
    pub firmware: String,
    /// Whether the machine boots a legacy BIOS (`firmware: bios` in a spec); false on
    /// `virt`.
    #[serde(default = "yes")]
    pub bios: bool,
    /// The UEFI firmware (OVMF, AAVMF) with its own measured limits and the files QEMU
    /// loads it from; none when the machine has no UEFI firmware in the catalog.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uefi: Option<UefiFirmware>,
    /// PCI controller model of the root bus, controller index 0 (`pcie-root` on PCI
    /// Express machines, `pci-root` on i440fx); a model in `controllers.yaml`.
    pub root: String,
    /// QEMU's name for the root bus (`pcie.0`, `pci.0`).
    pub root_bus_name: String,
    /// Whether PCIe endpoints exist here (false: every device is conventional PCI).
    pub pcie: bool,
    /// Root-bus functions occupied by the chipset (host bridge, ISA/LPC bridge, SMBus…):
    /// no device may be placed there.
    #[serde(default)]
    pub builtin: Vec<BuiltinSlot>,
    /// Storage/USB controllers that exist with the machine (q35's AHCI at 00:1f.2,
    /// i440fx's PIIX3 IDE at 00:01.1): QEMU creates them, plans list them as `builtin`.
    #[serde(default)]
    pub builtin_controllers: Vec<BuiltinController>,
    /// Root-bus functions reserved for a controller model if the plan uses one (i440fx:
    /// the PIIX3 UHCI at 00:01.2).
    #[serde(default)]
    pub fixed_controller_slots: Vec<FixedControllerSlot>,
    /// Root-bus slot of the first (primary) video device when it is not pinned and the
    /// slot is free (q35: 0x01, i440fx: 0x02); none on machines without one.
    #[serde(default)]
    pub primary_video: Option<SlotRef>,
    /// The PCI controller models the planner adds to this machine, by role.
    pub grow: Grow,
    /// Controller models used when a device implies a controller the spec does not name.
    pub defaults: Defaults,
    /// Budgets under the BIOS (SeaBIOS, `firmware: bios`); on a machine without a BIOS,
    /// those plans made before devaddr recorded the firmware were held to.
    pub limits: Limits,
    /// What counts as a reserved hotplug slot: a PCIe port or a conventional PCI slot.
    pub reserve_kind: ReserveKind,
    /// Kinds `devaddr capacity` reports when none is asked for.
    #[serde(default)]
    pub capacity_kinds: Vec<String>,
}

/// A machine's UEFI firmware (`uefi:` in a machine file).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct UefiFirmware {
    /// What it is and which build was measured (`OVMF 2022.11 (Debian ovmf 2022.11-6)`).
    pub name: String,
    /// The read-only code image (pflash unit 0).
    pub code: String,
    /// The variable-store template (pflash unit 1; QEMU writes to a copy).
    pub vars: String,
    /// Its budgets, measured like [`MachineModel::limits`].
    pub limits: Limits,
    /// I/O (bytes) it pads each hotplug port with that has no QEMU `io-reserve` hint,
    /// a window of its own on a port without I/O-BAR devices; none when it pads nothing.
    /// Plans give it up (`io_reserve: 0`) where the windows would not fit the budget.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hotplug_io_padding: Option<u64>,
    /// Bridge models it pads with a 4 KiB I/O window of their own although nothing below
    /// them has an I/O BAR, which QEMU cannot tell it not to (no `io-reserve` on them):
    /// each such bridge with hotplug on counts against `io_windows` like a bridge with
    /// an I/O device (q35 under OVMF: `pcie-to-pci-bridge`, switch downstream ports).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub io_padded_bridges: Vec<String>,
}

impl UefiFirmware {
    /// Whether it pads a `model` bridge with an I/O window it cannot give up.
    ///
    /// ```
    /// let q35 = devaddr::Catalog::embedded().machine("q35").unwrap();
    /// let ovmf = q35.uefi.as_ref().unwrap();
    /// assert!(ovmf.pads_io_of("pcie-to-pci-bridge"));
    /// assert!(!ovmf.pads_io_of("pcie-root-port")); // it says io-reserve=0 instead
    /// ```
    pub fn pads_io_of(&self, model: &str) -> bool {
        self.io_padded_bridges.iter().any(|m| m == model)
    }
}

impl MachineModel {
    /// The budgets a plan for `firmware` must stay within: the BIOS ones
    /// ([`Self::limits`]), the UEFI ones, or for [`Firmware::Any`] the tighter of every
    /// firmware the machine boots. `None` when the machine does not boot `firmware`.
    ///
    /// ```
    /// use devaddr::{spec::Firmware, Catalog};
    /// let cat = Catalog::embedded();
    /// let q35 = cat.machine("q35").unwrap();
    /// let any = q35.limits_for(Firmware::Any).unwrap();
    /// assert_eq!(any.io_windows, q35.limits_for(Firmware::Uefi).unwrap().io_windows);
    /// assert!(cat.machine("virt").unwrap().limits_for(Firmware::Bios).is_none());
    /// ```
    pub fn limits_for(&self, firmware: Firmware) -> Option<Limits> {
        let bios = self.bios.then(|| self.limits.clone());
        let uefi = self.uefi.as_ref().map(|u| u.limits.clone());
        match firmware {
            Firmware::Bios => bios,
            Firmware::Uefi => uefi.or_else(|| (!self.bios).then(|| self.limits.clone())),
            Firmware::Any => match (bios, uefi) {
                (Some(b), Some(u)) => Some(b.tighter(&u)),
                (b, u) => b.or(u).or_else(|| Some(self.limits.clone())),
            },
        }
    }
}

/// What a hotplug reserve (`hotplug_reserve:` in a spec) counts on a machine, and what a
/// plan's `free:` reports (`reserve_kind:` in a machine file, kebab-case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReserveKind {
    /// An empty hotpluggable PCIe port (pcie-root-port or switch downstream port): PCI
    /// Express machines, whose root bus is not hotpluggable.
    PciePort,
    /// An empty hotpluggable slot of a conventional PCI bus (pci-root, pci-bridge):
    /// i440fx.
    PciSlot,
}

/// Functions of a root-bus slot that the chipset occupies (`builtin:` in a machine file).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuiltinSlot {
    /// Slot on the root bus (bus 0), 0-31.
    pub slot: Slot,
    /// Occupied functions of that slot, 0-7.
    pub functions: Vec<Function>,
    /// What sits there, for messages and the tree view (`"ICH9 SMBus"`).
    pub what: String,
}

/// A USB or drive controller that comes with the machine (`builtin_controllers:`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuiltinController {
    /// Id of the controller in plans (`sata0`, `ide0`).
    pub id: String,
    /// Controller model, a `storage:` model of `controllers.yaml` (`ich9-ahci`).
    pub model: String,
    /// Controller index among controllers of its type (libvirt's `index`), usually 0.
    pub index: u32,
    /// Its root-bus slot, 0-31.
    pub slot: Slot,
    /// Its function in that slot, 0-7.
    pub function: Function,
    /// QEMU names this controller's buses `<prefix>.N`.
    pub qemu_bus_prefix: String,
}

/// A root-bus address kept for a controller model, used only if a plan needs that
/// controller (`fixed_controller_slots:`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixedControllerSlot {
    /// Controller model the address belongs to (`piix3-uhci`).
    pub model: String,
    /// Root-bus slot, 0-31.
    pub slot: Slot,
    /// Function in that slot, 0-7.
    pub function: Function,
}

/// A root-bus slot, named by a machine file (`primary_video: {slot: 0x01}`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlotRef {
    /// Slot on the root bus, 0-31.
    pub slot: Slot,
}

/// PCI controller models the planner adds, by role (`grow:` in a machine file). A role
/// left out is never grown on that machine (i440fx has no PCIe ports).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Grow {
    /// Port for a PCIe endpoint (pcie-root-port).
    #[serde(default)]
    pub pcie_port: Option<String>,
    /// First conventional-PCI bus on a PCIe machine (pcie-to-pci-bridge).
    #[serde(default)]
    pub pci_bridge_first: Option<String>,
    /// Further conventional-PCI buses (pci-bridge).
    #[serde(default)]
    pub pci_bridge: Option<String>,
    /// Upstream port of a PCIe switch, plugged into a root port when the root bus has
    /// no slot left for more root ports (x3130-upstream).
    #[serde(default)]
    pub pcie_switch_upstream: Option<String>,
    /// Downstream port of a PCIe switch: up to 32 on one upstream port, each a
    /// hotpluggable port for one PCIe endpoint (xio3130-downstream).
    #[serde(default)]
    pub pcie_switch_downstream: Option<String>,
    /// Expander bus carrying a NUMA node (pxb-pcie on PCIe machines, pxb on i440fx).
    #[serde(default)]
    pub numa_expander: Option<String>,
}

/// Controller models added when a device needs one the spec does not name (`defaults:`
/// in a machine file); each a `storage:` model of `controllers.yaml`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Defaults {
    /// USB controller for USB devices (`qemu-xhci` on q35 and virt, `piix3-uhci` on
    /// i440fx).
    pub usb_controller: String,
    /// SATA (AHCI) controller for SATA disks beyond the built-in one (`ich9-ahci`).
    pub sata_controller: String,
    /// SCSI controller for SCSI disks (`virtio-scsi`).
    pub scsi_controller: String,
}

/// Budgets of a machine and its firmware (`limits:` in a machine file).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Limits {
    /// PCI bus numbers in the machine's one PCI domain, the root bus (bus 0) included:
    /// 256 on every machine today. Each added bridge, port or expander consumes
    /// [`PciModel::bus_numbers`] of them.
    pub bus_numbers: u32,
    /// 4 KiB I/O windows the firmware can hand to bridges (x86 only): every port or
    /// bridge with a device that has an I/O BAR below it takes one. Measured on QEMU 7.2
    /// with SeaBIOS, one kept as margin (q35: 13, i440fx: 8); none means no budget.
    #[serde(default)]
    pub io_windows: Option<u32>,
    /// Guest physical address bits of the machine's default CPU (x86 `qemu64`: 40):
    /// the 64-bit MMIO aperture must fit below half of the address space.
    #[serde(default)]
    pub phys_bits: Option<u32>,
    /// The largest 64-bit MMIO aperture the machine has, when it is fixed (aarch64
    /// `virt`: 512 GiB high PCIe window).
    #[serde(default)]
    pub mmio64_max: Option<ByteSize>,
    /// 64-bit prefetchable room the firmware pads every hotplug port with that has no
    /// QEMU `pref64-reserve` hint (OVMF: 1/256 of its 64-bit aperture, when that is above
    /// 32 GiB); none when it pads nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pref64_padding: Option<Pref64Padding>,
    /// The widest guest-physical address space the firmware maps on the machine's CPU
    /// model (`qemu_cpu`), whatever `phys_bits` says: OVMF 2022.11 takes its address
    /// width from the end of its 64-bit aperture (placed at the first multiple of its own
    /// size above RAM) and, on a CPU without 1 GiB pages (`qemu64`), stops before
    /// enumerating anything once that width passes 40 bits. None: no such bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firmware_address_bits: Option<u32>,
    /// The guest CPU feature that lifts `firmware_address_bits` (OVMF: `pdpe1gb`, 1 GiB
    /// pages, with which its page tables map as many bits as the CPU has): a plan whose
    /// 64-bit aperture needs more asks for it (`mmio64.cpu_features`), within `phys_bits`.
    /// None: nothing lifts the bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firmware_address_feature: Option<String>,
}

/// How a firmware pads hotplug ports with 64-bit prefetchable room (`pref64_padding:` in
/// a machine file's limits): `aperture / divisor` rounded up to a power of two, once the
/// 64-bit aperture is larger than `above`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Pref64Padding {
    /// The aperture pads start above (OVMF: 32 GiB).
    pub above: ByteSize,
    /// The share of the aperture each port gets (OVMF: 256).
    pub divisor: u64,
}

impl Pref64Padding {
    /// Bytes each padded port gets under a 64-bit aperture of `aperture` bytes.
    ///
    /// ```
    /// use devaddr::catalog::Pref64Padding;
    /// let q35 = devaddr::Catalog::embedded().machine("q35").unwrap();
    /// let pad: Pref64Padding = q35.uefi.as_ref().unwrap().limits.pref64_padding.unwrap();
    /// assert_eq!(pad.for_aperture(512 << 30), 2 << 30);
    /// assert_eq!(pad.for_aperture(32 << 30), 0);
    /// ```
    pub fn for_aperture(&self, aperture: u64) -> u64 {
        if aperture <= self.above.bytes() || self.divisor == 0 {
            return 0;
        }
        (aperture / self.divisor)
            .checked_next_power_of_two()
            .unwrap_or(u64::MAX)
    }
}

impl Limits {
    /// Each budget at the smaller of the two (a missing one is no budget).
    pub fn tighter(&self, other: &Limits) -> Limits {
        let min = |a: Option<u32>, b: Option<u32>| match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Limits {
            bus_numbers: self.bus_numbers.min(other.bus_numbers),
            io_windows: min(self.io_windows, other.io_windows),
            phys_bits: min(self.phys_bits, other.phys_bits),
            mmio64_max: match (self.mmio64_max, other.mmio64_max) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            },
            // The larger padding (the smaller share) is the tighter.
            pref64_padding: match (self.pref64_padding, other.pref64_padding) {
                (Some(a), Some(b)) => Some(if a.divisor <= b.divisor { a } else { b }),
                (a, b) => a.or(b),
            },
            firmware_address_bits: min(self.firmware_address_bits, other.firmware_address_bits),
            firmware_address_feature: self
                .firmware_address_feature
                .clone()
                .or_else(|| other.firmware_address_feature.clone()),
        }
    }
}

/// `models/controllers.yaml`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ControllersFile {
    pub pci: Vec<PciModel>,
    pub storage: Vec<StorageModel>,
}

/// A PCI controller model (`pci:` in `controllers.yaml`): a root bus, port, bridge,
/// switch port or expander bus, named as libvirt's `<controller type='pci' model=…>`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct PciModel {
    /// libvirt's model name (`pcie-root-port`, `pci-bridge`, `pcie-expander-bus`).
    pub model: String,
    /// QEMU device name (`pcie-root-port`, `pcie-pci-bridge`, `pxb-pcie`); None for the
    /// machine's root bus, which QEMU creates with the machine.
    pub qemu: Option<String>,
    /// The connect kind of the slot it plugs into (its own type); None for roots.
    pub connect: Option<ConnectKind>,
    /// Several share one slot as functions 0-7 (pcie-root-port, as libvirt places them).
    #[serde(default)]
    pub aggregate: bool,
    /// Carries a NUMA node (expander buses: QEMU's `numa_node` property).
    #[serde(default)]
    pub numa: bool,
    /// PCI bus numbers it consumes from [`Limits::bus_numbers`] (1 for ports and bridges,
    /// 2 for a pxb: its own root bus plus the internal bridge behind it).
    pub bus_numbers: u32,
    /// Hotplug of its bus can be switched off (QEMU `hotplug=off`, libvirt
    /// `<target hotplug='off'/>`): PCIe root and downstream ports.
    #[serde(default)]
    pub hotplug_settable: bool,
    /// QEMU's resource-reservation capability (`pref64-reserve`, `mem-reserve`,
    /// `io-reserve`): the firmware keeps that much room for a device hot-added later.
    #[serde(default)]
    pub resource_reserve: bool,
    /// The UEFI firmware pads this bridge's windows for hotplug (OVMF's
    /// `PciHotPlugInitDxe`, unless a QEMU reservation hint says otherwise): a PCIe port
    /// with a hotplug slot, or a bridge with a standard hotplug controller (SHPC). Nested
    /// padded bridges share their padding (each window is at least the padding).
    #[serde(default)]
    pub firmware_pads: bool,
    /// Extra attributes the plan fills in (chassis, port, chassis_nr, bus_nr).
    #[serde(default)]
    pub attrs: Vec<Attr>,
    /// Relative cost of adding one (objective weight); 1 by default, 2 for expander
    /// buses.
    #[serde(default = "one")]
    pub cost: u32,
    /// What its bus provides downstream.
    pub bus: BusSpec,
}

fn one() -> u32 {
    1
}

/// What a controller's bus provides downstream (`bus:` of a PCI controller model).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct BusSpec {
    /// Inclusive range of usable slots, within 0-31 (`[0, 0]` for a PCIe port's single
    /// slot, `[1, 31]` for a pci-bridge whose slot 0 is its SHPC).
    pub slots: [u8; 2],
    /// Whether devices may be hot-plugged into its slots (unless a plan switches it off
    /// where [`PciModel::hotplug_settable`]).
    pub hotplug: bool,
    /// PCIe bus (endpoints on it are PCIe) or conventional.
    pub express: bool,
    /// Connect kinds it accepts.
    pub accepts: ConnectFlags,
}

impl BusSpec {
    /// How many slots the bus has (the size of [`BusSpec::slots`]).
    pub fn slot_count(&self) -> u32 {
        u32::from(self.slots[1]) - u32::from(self.slots[0]) + 1
    }
    /// Whether a `kind` may plug into this bus.
    pub fn accepts(&self, kind: ConnectKind) -> bool {
        self.accepts.contains(kind)
    }
}

/// A controller of a non-PCI bus (USB, SATA, IDE, SCSI): `storage:` in
/// `controllers.yaml`. The controller is itself a PCI device, described in `devices.yaml`
/// under the same name.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct StorageModel {
    /// Model name, also its device kind (`qemu-xhci`, `ich9-ahci`, `virtio-scsi`).
    pub model: String,
    /// The bus it provides to the devices plugged into it.
    pub provides: ControllerType,
    /// USB: root ports of one controller when the spec sets no `ports:` (qemu-xhci: 4,
    /// piix3-uhci: 2).
    #[serde(default)]
    pub ports: Option<u32>,
    /// USB: most root ports one controller can be given (QEMU `p2`/`p3`; qemu-xhci: 15).
    #[serde(default)]
    pub max_ports: Option<u32>,
    /// Drive controllers: buses per controller (the `bus` of a drive address; IDE: 2,
    /// primary and secondary); 1 when absent.
    #[serde(default)]
    pub buses: Option<u32>,
    /// Drive controllers: units per bus (the `unit` of a drive address; AHCI: 6 ports,
    /// IDE: master and slave, virtio-scsi: 7); 1 when absent.
    #[serde(default)]
    pub units: Option<u32>,
}

impl StorageModel {
    /// How many devices one controller of this model takes.
    pub fn capacity(&self, ports: Option<u32>) -> u32 {
        match self.provides {
            ControllerType::Usb => ports.or(self.ports).unwrap_or(0),
            _ => self.buses.unwrap_or(1) * self.units.unwrap_or(1),
        }
    }
}

/// `models/devices.yaml`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DevicesFile {
    pub kinds: Vec<Kind>,
}

/// The kind of address a device kind takes (`family:` in `devices.yaml`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Family {
    /// A PCI/PCIe function: a PCI address (domain, bus, slot, function).
    Pci,
    /// A USB device: a port of a USB controller (`bus` = controller index, `port`).
    Usb,
    /// A disk on a SATA, SCSI or IDE controller: a drive address (controller, bus,
    /// target, unit).
    Drive,
}

/// Which PCI bus type a PCI device kind works on (`pci:` in `devices.yaml`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PciType {
    /// Conventional PCI only (e1000, rtl8139): a conventional bus, or a PCIe root bus as
    /// an integrated endpoint.
    Pci,
    /// A PCI Express endpoint (e1000e, nvme, vfio-pci): a PCIe port.
    Pcie,
    /// Either (virtio): modern on a PCIe port, transitional on a conventional bus.
    Either,
}

/// Whether a device has an I/O BAR (port I/O space), which takes a 4 KiB I/O window in
/// every bridge above it ([`Limits::io_windows`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IoBar {
    /// No I/O BAR.
    None,
    /// Always an I/O BAR (e1000, ich9-ahci).
    Always,
    /// An I/O BAR only when placed as conventional PCI (transitional virtio).
    Legacy,
}

/// A device kind (`kinds:` in `devices.yaml`): what a spec's `kind:` names.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Kind {
    /// Name used in specs and plans (`virtio-net`, `sata-disk`, `usb-tablet`).
    pub kind: String,
    /// QEMU `-device` driver (`virtio-net-pci`, `ide-hd`).
    pub qemu: String,
    /// The libvirt `<devices>` element it corresponds to (`interface`, `disk`,
    /// `controller`, `hostdev`, `input`…).
    pub element: String,
    /// The kind of address it takes.
    pub family: Family,
    /// For PCI kinds, the PCI bus type it needs; None for USB and drive kinds.
    #[serde(default)]
    pub pci: Option<PciType>,
    /// Whether it has an I/O BAR; none by default.
    #[serde(default = "no_io")]
    pub io_bar: IoBar,
    /// The QEMU backend its placeholder in the QEMU output gets: `netdev` (user-mode
    /// networking), `drive` (a null block device) or none.
    #[serde(default)]
    pub backend: Option<String>,
    /// It is also a controller of a non-PCI bus (model in controllers.yaml `storage`).
    #[serde(default)]
    pub controller: Option<String>,
    /// For drive kinds, the controller type the disk plugs into (SATA, SCSI or IDE).
    #[serde(default)]
    pub drive_bus: Option<ControllerType>,
    /// A video device: the first one goes to the machine's
    /// [`MachineModel::primary_video`] slot.
    #[serde(default)]
    pub video: bool,
    /// QEMU needs a `serial=` property.
    #[serde(default)]
    pub serial: bool,
    /// The kind's own 64-bit prefetchable BAR (virtio's 16 KiB notification/config BAR):
    /// the firmware places it in the 64-bit aperture beside the big ones (`bar64`).
    #[serde(default)]
    pub pref64: Option<crate::spec::ByteSize>,
    /// QEMU device used in place of this one when no host device is named.
    #[serde(default)]
    pub standin: Option<String>,
    /// QEMU device used in place of this one when no host device is named and the
    /// device has a `bar64`: one whose 64-bit prefetchable BAR is as large
    /// (`ivshmem-plain` on a sparse memory backend of that size).
    #[serde(default)]
    pub standin_bar64: Option<String>,
    /// At most this many per guest (QEMU refuses more).
    #[serde(default)]
    pub max_per_guest: Option<u32>,
    /// Whether it can be hot-plugged.
    #[serde(default = "yes")]
    pub hotplug: bool,
    /// Whether it can be added to a running guest (libvirt's `attach-device --live`
    /// accepts it): libvirt attaches disks, NICs, hostdevs, inputs, RNGs, watchdogs and
    /// serial ports live, but of the controllers only SCSI ones.
    #[serde(default = "yes")]
    pub attach: bool,
}

fn no_io() -> IoBar {
    IoBar::None
}
fn yes() -> bool {
    true
}
