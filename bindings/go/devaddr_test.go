package devaddr

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// cli runs the devaddr command the package is compared with (DEVADDR_BIN, run from
// DEVADDR_ROOT): exit code, stdout, stderr.
func cli(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	bin, root := os.Getenv("DEVADDR_BIN"), os.Getenv("DEVADDR_ROOT")
	if bin == "" || root == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI must run this test, but DEVADDR_BIN/DEVADDR_ROOT are not set")
		}
		t.Skip("DEVADDR_BIN and DEVADDR_ROOT are not set (run through cargo test)")
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = root
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	code := 0
	if err := cmd.Run(); err != nil {
		var exit *exec.ExitError
		if !errors.As(err, &exit) {
			t.Fatalf("devaddr %v: %v", args, err)
		}
		code = exit.ExitCode()
	}
	return code, out.String(), errOut.String()
}

func intp(n int) *int { return &n }

// vmi is a KubeVirt-like guest: n interfaces on alternate nodes, and a GPU on each of
// the two NUMA nodes, passed through from the host.
func vmi(n int) *Spec {
	s := &Spec{Machine: "q35", Policy: map[string]any{"numa_nodes": 2}}
	for i := 0; i < n; i++ {
		s.Devices = append(s.Devices, Device{ID: "net" + string(rune('a'+i)), Kind: "virtio-net", NUMANode: intp(i % 2)})
	}
	s.Devices = append(s.Devices,
		Device{ID: "gpu0", Kind: "vfio-pci", NUMANode: intp(0), Host: "0000:3b:00.0"},
		Device{ID: "gpu1", Kind: "vfio-pci", NUMANode: intp(1), Host: "0000:af:00.0"})
	return s
}

var kubevirtNotation = regexp.MustCompile(`^0000:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$`)

func TestVMIDevicesSitOnTheirNUMANodesInKubeVirtNotation(t *testing.T) {
	spec := vmi(6)
	plan, err := PlanSpec(spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]string{}
	for _, want := range spec.Devices {
		d := plan.Device(want.ID)
		if d == nil {
			t.Fatalf("%s is not in the plan", want.ID)
		}
		addr := d.Address.PCI()
		if !kubevirtNotation.MatchString(addr) {
			t.Fatalf("%s: %q is not in KubeVirt's notation", d.ID, addr)
		}
		if other, dup := seen[addr]; dup {
			t.Fatalf("%s and %s share %s", d.ID, other, addr)
		}
		seen[addr] = d.ID
		node, ok := plan.NUMANodeOf(*d.Address.Bus)
		if !ok || node != *want.NUMANode {
			t.Fatalf("%s at %s: NUMA node %d (%v), want %d", d.ID, addr, node, ok, *want.NUMANode)
		}
		// The notation reads back to the same address.
		back := PCIAddress(addr)
		if back == nil || back.PCI() != addr {
			t.Fatalf("%s does not read back: %+v", addr, back)
		}
	}
	// Replanned with two more interfaces (a VMI edited; on no NUMA node, as the
	// expanders' bus ranges are sized for what is below them), the GPUs keep their
	// addresses.
	bigger := vmi(6)
	bigger.Devices = append(bigger.Devices,
		Device{ID: "extra0", Kind: "virtio-net"}, Device{ID: "extra1", Kind: "virtio-net"})
	again, _, err := Replan(bigger, plan, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"gpu0", "gpu1"} {
		if got, want := again.Device(id).Address.PCI(), plan.Device(id).Address.PCI(); got != want {
			t.Fatalf("%s moved from %s to %s", id, want, got)
		}
	}
}

// whole is the row for the guest as a whole (Node nil).
func whole(rows []CapacityRow) CapacityRow {
	for _, r := range rows {
		if r.Node == nil {
			return r
		}
	}
	return CapacityRow{Live: -1}
}

