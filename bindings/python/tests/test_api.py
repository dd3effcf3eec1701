"""The installed wheel: every function, byte-identical to the CLI, errors as typed
exceptions carrying the report's fields."""

import json
import os
import sys
import warnings

import pytest

import devaddr

ROWS_OF_E1000E = "machine: q35\ndevices:\n" + "".join(
    f"  - {{id: n{i}, kind: e1000e}}\n" for i in range(16)
)
CLASH = (
    "machine: q35\ndevices:\n"
    "- {id: a, kind: virtio-net, address: {type: pci, bus: 0, slot: 3, function: 0}}\n"
    "- {id: b, kind: virtio-net, address: {type: pci, bus: 0, slot: 3, function: 0}}\n"
)


def test_the_installed_wheel_is_what_runs():
    here = os.path.dirname(devaddr.__file__)
    assert here.startswith(sys.prefix), f"{here} is not in the environment {sys.prefix}"
    native = [f for f in os.listdir(here) if f.startswith("_devaddr") and f.endswith(".so")]
    assert native and all(".abi3." in f for f in native), native
    assert os.path.exists(os.path.join(here, "py.typed"))
    assert os.path.exists(os.path.join(here, "_devaddr.pyi"))


def test_version_is_the_clis(cli):
    code, out, _ = cli("--version")
    assert code == 0
    assert out.strip() == f"devaddr {devaddr.version()}" == f"devaddr {devaddr.__version__}"


