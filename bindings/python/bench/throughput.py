"""Throughput of the Python binding at fleet scale: 10,000 varied specs planned with a
process pool (the same function mapped over a cluster engine's workers).

    python bench/throughput.py [--specs 10000] [--workers N] [--seed 1]

Needs the `devaddr` wheel installed (a release build: `maturin build --release`).
Prints the specs per second with the pool, and with one process for comparison, and
how many specs were infeasible (planned to a clear refusal: they count as answered).
"""

import argparse
import os
import random
import time
from concurrent.futures import ProcessPoolExecutor

import devaddr

KINDS = {
    "q35": ["virtio-net", "virtio-blk", "e1000e", "nvme", "vfio-pci", "virtio-scsi",
            "virtio-rng", "usb-tablet", "sata-disk", "virtio-gpu"],
    "pc": ["virtio-net", "virtio-blk", "e1000", "rtl8139", "ide-disk", "usb-tablet"],
    "virt": ["virtio-net", "virtio-blk", "virtio-rng", "virtio-scsi", "usb-kbd"],
}
PRESETS = ["libvirt", "hotplug-ready", "numa", "dense"]


def spec(rng: random.Random, i: int) -> dict:
    """One varied guest: machine, preset, NUMA nodes, 1-32 devices, some hotplug."""
    machine = rng.choices(["q35", "pc", "virt"], weights=[6, 3, 1])[0]
    nodes = rng.choice([1, 1, 2, 4]) if machine != "virt" else 1
    policy = {"preset": rng.choice(PRESETS)}
    if nodes > 1:
        policy["numa_nodes"] = nodes
    if rng.random() < 0.3:
        policy["hotplug_reserve"] = rng.randint(0, 6)
    devices = []
    for d in range(rng.randint(1, 32)):
        kind = rng.choice(KINDS[machine])
        if kind == "ide-disk" and sum(x["kind"] == kind for x in devices) == 4:
            kind = "virtio-blk"  # pc's IDE controller has 4 units, and none can be added
        dev = {"id": f"d{d}", "kind": kind}
        if nodes > 1 and rng.random() < 0.5 and dev["kind"] not in ("usb-tablet", "usb-kbd", "sata-disk", "ide-disk"):
            dev["numa_node"] = rng.randrange(nodes)
        if rng.random() < 0.2 and dev["kind"] in ("virtio-net", "virtio-blk", "nvme"):
            dev["hotplug"] = True
        devices.append(dev)
    return {"name": f"bench{i}", "machine": machine, "policy": policy, "devices": devices}


def plan_one(s: dict) -> str:
    try:
        devaddr.plan_text(s, "json")
        return "planned"
    except devaddr.InfeasibleError:
        return "infeasible"
    except devaddr.InputError:
        return "input"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--specs", type=int, default=10_000)
    ap.add_argument("--workers", type=int, default=os.cpu_count())
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    specs = [spec(rng, i) for i in range(a.specs)]

    t = time.perf_counter()
    with ProcessPoolExecutor(max_workers=a.workers) as pool:
        results = list(pool.map(plan_one, specs, chunksize=64))
    pooled = time.perf_counter() - t

    sample = specs[: max(1, a.specs // 10)]
    t = time.perf_counter()
    for s in sample:
        plan_one(s)
    single = time.perf_counter() - t

    counts = {k: results.count(k) for k in ("planned", "infeasible", "input")}
    print(f"devaddr {devaddr.__version__}: {a.specs} specs, {a.workers} workers on "
          f"{os.cpu_count()} CPUs: {a.specs / pooled:.0f} specs/s "
          f"({pooled:.1f} s); one process: {len(sample) / single:.0f} specs/s; {counts}")


if __name__ == "__main__":
    main()