func TestCapacityForHotplug(t *testing.T) {
	spec := vmi(2)
	spec.Policy["hotplug_reserve"] = 3
	plan, err := PlanSpec(spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := Capacity(plan.JSON(), []string{"virtio-net"}, -1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if whole(rows).Live != 3 {
		t.Fatalf("capacity: %+v, want 3 live virtio-net", rows)
	}
	// Exactly that many hot-add; the next is infeasible, with the binding and a fix.
	var add []Device
	for i := 0; i < 3; i++ {
		add = append(add, Device{ID: "hot" + string(rune('0'+i)), Kind: "virtio-net"})
	}
	after, err := Hotplug(plan, add, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range add {
		if !kubevirtNotation.MatchString(after.Device(d.ID).Address.PCI()) {
			t.Fatalf("%s has no PCI address", d.ID)
		}
	}
	files, err := HotplugDevices(plan, add, nil)
	if err != nil || len(files) != 3 || files[0].ID != "hot0" || !strings.Contains(files[0].XML, "<address type='pci'") {
		t.Fatalf("device XML: %+v, %v", files, err)
	}
	rows, err = Capacity(after.JSON(), []string{"virtio-net"}, -1, nil)
	if err != nil || whole(rows).Live != 0 {
		t.Fatalf("capacity after: %+v, %v", rows, err)
	}
	_, err = Hotplug(after, []Device{{ID: "one-more", Kind: "virtio-net"}}, nil)
	var e *Error
	if !errors.As(err, &e) || e.Kind != KindInfeasible || e.Binding == "" || e.Fix == "" {
		t.Fatalf("one more: %#v", err)
	}
}

// CapacityBar64 counts what `devaddr capacity --bar64` counts: live, only the ports that
// keep that much 64-bit room; a size that is no power of two is bad input at bar64.
func TestCapacityBar64IsTheCLIs(t *testing.T) {
	spec := "tests/firmware-specs/q35-uefi-hotplug-bar64.yaml"
	code, out, _ := cli(t, "plan", spec, "--format", "json")
	if code != 0 {
		t.Fatalf("plan %s: exit %d", spec, code)
	}
	for _, size := range []string{"64G", "128G", "256G"} {
		rows, err := CapacityBar64(out, []string{"vfio-pci"}, -1, size, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, want, _ := cli(t, "capacity", spec, "--kind", "vfio-pci", "--bar64", size, "--format", "json")
		var wantRows []CapacityRow
		if err := json.Unmarshal([]byte(want), &wantRows); err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(rows) != fmt.Sprint(wantRows) {
			t.Fatalf("--bar64 %s: %+v, the CLI says %+v", size, rows, wantRows)
		}
	}
	_, err := CapacityBar64(out, []string{"vfio-pci"}, -1, "100G", nil)
	var e *Error
	if !errors.As(err, &e) || e.Kind != KindInput || e.Location.Path != "bar64" {
		t.Fatalf("100G: %#v", err)
	}
}

func TestBadInputIsTheTypedError(t *testing.T) {
	_, err := PlanText("machine: q35\ndevices:\n- {id: a, kind: virtio-nett}\n- {id: b, kind: e1000x}\n", "", "", &Options{Name: "vmi.yaml"})
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("not an *Error: %#v", err)
	}
	if e.Kind != KindInput || e.Code != "unknown-name" || e.Location.File != "vmi.yaml" ||
		e.Location.Path != "devices[0].kind" || e.Location.Line != 3 || len(e.Problems) != 2 {
		t.Fatalf("%+v", e)
	}
	if !strings.Contains(e.Message, "did you mean virtio-net?") || !strings.HasPrefix(e.Error(), "error: vmi.yaml: line 3") {
		t.Fatalf("%q / %q", e.Message, e.Error())
	}
	if _, err := PlanText("machine: q35\ndevices: []\n", "xml", "", nil); !errors.As(err, &e) || e.Code != "unknown-value" {
		t.Fatalf("unknown format: %#v", err)
	}
	clash := "machine: q35\ndevices:\n" +
		"- {id: a, kind: virtio-net, address: \"0000:00:03.0\"}\n" +
		"- {id: b, kind: virtio-net, address: \"0000:00:03.0\"}\n"
	if err := Check(clash, nil); !errors.As(err, &e) || e.Kind != KindCheck || len(e.Findings) == 0 || e.Findings[0].Rule == "" {
		t.Fatalf("check: %#v", err)
	}
	if _, err := Models("q36", nil); !errors.As(err, &e) || e.Kind != KindInput {
		t.Fatalf("models: %#v", err)
	}
	if LibraryABIVersion() != ABIVersion {
		t.Fatalf("libdevaddr ABI %d, this package %d", LibraryABIVersion(), ABIVersion)
	}
}

// outcome is a call as the CLI would end it: exit code, stdout, stderr.
func outcome(r *Result, err error) (int, string, string) {
	var e *Error
	if errors.As(err, &e) {
		if e.Kind == KindInput {
			return 2, "", e.Text
		}
		return 1, "", e.Text
	}
	var warnings strings.Builder
	for _, w := range r.Warnings {
		warnings.WriteString("warning: " + w + "\n")
	}
	return 0, r.Output, warnings.String()
}

func TestEverySpecPlansByteIdenticallyToTheCLI(t *testing.T) {
	cli(t, "--version") // skips without the CLI
	root := os.Getenv("DEVADDR_ROOT")
	var specs []string
	for _, dir := range []string{"examples", "tests/qemu-specs"} {
		m, _ := filepath.Glob(filepath.Join(root, dir, "*.yaml"))
		specs = append(specs, m...)
	}
	if len(specs) < 20 {
		t.Fatalf("only %d specs", len(specs))
	}
	for _, path := range specs {
		rel, _ := filepath.Rel(root, path)
		text, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, format := range []string{"yaml", "json", "libvirt", "qemu"} {
			code, out, errOut := cli(t, "plan", rel, "--format", format)
			gc, gout, gerr := outcome(PlanText(string(text), format, "", &Options{Name: rel}))
			if gc != code || gout != out || gerr != errOut {
				t.Fatalf("%s --format %s: Go (%d, %d bytes, %q) differs from the CLI (%d, %d bytes, %q)",
					rel, format, gc, len(gout), gerr, code, len(out), errOut)
			}
		}
	}
	_, version, _ := cli(t, "--version")
	if strings.TrimSpace(version) != "devaddr "+Version() {
		t.Fatalf("version %q, the CLI's %q", Version(), version)
	}
}

func TestGoroutinesPlanAlike(t *testing.T) {
	spec := vmi(12)
	want, err := PlanSpec(spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	got := make([]string, 8)
	for i := range got {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if p, err := PlanSpec(spec, nil); err == nil {
				got[i] = p.JSON()
			}
		}(i)
	}
	wg.Wait()
	for i, g := range got {
		if g != want.JSON() {
			t.Fatalf("goroutine %d planned differently", i)
		}
	}
}
