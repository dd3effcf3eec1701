// Package devaddr plans device addresses (PCI/PCIe, USB, drive) for QEMU/KVM guests:
// from a minimal spec, or a libvirt domain XML, to every device's address and every
// controller the guest needs. It calls libdevaddr (the C ABI, bindings/c) through cgo,
// found with pkg-config (`bindings/c/install.sh PREFIX`, then
// PKG_CONFIG_PATH=PREFIX/lib/pkgconfig); standard library only.
//
// The output is byte-identical to the `devaddr` command's. Every function may be
// called from many goroutines at once. Failures are *Error values with the CLI's
// report (kind, code, location, message, binding requirement and fix, findings).
//
//	plan, err := devaddr.PlanSpec(&devaddr.Spec{Machine: "q35",
//		Devices: []devaddr.Device{{ID: "net0", Kind: "virtio-net"}}}, nil)
//	fmt.Println(plan.Device("net0").Address.PCI()) // 0000:01:00.0
package devaddr

/*
#cgo pkg-config: devaddr
#include <stdlib.h>
#include "devaddr.h"
*/
import "C"

import (
	"encoding/json"
	"fmt"
	"unsafe"
)

// ABIVersion is the C ABI this package was written for.
const ABIVersion = 2

// Options of a call; nil means the defaults.
type Options struct {
	Name      string // how errors name the input (a file name)
	OtherName string // how errors name the previous plan or the devices to add
	WorkLimit uint64 // the search budget of each integer program; 0: the default
	ModelsDir string // a hardware catalog laid out like models/; "": the built-in one
}

// Result is what a successful call produced besides its output: the CLI's warnings
// (without `warning: `), moves (`moved ID: FROM -> TO (REASON)`) and device files.
type Result struct {
	Output   string
	Warnings []string
	Moves    []string
	Files    []File
}

// cstr is a C copy of s (nil for ""), and the function that frees it.
func cstr(s string) (*C.char, func()) {
	if s == "" {
		return nil, func() {}
	}
	p := C.CString(s)
	return p, func() { C.free(unsafe.Pointer(p)) }
}

// call runs one C function with the options in C memory, reads its result and frees
// it.
func call(opts *Options, f func(o *C.DevaddrOptions) *C.DevaddrResult) (*Result, error) {
	var o C.DevaddrOptions
	if opts != nil {
		name, free1 := cstr(opts.Name)
		defer free1()
		other, free2 := cstr(opts.OtherName)
		defer free2()
		models, free3 := cstr(opts.ModelsDir)
		defer free3()
		o.name, o.other_name, o.models_dir = name, other, models
		o.work_limit = C.uint64_t(opts.WorkLimit)
	}
	r := f(&o)
	defer C.devaddr_result_free(r)
	if C.devaddr_result_status(r) != C.DEVADDR_OK {
		e := &Error{Text: C.GoString(C.devaddr_result_error_text(r))}
		report := C.GoString(C.devaddr_result_error_json(r))
		if err := json.Unmarshal([]byte(report), e); err != nil {
			return nil, fmt.Errorf("devaddr: reading the error report %q: %w", report, err)
		}
		if len(e.Problems) > 0 {
			e.Problem = e.Problems[0]
		}
		return nil, e
	}
	res := &Result{Output: C.GoString(C.devaddr_result_output(r))}
	for i := C.size_t(0); i < C.devaddr_result_warning_count(r); i++ {
		res.Warnings = append(res.Warnings, C.GoString(C.devaddr_result_warning(r, i)))
	}
	for i := C.size_t(0); i < C.devaddr_result_move_count(r); i++ {
		res.Moves = append(res.Moves, C.GoString(C.devaddr_result_move(r, i)))
	}
	for i := C.size_t(0); i < C.devaddr_result_file_count(r); i++ {
		res.Files = append(res.Files, File{
			ID:  C.GoString(C.devaddr_result_file_id(r, i)),
			XML: C.GoString(C.devaddr_result_file_text(r, i)),
		})
	}
	return res, nil
}

// PlanText plans a spec or plan (YAML/JSON text; a domain XML is addressed as
// PlanDomain does) as `devaddr plan --format FORMAT` does: "yaml" (or ""), "json",
// "tree", "dot", "svg", "qemu" or "libvirt". policy ("" for the spec's own) overrides
// the preset.
func PlanText(spec, format, policy string, opts *Options) (*Result, error) {
	s, f1 := cstr(spec)
	defer f1()
	f, f2 := cstr(format)
	defer f2()
	p, f3 := cstr(policy)
	defer f3()
	return call(opts, func(o *C.DevaddrOptions) *C.DevaddrResult {
		return C.devaddr_plan(s, f, p, o)
	})
}

// PlanSpec plans a spec: the plan with every device's address and every controller.
func PlanSpec(spec *Spec, opts *Options) (*Plan, error) {
	text, err := json.Marshal(spec)
	if err != nil {
		return nil, err
	}
	r, err := PlanText(string(text), "json", "", opts)
	if err != nil {
		return nil, err
	}
	return parsePlan(r.Output)
}

// PlanDomain addresses a libvirt domain XML as libvirt would (newDomain: as `virsh
// define` does a new domain): the domain XML with every address and controller.
func PlanDomain(xml string, newDomain bool, opts *Options) (string, error) {
	x, f1 := cstr(xml)
	defer f1()
	r, err := call(opts, func(o *C.DevaddrOptions) *C.DevaddrResult {
		return C.devaddr_plan_domain(x, C.bool(newDomain), nil, o)
	})
	if err != nil {
		return "", err
	}
	return r.Output, nil
}

