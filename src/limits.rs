//! Every limit devaddr puts on its input, in one place. Inputs past them are refused as
//! bad input (exit 2) before anything is sized by them: no allocation, loop or range in
//! the planner depends on a number it has not bounded here or in the catalog (`models/`).

/// Largest input file (spec, plan, device list or domain XML) devaddr reads: 16 MiB.
/// A libvirt domain or a 1000-device plan is well under 1 MiB.
pub const MAX_INPUT_BYTES: usize = 16 * 1024 * 1024;

/// Deepest nesting of YAML/JSON collections in a spec or plan. A plan nests four levels
/// (`devices` → entry → `address` → field); the limit leaves room for hand-written
/// flow style and stays far below what the YAML parser's recursion can take.
pub const MAX_YAML_DEPTH: usize = 64;

/// Deepest element nesting of an XML document: libxml2's default (libvirt's parser
/// refuses deeper documents too).
pub const MAX_XML_DEPTH: usize = 256;

/// Guest NUMA nodes devices may name (nodes 0 to `MAX_NUMA_NODES - 1`): each needs its
/// own expander bus, and a PCI domain has far fewer bus numbers than 64 nodes would use
/// comfortably.
pub const MAX_NUMA_NODES: u32 = 64;

/// Longest chain of buses the planner walks from a bus up towards the root: a guard
/// against cycles in a hand-written plan (a real hierarchy is a few levels deep).
pub const MAX_BUS_CHAIN: u32 = 64;

/// Highest PCI slot number on a bus (5 bits).
pub const MAX_PCI_SLOT: u8 = crate::vocab::pci::MAX_SLOT;

/// Highest PCI function number in a slot (3 bits).
pub const MAX_PCI_FUNCTION: u8 = crate::vocab::pci::MAX_FUNCTION;

/// Highest PCI domain number a spec may write (only domain 0 exists; larger numbers are
/// refused where the address is resolved, this bound keeps the number itself sane).
pub const MAX_PCI_DOMAIN: u32 = 0xffff;

/// Highest chassis number, port number and `chassis_nr` of a PCI(e) port or bridge
/// (8-bit registers in QEMU; libvirt refuses more than 255 as well).
pub const MAX_CHASSIS: u32 = 255;

/// Highest PCIe port number (an 8-bit register).
pub const MAX_PCIE_PORT: u32 = 255;

/// Highest guest bus number of an expander bus (`bus_nr`), an 8-bit bus number.
pub const MAX_BUS_NR: u32 = crate::vocab::pci::MAX_BUS_NUMBER;

/// Highest index of a USB, SATA, SCSI or IDE controller. Devices address these by
/// index; a guest with more than a few dozen is already unusual.
pub const MAX_STORAGE_INDEX: u32 = 255;

/// Highest bus, target and unit number of a drive address. The largest real controller
/// (virtio-scsi) has target 0-255 and unit 0-16383.
pub const MAX_DRIVE_BUS: u32 = 255;
/// Highest target number of a drive address: virtio-scsi's 255.
pub const MAX_DRIVE_TARGET: u32 = crate::vocab::scsi::MAX_TARGET;
/// Highest unit number of a drive address (see [`MAX_DRIVE_TARGET`]).
pub const MAX_DRIVE_UNIT: u32 = crate::vocab::scsi::MAX_UNIT;

/// Deepest USB port path (`1.2.3.4`: a root port and three hubs below it), libvirt's
/// limit; each port number is 1-based and below 32.
pub const MAX_USB_PORT_DEPTH: usize = 4;
/// Highest port number at any level of a USB port path (see [`MAX_USB_PORT_DEPTH`]).
pub const MAX_USB_PORT_NUMBER: u32 = 31;

/// Largest number a libvirt domain attribute may carry: libvirt reads these as C `int`
/// and refuses larger values ("Expected integer value").
pub const MAX_XML_INT: u64 = i32::MAX as u64;

/// Highest index of a PCI controller in a libvirt domain: the index is the bus number
/// the guest sees, and a PCI domain has 256 of them.
pub const MAX_PCI_CONTROLLER_INDEX: u32 = 255;

/// Highest controller index a libvirt drive address may name (`<address type='drive'
/// controller='N'/>` of a disk or SCSI host device, written or derived from the target
/// name). libvirt adds every SCSI/SATA/IDE/FDC controller from 0 to the highest index a
/// drive address names, and gives each added controller a PCI slot of its own
/// (function 0: it never packs them into multifunction slots). A PCI domain has
/// `MAX_PCI_CONTROLLER_INDEX + 1` buses of `MAX_PCI_SLOT + 1` slots, so more controllers
/// of one type than that can never be placed; a larger index is refused before anything
/// is sized by it. (libvirt 9.0 itself runs out of PCI slots far earlier — at SATA
/// controller index 632 on q35 — and an index near `i32::MAX` made its daemon crash.)
pub const MAX_DRIVE_CONTROLLER: u32 =
    (MAX_PCI_CONTROLLER_INDEX + 1) * (MAX_PCI_SLOT as u32 + 1) - 1;
