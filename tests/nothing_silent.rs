//! Nothing silent (issue 11): every substitution devaddr makes and every option that does
//! not apply is said on stderr (`warning: …`, exit 0) or refused (exit 2 naming
//! the option and why); and the spec's ids travel through libvirt as `ua-` aliases.

mod common;

use std::process::Output;

fn devaddr(args: &[&str], stdin: Option<&str>) -> Output {
    common::run(args, stdin.map(str::as_bytes))
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Exit code 0 and no warning at all.
fn quiet(o: &Output, what: &str) {
    assert_eq!(o.status.code(), Some(0), "{what}: {}", err(o));
    assert!(!err(o).contains("warning"), "{what}: {}", err(o));
}

/// Exit code 0 and a warning holding every one of `words`.
fn warns(o: &Output, what: &str, words: &[&str]) {
    assert_eq!(o.status.code(), Some(0), "{what}: {}", err(o));
    let e = err(o);
    assert!(e.starts_with("warning: "), "{what}: {e}");
    for w in words {
        assert!(e.contains(w), "{what}: no `{w}` in: {e}");
    }
}

/// Exit code 2 and an error holding every one of `words`.
fn refuses(o: &Output, what: &str, words: &[&str]) {
    assert_eq!(o.status.code(), Some(2), "{what}: {}{}", out(o), err(o));
    let e = err(o);
    for w in words {
        assert!(e.contains(w), "{what}: no `{w}` in: {e}");
    }
}

const VFIO: &str =
    "machine: q35\ndevices:\n  - {id: net0, kind: virtio-net}\n  - {id: gpu, kind: vfio-pci}\n";

fn example(name: &str) -> String {
    format!("{}/examples/{name}.yaml", env!("CARGO_MANIFEST_DIR"))
}

/// A domain as `virsh dumpxml` gives it: a NIC with a user alias, a SATA disk, a tablet.
const DOMAIN: &str = "<domain type='qemu'>
  <name>silent</name>
  <os><type arch='x86_64' machine='q35'>hvm</type></os>
  <devices>
    <interface type='user'><model type='virtio'/><alias name='ua-uplink'/></interface>
    <disk type='file' device='disk'><source file='/x.img'/><target dev='sda' bus='sata'/></disk>
    <input type='tablet' bus='usb'/>
  </devices>
</domain>
";

#[test]
fn a_vfio_stand_in_in_qemu_output_is_announced() {
    let o = devaddr(&["plan", "-", "--format", "qemu"], Some(VFIO));
    warns(
        &o,
        "vfio without host",
        &["`gpu`", "vfio-pci", "virtio-rng-pci", "host:"],
    );
    assert!(out(&o).contains("virtio-rng-pci,id=gpu"), "{}", out(&o));
    // With its host, the real device and no warning.
    let with_host = VFIO.replace("vfio-pci}", "vfio-pci, host: \"0000:65:00.0\"}");
    let o = devaddr(&["plan", "-", "--format", "qemu"], Some(&with_host));
    quiet(&o, "vfio with host");
    assert!(out(&o).contains("vfio-pci,id=gpu"), "{}", out(&o));
    assert!(out(&o).contains("host=0000:65:00.0"), "{}", out(&o));
    // Other formats write the plan as it is: nothing to announce.
    for f in ["yaml", "json", "tree"] {
        quiet(&devaddr(&["plan", "-", "--format", f], Some(VFIO)), f);
    }
    // Hot-adding one as QMP commands says the same.
    let plan = common::tmp_file(
        "devaddr-silent",
        "plan.yaml",
        out(&devaddr(&["plan", &example("q35-basic")], None)),
    );
    let add = common::tmp_file(
        "devaddr-silent",
        "add.yaml",
        "- {id: gpu9, kind: vfio-pci}\n",
    );
    let o = devaddr(&["hotplug", &plan, "--add", &add, "--format", "qemu"], None);
    warns(&o, "hotplug qmp", &["`gpu9`", "virtio-rng-pci"]);
    let o = devaddr(&["hotplug", &plan, "--add", &add, "--format", "yaml"], None);
    quiet(&o, "hotplug yaml");
}

#[test]
fn options_that_do_not_apply_are_refused() {
    let o = devaddr(&["plan", "-", "--policy", "dense"], Some(DOMAIN));
    refuses(
        &o,
        "--policy on a domain",
        &["--policy", "libvirt's own rules"],
    );
    let o = devaddr(&["plan", "-", "--new-domain"], Some(VFIO));
    refuses(&o, "--new-domain on a spec", &["--new-domain", "spec"]);
    // --policy on a spec and --new-domain on a domain apply.
    quiet(
        &devaddr(&["plan", "-", "--policy", "dense"], Some(VFIO)),
        "--policy",
    );
    quiet(
        &devaddr(&["plan", "-", "--new-domain"], Some(DOMAIN)),
        "--new-domain",
    );
}

#[test]
fn hotplug_output_dir_goes_with_libvirt_output() {
    let dir = common::scratch("devaddr-silent-dir");
    let plan = dir.join("plan.yaml");
    std::fs::write(&plan, out(&devaddr(&["plan", &example("q35-basic")], None))).unwrap();
    let add = dir.join("add.yaml");
    std::fs::write(&add, "- {id: nic9, kind: virtio-net}\n").unwrap();
    let (plan, add) = (plan.to_str().unwrap(), add.to_str().unwrap());
    let new = dir.join("new");
    let new_s = new.to_str().unwrap();
    for f in ["yaml", "json", "qemu"] {
        let o = devaddr(
            &[
                "hotplug",
                plan,
                "--add",
                add,
                "--format",
                f,
                "--output-dir",
                new_s,
            ],
            None,
        );
        refuses(&o, f, &["--output-dir", "--format libvirt"]);
        assert!(!new.exists(), "{f}: created {new_s}");
    }
    // With libvirt output: one file per new device, and -o gets the XML as well.
    let all = dir.join("all.xml");
    let o = devaddr(
        &[
            "hotplug",
            plan,
            "--add",
            add,
            "--format",
            "libvirt",
            "--output-dir",
            new_s,
            "-o",
            all.to_str().unwrap(),
        ],
        None,
    );
    quiet(&o, "libvirt output dir");
    let one = std::fs::read_to_string(new.join("nic9.xml")).unwrap();
    assert!(one.contains("<alias name='ua-nic9'/>"), "{one}");
    assert_eq!(std::fs::read_to_string(&all).unwrap(), one);
}

#[test]
fn options_without_effect_are_warned_about() {
    let o = devaddr(
        &["capacity", &example("pc"), "--live", "--format", "json"],
        None,
    );
    warns(&o, "capacity --live json", &["--live", "next_boot"]);
    quiet(
        &devaddr(&["capacity", &example("pc"), "--live"], None),
        "capacity --live table",
    );
    let o = devaddr(&["schema", "spec", "--work-limit", "5"], None);
    warns(&o, "schema --work-limit", &["--work-limit", "`schema`"]);
    let models = format!("{}/models", env!("CARGO_MANIFEST_DIR"));
    let o = devaddr(&["completions", "bash", "--models", &models], None);
    warns(&o, "completions --models", &["--models", "`completions`"]);
    quiet(
        &devaddr(&["models", "q35", "--models", &models], None),
        "models --models",
    );
    quiet(&devaddr(&["schema", "plan"], None), "schema");
}

#[test]
fn the_plan_of_a_domain_says_what_it_leaves_out() {
    let o = devaddr(&["plan", "-", "--format", "yaml"], Some(DOMAIN));
    warns(&o, "domain plan", &["left out", "sda (drive address)"]);
    // The user alias names the NIC.
    assert!(out(&o).contains("id: uplink"), "{}", out(&o));
    // A domain with PCI devices only: nothing to say.
    let pci_only = DOMAIN
        .lines()
        .filter(|l| !l.contains("<disk") && !l.contains("<input"))
        .collect::<Vec<_>>()
        .join("\n");
    let o = devaddr(&["plan", "-", "--format", "yaml"], Some(&pci_only));
    // libvirt's q35 defaults add a USB controller (PCI) and nothing else with another address.
    quiet(&o, "pci-only domain");
}

#[test]
fn a_passed_through_device_added_to_a_domain_needs_its_host() {
    // The guest as libvirt keeps it: every address filled in.
    let complete = out(&devaddr(&["plan", "-", "--new-domain"], Some(DOMAIN)));
    let dom = common::tmp_file("devaddr-silent", "dom.xml", complete);
    let add = common::tmp_file(
        "devaddr-silent",
        "add.yaml",
        "- {id: gpu, kind: vfio-pci}\n",
    );
    let o = devaddr(
        &["hotplug", &dom, "--add", &add, "--format", "libvirt"],
        None,
    );
    refuses(&o, "vfio without host", &["add[0].host", "`gpu`", "host:"]);
    let add = common::tmp_file(
        "devaddr-silent",
        "add.yaml",
        "- {id: gpu, kind: vfio-pci, host: \"0000:65:00.0\"}\n",
    );
    let o = devaddr(
        &["hotplug", &dom, "--add", &add, "--format", "libvirt"],
        None,
    );
    quiet(&o, "vfio with host");
    assert!(out(&o).contains("<alias name='ua-gpu'/>"), "{}", out(&o));
    assert!(out(&o).contains("bus='0x65'"), "{}", out(&o));
}

#[test]
fn libvirt_output_names_every_device_by_a_user_alias() {
    let spec = example("q35-basic");
    let o = devaddr(&["plan", &spec, "--format", "libvirt"], None);
    quiet(&o, "libvirt");
    let xml = out(&o);
    let plan = devaddr::Plan::parse(&out(&devaddr(&["plan", &spec], None)), "plan").unwrap();
    for d in &plan.devices {
        assert!(
            xml.contains(&format!("<alias name='ua-{}'/>", d.id)),
            "{}: {xml}",
            d.id
        );
    }
    // PCI controllers keep libvirt's own names (pci.N: a `.` libvirt drops from an alias).
    assert!(!xml.contains("ua-pci."), "{xml}");
    assert!(xml.contains("<alias name='ua-usb0'/>"), "{xml}");
    // Read back: the plan of the written domain names the devices by their spec ids.
    let back = devaddr(&["plan", "-", "--format", "yaml"], Some(&xml));
    assert!(out(&back).contains("id: gpu0"), "{}", out(&back));
    assert!(out(&back).contains("id: nic1"), "{}", out(&back));
}

#[test]
fn ids_libvirt_cannot_keep_as_aliases_are_refused_for_libvirt_output() {
    for (id, shown) in [("net.0", "'.'"), ("net 0", "' '"), ("nïc", "'ï'")] {
        let spec = format!("machine: q35\ndevices:\n  - {{id: '{id}', kind: virtio-net}}\n");
        let o = devaddr(&["plan", "-", "--format", "libvirt"], Some(&spec));
        refuses(
            &o,
            id,
            &[
                &format!("`{id}`"),
                &format!("ua-{id}"),
                shown,
                "letters, digits, `_` and `-`",
            ],
        );
        // The other formats take any id.
        quiet(&devaddr(&["plan", "-"], Some(&spec)), id);
    }
    assert_eq!(
        devaddr::libvirt::user_alias("a_b-9", "x").unwrap(),
        "ua-a_b-9"
    );
    assert!(devaddr::libvirt::user_alias("", "x").is_err());
    assert_eq!(devaddr::libvirt::id_from_alias("ua-net0"), Some("net0"));
    assert_eq!(devaddr::libvirt::id_from_alias("net0"), None);
    assert_eq!(devaddr::libvirt::id_from_alias("ua-"), None);
}