def outcome(call):
    """(exit code, output, stderr) of a call, as the CLI would end and print it."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            out = call()
        except devaddr.DevaddrError as e:
            return (2 if isinstance(e, devaddr.InputError) else 1, "", e.text)
    return (0, out, "".join(f"warning: {w.message}\n" for w in caught))


def test_every_spec_plans_byte_identically_to_the_cli(cli, spec_files, root):
    for spec in spec_files:
        rel = str(spec.relative_to(root))
        text = spec.read_text()
        for fmt in ("yaml", "json", "libvirt", "qemu"):
            want = cli("plan", rel, "--format", fmt, cwd=root)
            assert outcome(lambda: devaddr.plan_text(text, fmt, name=rel)) == want, f"{rel} {fmt}"
        # A dict in, a dict out: the CLI's JSON plan.
        as_dict = json.loads(cli("plan", rel, "--format", "json", cwd=root)[1])
        assert devaddr.plan(as_dict) == devaddr.plan(text) == as_dict, rel


def test_domain_plan_and_capacity_are_the_clis(cli, root):
    guest = root / "bindings/c/tests/guest.xml"
    xml = guest.read_text()
    assert devaddr.plan_domain(xml, name=str(guest)) == cli("plan", str(guest))[1]
    assert devaddr.plan_domain(xml, True, name=str(guest)) == cli("plan", str(guest), "--new-domain")[1]
    rows = devaddr.capacity(xml, ["virtio-net", "virtio-blk"], name=str(guest))
    code, out, _ = cli("capacity", str(guest), "--kind", "virtio-net", "--kind", "virtio-blk", "--format", "json")
    assert code == 0 and rows == json.loads(out)
    # The domain's plan leaves its USB tablet and SATA cdrom out: a warning says so.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        devaddr.plan_domain(xml, format="yaml")
    assert any(issubclass(w.category, devaddr.DevaddrWarning) and "left out" in str(w.message) for w in caught)


def test_capacity_bar64_is_the_clis(cli, root):
    spec = "tests/firmware-specs/q35-uefi-hotplug-bar64.yaml"
    plan = cli("plan", spec, cwd=root)[1]
    for size in ("64G", "128G", "256G"):
        rows = devaddr.capacity(plan, ["vfio-pci"], bar64=size)
        code, out, _ = cli("capacity", spec, "--kind", "vfio-pci", "--bar64", size, "--format", "json", cwd=root)
        assert code == 0 and rows == json.loads(out), size
    with pytest.raises(devaddr.InputError) as e:
        devaddr.capacity(plan, ["vfio-pci"], bar64="100G")
    assert e.value.location["path"] == "bar64" and "power of two" in e.value.message


def test_bad_input_raises_input_error_with_the_location(cli, tmp_path):
    with pytest.raises(devaddr.InputError) as e:
        devaddr.plan("machine: q35\ndevices:\n- {id: a, kind: virtio-nett}\n", name="vm.yaml")
    err = e.value
    assert isinstance(err, devaddr.DevaddrError)
    assert (err.kind, err.code, err.file, err.path, err.line, err.column) == (
        "input", "unknown-name", "vm.yaml", "devices[0].kind", 3, 17)
    assert "did you mean virtio-net?" in err.message
    # Every problem at once, and the same report as the CLI's, text and JSON.
    spec = "machine: q35\ndevices:\n- {id: a, kind: virtio-nett}\n- {id: b, kind: e1000x}\n"
    with pytest.raises(devaddr.InputError) as e:
        devaddr.plan(spec, name="vm.yaml")
    err = e.value
    assert [(p["code"], p["location"]["line"]) for p in err.errors] == [("unknown-name", 3), ("unknown-name", 4)]
    assert err.code == err.errors[0]["code"] and err.location == err.errors[0]["location"]
    f = tmp_path / "vm.yaml"
    f.write_text(spec)
    code, _, stderr = cli("plan", str(f))
    assert code == 2
    assert err.text.replace("vm.yaml", str(f)) == stderr
    code, _, stderr = cli("--error-format", "json", "plan", str(f))
    assert json.loads(stderr.replace(str(f), "vm.yaml")) == err.report
    with pytest.raises(devaddr.InputError) as e:
        devaddr.plan_text("machine: q35\ndevices: []\n", "xml")
    assert e.value.code == "unknown-value" and "expected yaml, json" in e.value.message
    with pytest.raises(devaddr.InputError):
        devaddr.plan_domain("<domain><devices>")
    with pytest.raises(devaddr.InputError):
        devaddr.models("q36")


def test_infeasible_raises_with_binding_requirement_and_fix():
    with pytest.raises(devaddr.InfeasibleError) as e:
        devaddr.plan(ROWS_OF_E1000E)
    err = e.value
    assert isinstance(err, devaddr.DevaddrError)
    assert err.kind == "infeasible" and err.binding == "io-windows" == err.code
    assert err.requirement == err.message and err.fix
    # firmware: any (the default) plans within OVMF's 9 I/O windows on q35.
    assert err.report["errors"][0]["available"] == 9


def test_check_raises_check_error_with_the_findings():
    planned = devaddr.plan_text("machine: q35\ndevices: [{id: a, kind: virtio-net}]\n")
    assert devaddr.check(planned) is None
    with pytest.raises(devaddr.CheckError) as e:
        devaddr.check(CLASH, name="clash.yaml")
    err = e.value
    assert isinstance(err, devaddr.DevaddrError)
    assert err.kind == "check" and err.file == "clash.yaml"
    assert any(f["rule"] == "unique-address" and f["subject"]["id"] == "b" for f in err.findings)


def test_replan_hotplug_capacity_models():
    spec = {"machine": "q35", "policy": {"hotplug_reserve": 2},
            "devices": [{"id": "net0", "kind": "virtio-net"}, {"id": "disk0", "kind": "virtio-blk"}]}
    first = devaddr.plan(spec)
    addr = {d["id"]: d["address"] for d in first["devices"]}
    # Replan without disk0, with a new NIC: net0 stays.
    r = devaddr.replan({**spec, "devices": [spec["devices"][0], {"id": "net1", "kind": "virtio-net"}]}, first)
    assert r.moves == [] and r.to_dict()["plan"] == r.plan
    assert {d["id"]: d["address"] for d in r.plan["devices"]}["net0"] == addr["net0"]
    # Hotplug: the controllers stay, the new NIC gets an address; its device XML.
    new = [{"id": "net9", "kind": "virtio-net"}]
    after = devaddr.hotplug(first, new)
    assert after["controllers"] == first["controllers"]
    placed = {d["id"]: d["address"] for d in after["devices"]}["net9"]
    xml = devaddr.hotplug_devices(first, new)
    assert list(xml) == ["net9"]
    assert f"bus='0x{placed['bus']:02x}' slot='0x{placed['slot']:02x}'" in xml["net9"]
    # Capacity: the reserve of 2 hotpluggable ports is what fits live.
    rows = devaddr.capacity(first, ["virtio-net"])
    assert rows == [{"kind": "virtio-net", "node": None, "live": 2, "next_boot": rows[0]["next_boot"]}]
    assert "pcie-root-port" in json.dumps(devaddr.models("q35"))


def test_the_gil_is_released_while_planning(spec_files):
    """With the switch interval made huge, a thread that holds the GIL keeps it until it
    blocks or releases it. A counting thread is let go just before the call: if devaddr
    releases the GIL, the counter can run to its end before the caller gets the GIL back;
    if it held it, the counter cannot move at all while the call runs. Whether the counter
    is scheduled within one short call depends on the machine's load, so the call is tried
    up to 50 times: one attempt that sees the whole count proves the GIL was released, and
    a devaddr that held it fails every attempt."""
    import threading

    spec = spec_files[0].read_text()
    limit = 100_000
    seen_all = []
    for _ in range(50):
        count = [0]
        go = threading.Event()

        def counter():
            go.wait()
            while count[0] < limit:
                count[0] += 1

        t = threading.Thread(target=counter)
        interval = sys.getswitchinterval()
        t.start()
        sys.setswitchinterval(1000.0)
        try:
            go.set()
            devaddr.plan_text(spec, "json")
            seen = count[0]
        finally:
            sys.setswitchinterval(interval)
            t.join()
        seen_all.append(seen)
        if seen == limit:
            break
    assert seen_all[-1] == limit, f"the counter never ran to its end while devaddr planned: {seen_all}"
