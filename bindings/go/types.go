package devaddr

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Spec is what a guest needs: the machine, the placement policy and the devices
// (`devaddr schema spec`). Fields left zero are left out, so devaddr fills them in.
type Spec struct {
	Name    string         `json:"name,omitempty"`
	Machine string         `json:"machine"`
	Policy  map[string]any `json:"policy,omitempty"`
	Devices []Device       `json:"devices"`
}

// Device is one device of a spec or a plan. In a plan every device has its Address.
type Device struct {
	ID       string   `json:"id"`
	Kind     string   `json:"kind"`
	NUMANode *int     `json:"numa_node,omitempty"`
	Hotplug  *bool    `json:"hotplug,omitempty"`
	Bus      string   `json:"bus,omitempty"`
	Group    string   `json:"group,omitempty"`
	Host     string   `json:"host,omitempty"`
	Address  *Address `json:"address,omitempty"`
}

// Address is a PCI, USB or drive address, as the plan's JSON writes it (Type says
// which fields apply). A spec may pin a PCI address in KubeVirt's notation instead:
// PCIAddress("0000:03:00.0").
type Address struct {
	Type          string `json:"type"`
	Domain        *int   `json:"domain,omitempty"`
	Bus           *int   `json:"bus,omitempty"`
	Slot          *int   `json:"slot,omitempty"`
	Function      *int   `json:"function,omitempty"`
	Multifunction *bool  `json:"multifunction,omitempty"`
	Port          *int   `json:"port,omitempty"`
	Controller    *int   `json:"controller,omitempty"`
	Target        *int   `json:"target,omitempty"`
	Unit          *int   `json:"unit,omitempty"`
}

var pciNotation = regexp.MustCompile(`^([0-9a-fA-F]{4}):([0-9a-fA-F]{2}):([0-9a-fA-F]{2})\.([0-7])$`)

// PCIAddress reads an address in KubeVirt's notation "0000:BB:SS.F" (hexadecimal);
// nil when it is not one.
func PCIAddress(s string) *Address {
	m := pciNotation.FindStringSubmatch(s)
	if m == nil {
		return nil
	}
	n := make([]*int, 4)
	for i := range n {
		v, _ := strconv.ParseInt(m[i+1], 16, 32)
		x := int(v)
		n[i] = &x
	}
	return &Address{Type: "pci", Domain: n[0], Bus: n[1], Slot: n[2], Function: n[3]}
}

// PCI is a PCI address in the notation KubeVirt and lspci use: "0000:BB:SS.F"
// (hexadecimal domain, bus, slot, function); "" for an address of another type.
func (a *Address) PCI() string {
	if a == nil || a.Type != "pci" || a.Bus == nil || a.Slot == nil || a.Function == nil {
		return ""
	}
	domain := 0
	if a.Domain != nil {
		domain = *a.Domain
	}
	return fmt.Sprintf("%04x:%02x:%02x.%x", domain, *a.Bus, *a.Slot, *a.Function)
}

// Controller is a controller of a plan: the machine's own and every one devaddr added
// (root ports, bridges, expander buses per NUMA node, USB/SATA/SCSI controllers).
type Controller struct {
	ID       string   `json:"id"`
	Model    string   `json:"model"`
	Index    *int     `json:"index,omitempty"`
	NUMANode *int     `json:"numa_node,omitempty"`
	Hotplug  *bool    `json:"hotplug,omitempty"`
	Chassis  *int     `json:"chassis,omitempty"`
	Port     *int     `json:"port,omitempty"`
	BusNr    *int     `json:"bus_nr,omitempty"`
	Address  *Address `json:"address,omitempty"`
}

// Plan is the complete addressed topology (`devaddr schema plan`). Fields this package
// does not model stay in the JSON text, which JSON returns unchanged for replan and
// hotplug.
type Plan struct {
	Name        string         `json:"name,omitempty"`
	Machine     string         `json:"machine"`
	Policy      map[string]any `json:"policy,omitempty"`
	Controllers []Controller   `json:"controllers"`
	Devices     []Device       `json:"devices"`
	raw         string
}

// JSON is the plan exactly as devaddr wrote it (`devaddr plan --format json`).
func (p *Plan) JSON() string { return p.raw }

// Device is the device with this id, or nil.
func (p *Plan) Device(id string) *Device {
	for i := range p.Devices {
		if p.Devices[i].ID == id {
			return &p.Devices[i]
		}
	}
	return nil
}

// PCIController is the PCI controller with this index (the Bus of a device's PCI
// address), or nil. PCI controllers are libvirt's `pci` models, all named pci… or
// pcie…; other controllers (USB, SATA) number their indexes apart.
func (p *Plan) PCIController(index int) *Controller {
	for i := range p.Controllers {
		c := &p.Controllers[i]
		pci := strings.HasPrefix(c.Model, "pci")
		if pci && c.Index != nil && *c.Index == index {
			return c
		}
	}
	return nil
}

// NUMANodeOf is the NUMA node of the expander bus above PCI bus `bus` (false: none,
// the bus hangs from the root).
func (p *Plan) NUMANodeOf(bus int) (int, bool) {
	for seen := 0; seen < len(p.Controllers); seen++ {
		c := p.PCIController(bus)
		if c == nil {
			return 0, false
		}
		if c.NUMANode != nil {
			return *c.NUMANode, true
		}
		if c.Address == nil || c.Address.Bus == nil || *c.Address.Bus == bus {
			return 0, false
		}
		bus = *c.Address.Bus
	}
	return 0, false
}

func parsePlan(text string) (*Plan, error) {
	p := &Plan{raw: text}
	if err := json.Unmarshal([]byte(text), p); err != nil {
		return nil, fmt.Errorf("devaddr: reading the plan: %w", err)
	}
	return p, nil
}

// CapacityRow says how many more devices of a kind fit (`devaddr schema capacity`):
// now in the running guest (Live) and at its next boot (NextBoot). Node is nil for
// the guest as a whole.
type CapacityRow struct {
	Kind     string `json:"kind"`
	Node     *int   `json:"node"`
	Live     int    `json:"live"`
	NextBoot int    `json:"next_boot"`
}

// File is a device XML document to attach live (`virsh attach-device --live`).
type File struct {
	ID  string
	XML string
}
