//! A Linux guest under OVMF for the hotplug claims no firmware can prove: Debian's kernel
//! (`/boot/vmlinuz-*`, package `linux-image-amd64`) booted directly by OVMF
//! (`-kernel/-initrd/-append`) with an initramfs built here at run time — a static init
//! (`guest_init.c`, compiled with `gcc -static`) packed as a newc cpio archive. The kernel's
//! PCIe hotplug (built into Debian's kernel) assigns a hot-added device's BARs inside the
//! window the firmware programmed into its port; the init says on the serial console when
//! the kernel is up and reports every function the kernel added (and turns its decoding on,
//! as a driver would, so QEMU's `query-pci` shows the BARs the kernel assigned).

use super::*;

/// The kernel image of the guest: the newest `/boot/vmlinuz-*`.
fn kernel() -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/boot")
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz-"))
        })
        .collect();
    found.sort();
    found.pop()
}

/// One newc entry: the 110-byte header, the name (NUL-terminated) and the data, each
/// padded to 4 bytes.
fn cpio_entry(out: &mut Vec<u8>, ino: u32, name: &str, mode: u32, rdev: (u32, u32), data: &[u8]) {
    let fields = [
        ino,
        mode,
        0, // uid
        0, // gid
        1, // nlink
        0, // mtime
        data.len() as u32,
        0, // devmajor
        0, // devminor
        rdev.0,
        rdev.1,
        name.len() as u32 + 1,
        0, // check
    ];
    out.extend_from_slice(b"070701");
    for f in fields {
        out.extend_from_slice(format!("{f:08x}").as_bytes());
    }
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    out.resize(out.len().next_multiple_of(4), 0);
    out.extend_from_slice(data);
    out.resize(out.len().next_multiple_of(4), 0);
}

/// The initramfs: `/init` (the static program), `/dev/console` (the kernel opens it for
/// init before any filesystem is mounted) and an empty `/sys`.
fn initramfs(init: &[u8]) -> Vec<u8> {
    const DIR: u32 = 0o040755;
    const CHAR_DEVICE: u32 = 0o020600;
    const EXECUTABLE: u32 = 0o100755;
    let mut out = Vec::new();
    cpio_entry(&mut out, 1, "dev", DIR, (0, 0), &[]);
    cpio_entry(&mut out, 2, "dev/console", CHAR_DEVICE, (5, 1), &[]);
    cpio_entry(&mut out, 3, "sys", DIR, (0, 0), &[]);
    cpio_entry(&mut out, 4, "init", EXECUTABLE, (0, 0), init);
    cpio_entry(&mut out, 5, "TRAILER!!!", 0, (0, 0), &[]);
    out
}

/// A skip (a panic under CI) naming what is missing.
fn skip(test: &str, why: &str) -> Option<(PathBuf, PathBuf)> {
    if in_ci() {
        panic!("CI must run qemu_real::{test}, but {why}");
    }
    eprintln!("SKIPPED qemu_real::{test}: {why}");
    None
}

/// The kernel and the initramfs (written into `dir`), or `None` after a SKIPPED line when
/// the kernel or gcc's static C library is missing.
fn guest_or_skip(dir: &Path, test: &str) -> Option<(PathBuf, PathBuf)> {
    let Some(kernel) = kernel() else {
        return skip(
            test,
            "no /boot/vmlinuz-* (apt-get install linux-image-amd64)",
        );
    };
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/qemu_real/guest_init.c");
    let init = dir.join("init");
    let built = Command::new("gcc")
        .args(["-static", "-O2", "-o"])
        .arg(&init)
        .arg(&source)
        .output();
    match built {
        Ok(o) if o.status.success() => {}
        Ok(o) => {
            return skip(
                test,
                &format!(
                    "gcc -static cannot build the guest's init: {}",
                    String::from_utf8_lossy(&o.stderr)
                ),
            )
        }
        Err(e) => return skip(test, &format!("gcc cannot run: {e}")),
    }
    let archive = dir.join("initramfs.cpio");
    std::fs::write(&archive, initramfs(&std::fs::read(&init).unwrap())).unwrap();
    Some((kernel, archive))
}

/// The serial console's text so far.
fn console(qemu: &Qemu) -> String {
    std::fs::read_to_string(qemu.debug_log.as_ref().unwrap()).unwrap_or_default()
}