// Replan plans spec again keeping every address and controller of previous
// (allowMoves: move the fewest devices needed instead of failing; the moves are
// returned).
func Replan(spec *Spec, previous *Plan, allowMoves bool, opts *Options) (*Plan, []string, error) {
	text, err := json.Marshal(spec)
	if err != nil {
		return nil, nil, err
	}
	s, f1 := cstr(string(text))
	defer f1()
	p, f2 := cstr(previous.raw)
	defer f2()
	f, f3 := cstr("json")
	defer f3()
	r, err := call(opts, func(o *C.DevaddrOptions) *C.DevaddrResult {
		return C.devaddr_replan(s, p, C.bool(allowMoves), f, o)
	})
	if err != nil {
		return nil, nil, err
	}
	plan, err := parsePlan(r.Output)
	return plan, r.Moves, err
}

func hotplug(running *Plan, add []Device, format string, opts *Options) (*Result, error) {
	devices, err := json.Marshal(add)
	if err != nil {
		return nil, err
	}
	p, f1 := cstr(running.raw)
	defer f1()
	a, f2 := cstr(string(devices))
	defer f2()
	f, f3 := cstr(format)
	defer f3()
	return call(opts, func(o *C.DevaddrOptions) *C.DevaddrResult {
		return C.devaddr_hotplug(p, a, f, o)
	})
}

// Hotplug places add into the running guest planned as running: nothing moves, no
// controller is added; the updated plan.
func Hotplug(running *Plan, add []Device, opts *Options) (*Plan, error) {
	r, err := hotplug(running, add, "json", opts)
	if err != nil {
		return nil, err
	}
	return parsePlan(r.Output)
}

// HotplugDevices is Hotplug's device XML to attach live, one File per device, in
// attach order.
func HotplugDevices(running *Plan, add []Device, opts *Options) ([]File, error) {
	r, err := hotplug(running, add, "libvirt", opts)
	if err != nil {
		return nil, err
	}
	return r.Files, nil
}

// Capacity says how many more devices of each kind fit in input (a spec, planned
// first; a plan's JSON; or a domain XML), for the given kinds (nil: the machine's
// representative set) on NUMA node `node` (-1: all).
func Capacity(input string, kinds []string, node int, opts *Options) ([]CapacityRow, error) {
	return CapacityBar64(input, kinds, node, "", opts)
}

// CapacityBar64 is Capacity for devices with a 64-bit BAR of bar64 (`128G`, as
// `devaddr capacity --bar64`; "": none): live, only ports that keep that much 64-bit
// room count; at next boot, what the 64-bit aperture holds.
func CapacityBar64(input string, kinds []string, node int, bar64 string, opts *Options) ([]CapacityRow, error) {
	in, f1 := cstr(input)
	defer f1()
	b, f3 := cstr(bar64)
	defer f3()
	f, f2 := cstr("json")
	defer f2()
	ks := make([]*C.char, len(kinds))
	for i, k := range kinds {
		ks[i] = C.CString(k)
		defer C.free(unsafe.Pointer(ks[i]))
	}
	// The array of pointers lives in C memory (cgo rules: no Go pointers to Go
	// pointers).
	arr := (**C.char)(C.malloc(C.size_t(len(ks)+1) * C.size_t(unsafe.Sizeof((*C.char)(nil)))))
	defer C.free(unsafe.Pointer(arr))
	copy(unsafe.Slice(arr, len(ks)), ks)
	r, err := call(opts, func(o *C.DevaddrOptions) *C.DevaddrResult {
		return C.devaddr_capacity(in, arr, C.size_t(len(ks)), C.int64_t(node), b, false, f, o)
	})
	if err != nil {
		return nil, err
	}
	var rows []CapacityRow
	if err := json.Unmarshal([]byte(r.Output), &rows); err != nil {
		return nil, fmt.Errorf("devaddr: reading the capacity rows: %w", err)
	}
	return rows, nil
}

// Check verifies a plan, a fully addressed spec or a domain XML: nil when valid, an
// *Error of kind "check" with the Findings when not.
func Check(input string, opts *Options) error {
	in, f1 := cstr(input)
	defer f1()
	_, err := call(opts, func(o *C.DevaddrOptions) *C.DevaddrResult {
		return C.devaddr_check(in, nil, o)
	})
	return err
}

// Models is the hardware catalog (name "") or one machine, controller model or device
// kind, as JSON (`devaddr models [NAME] --format json`).
func Models(name string, opts *Options) (json.RawMessage, error) {
	n, f1 := cstr(name)
	defer f1()
	f, f2 := cstr("json")
	defer f2()
	r, err := call(opts, func(o *C.DevaddrOptions) *C.DevaddrResult {
		return C.devaddr_models(n, f, o)
	})
	if err != nil {
		return nil, err
	}
	return json.RawMessage(r.Output), nil
}

// Version is devaddr's version.
func Version() string { return C.GoString(C.devaddr_version()) }

// LibraryABIVersion is the ABI version of the libdevaddr loaded (compare ABIVersion).
func LibraryABIVersion() uint32 { return uint32(C.devaddr_abi_version()) }