/// Polls the console until `done` holds for its text; panics with the console's tail
/// after `secs` (a bound for a guest that never gets there, not a timing assertion).
fn wait_console(qemu: &mut Qemu, secs: u64, what: &str, done: impl Fn(&str) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let text = console(qemu);
        if done(&text) {
            return;
        }
        if let Some(e) = qemu.exited() {
            panic!("waiting for {what}: {e}\nconsole:\n{text}");
        }
        let tail: Vec<&str> = text.lines().rev().take(30).collect();
        assert!(
            Instant::now() < deadline,
            "waiting for {what}: not within {secs} s; console tail:\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The init's report lines for functions of `vendor_device` (`1af4:1110`: ivshmem).
fn reported(text: &str, vendor_device: &str) -> usize {
    text.lines()
        .filter(|l| l.contains("devaddr-guest: ") && l.contains(vendor_device))
        .count()
}

/// `query-pci`'s entry of the function with qdev id `id`.
fn function_of(qmp: &mut Qmp, id: &str) -> Option<Value> {
    fn find(devices: &Value, id: &str) -> Option<Value> {
        devices.as_array()?.iter().find_map(|d| {
            if str_of(d, "qdev_id") == id {
                return Some(d.clone());
            }
            find(d.get("pci_bridge")?.get("devices")?, id)
        })
    }
    let buses = qmp.execute("query-pci", json!({})).ok()?;
    buses
        .as_array()?
        .iter()
        .find_map(|b| find(b.get("devices")?, id))
}

/// The 64-bit BAR of `function` (the stand-in's shared memory): (address, size); the
/// address is `None` when nobody assigned it (QEMU reports -1).
fn bar64(function: &Value) -> (Option<u64>, u64) {
    let r = function["regions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["mem_type_64"].as_bool() == Some(true))
        .unwrap_or_else(|| panic!("no 64-bit BAR: {function}"));
    let addr = r["address"].as_i64().filter(|a| *a >= 0).map(|a| a as u64);
    (addr, r["size"].as_u64().unwrap())
}

/// The acceptance of issue 13: `capacity --kind vfio-pci --bar64 64G`'s live column equals the
/// number of 64 GiB stand-ins (ivshmem-plain on sparse memory backends) that QEMU + OVMF +
/// a Linux guest accept live with every BAR assigned. The plan keeps three ports with 64
/// GiB of prefetchable room (`hotplug_reserve_bar64`); the guest boots, exactly as many
/// stand-ins as capacity says are hot-added with `devaddr hotplug`'s QMP commands, and
/// Linux assigns each one's BARs, the 64-bit one inside its port's prefetchable window.
/// One more, forced into an empty port without the reserve (devaddr refuses to place it),
/// is added too: Linux reports it, and its 64-bit BAR stays unassigned.
#[test]
fn x86_64_linux_assigns_big_bars_capacity_counts() {
    let test = "x86_64_linux_assigns_big_bars_capacity_counts";
    let spec = firmware_specs_dir().join("q35-uefi-linux-hotplug-bar64.yaml");
    let Some((bin, mut plan)) = uefi_plan_or_skip(X86, &spec, test) else {
        return;
    };
    let dir = common::scratch("fw-linux");
    let Some((kernel, initrd)) = guest_or_skip(&dir, test) else {
        return;
    };
    let plan_path = dir.join("plan.yaml");
    std::fs::write(&plan_path, devaddr(&spec, "yaml").unwrap()).unwrap();
    let plan_file = plan_path.to_str().unwrap();
    let rows: Value = serde_json::from_str(&devaddr_cmd(&[
        "capacity", plan_file, "--kind", "vfio-pci", "--bar64", "64G", "--format", "json",
    ]))
    .unwrap();
    let live = rows[0]["live"].as_u64().unwrap() as usize;
    assert!(live > 0, "capacity predicts no big device live: {rows}");
    let add_path = dir.join("add.yaml");
    let entries: String = (0..live)
        .map(|i| format!("- {{id: big{i}, kind: vfio-pci, bar64: 64G}}\n"))
        .collect();
    std::fs::write(&add_path, entries).unwrap();
    let add = add_path.to_str().unwrap();
    let cmds = devaddr_cmd(&["hotplug", plan_file, "--add", add, "--format", "qemu"]);
    let after: Value = serde_json::from_str(&devaddr_cmd(&[
        "hotplug", plan_file, "--add", add, "--format", "json",
    ]))
    .unwrap();
    let index_of = |id: &str| -> Option<u64> {
        plan.controllers
            .iter()
            .find(|c| str_of(c, "id") == id)
            .and_then(|c| c["index"].as_u64())
    };
    let port_of = |id: &str| -> String {
        let d = after["devices"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| str_of(d, "id") == id)
            .unwrap_or_else(|| panic!("{id}: not in the hotplugged plan"));
        plan.pci_controllers[&pci_addr(d).unwrap().0].0.clone()
    };
    // An empty hotplug port without the reserve, for the one device too many.
    let plain = after["controllers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| str_of(c, "model") == "pcie-root-port" && c.get("pref64_reserve").is_none())
        .map(|c| str_of(c, "id").to_string())
        .find(|id| {
            !after["devices"]
                .as_array()
                .unwrap()
                .iter()
                .any(|d| pci_addr(d).map(|a| a.0) == index_of(id))
        })
        .expect("an empty port without the reserve");

    plan.args.extend([
        "-kernel".to_string(),
        kernel.display().to_string(),
        "-initrd".to_string(),
        initrd.display().to_string(),
        "-append".to_string(),
        "console=ttyS0 quiet panic=-1".to_string(),
    ]);
    let t = Instant::now();
    let mut qemu = Qemu::start(&bin, &plan, false, true);
    let mut qmp = qemu.qmp().unwrap();
    wait_console(&mut qemu, 600, "the guest's init", |t| {
        t.contains("devaddr-guest: ready")
    });
    let booted = t.elapsed().as_secs_f64();
    // The boot-time devices are the firmware's business (checked elsewhere); the stand-in
    // planned at boot is reported too.
    let before = reported(&console(&qemu), "1af4:1110");
    for line in cmds.lines() {
        let c: Value = serde_json::from_str(line).unwrap();
        qmp.execute(c["execute"].as_str().unwrap(), c["arguments"].clone())
            .unwrap_or_else(|e| panic!("{line}: {e}"));
    }
    wait_console(&mut qemu, 300, "Linux to add the stand-ins", |t| {
        reported(t, "1af4:1110") >= before + live
    });
    let windows = bridge_windows(&mut qmp).unwrap();
    for i in 0..live {
        let id = format!("big{i}");
        let port = port_of(&id);
        let f = function_of(&mut qmp, &id).unwrap_or_else(|| panic!("{id}: not in query-pci"));
        let mut seen = Vec::new();
        collect_seen(&json!([f.clone()]), &mut seen);
        assert!(
            seen[0].unassigned.is_empty(),
            "{id} in {port}: Linux left BARs unassigned: {:?}\n{}",
            seen[0].unassigned,
            console(&qemu)
        );
        let (addr, size) = bar64(&f);
        let addr = addr.unwrap();
        let w = &windows[&port]["prefetchable_range"];
        let (base, limit) = (w["base"].as_u64().unwrap(), w["limit"].as_u64().unwrap());
        assert!(
            base <= addr && addr + size - 1 <= limit,
            "{id}: BAR {addr:#x}+{size:#x} outside {port}'s prefetchable window {base:#x}-{limit:#x}"
        );
    }

    // One more, where devaddr would not put it: a port without the reserve.
    let one_more = dir.join("more.yaml");
    let mut more: String = std::fs::read_to_string(&add_path).unwrap();
    more.push_str(&format!(
        "- {{id: big{live}, kind: vfio-pci, bar64: 64G}}\n"
    ));
    std::fs::write(&one_more, more).unwrap();
    let o = common::run(
        &["hotplug", plan_file, "--add", one_more.to_str().unwrap()],
        None,
    );
    assert_eq!(
        o.status.code(),
        Some(1),
        "one more big device than capacity says: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let extra = format!("big{live}");
    qmp.execute(
        "object-add",
        json!({"qom-type": "memory-backend-file", "id": "extramem", "size": 64u64 << 30,
               "mem-path": dir.to_str().unwrap(), "share": true}),
    )
    .unwrap();
    qmp.execute(
        "device_add",
        json!({"driver": "ivshmem-plain", "id": extra, "memdev": "extramem", "bus": plain,
               "addr": "0x0.0x0"}),
    )
    .unwrap();
    wait_console(&mut qemu, 300, "Linux to add the extra stand-in", |t| {
        reported(t, "1af4:1110") > before + live
    });
    let f = function_of(&mut qmp, &extra).expect("the extra stand-in in query-pci");
    let (addr, size) = bar64(&f);
    assert_eq!(
        addr, None,
        "{extra} in {plain} (no 64-bit reserve): Linux should find no room for {size:#x}"
    );
    eprintln!(
        "qemu_real::{test}: capacity --live --bar64 64G = {live}; the guest booted in {booted:.1} s; \
         {live} stand-ins hot-added, every BAR assigned by Linux inside its port's window; \
         one more in {plain} left without its 64-bit BAR ({:.1} s in all)",
        t.elapsed().as_secs_f64()
    );
}
