#!/usr/bin/env bash
# Issue 15's comparison: the whole `devaddr plan` process on a spec against `virsh define` of
# the same guest (the domain `devaddr plan --format libvirt` writes for it), in paired runs:
# each pair runs both, in alternating order, and the domain is undefined after each define
# (not timed). Prints the medians and the median of the per-pair ratios plan / define.
#
#   benches/vs_virsh.sh [RUNS=40] [SPEC=benches/specs/q35-200-virtio.yaml]
#   HARNESS=bash benches/vs_virsh.sh ...   # time from bash instead (adds a shell fork to each)
#
# DEVADDR_BIN: another devaddr binary (default: target/release/devaddr, built first as the
# release CLI is shipped, statically linked: `cargo build-cli`, an alias in .cargo/config.toml).
# LIBVIRT_URI: the libvirt to define in (default qemu:///system). Needs bash 5 and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-40}
spec=${2:-benches/specs/q35-200-virtio.yaml}
uri=${LIBVIRT_URI:-qemu:///system}
if [ -z "${DEVADDR_BIN:-}" ]; then
  cargo -q build-cli
fi
bin=${DEVADDR_BIN:-target/release/devaddr}
if readelf -l "$bin" 2>/dev/null | grep -q 'Requesting program interpreter'; then
  echo "binary $bin (dynamically linked)"
else
  echo "binary $bin (statically linked)"
fi
if ! virsh -c "$uri" version >/dev/null 2>&1; then
  echo "no libvirt at $uri (virsh -c $uri version fails): nothing to compare with" >&2
  exit 2
fi
name="devaddr-vs-virsh-$$"
work=$(mktemp -d)
trap 'virsh -c "$uri" undefine "$name" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
# What is timed is an installed copy of the binary, as a package or `cargo install` puts
# it: a file the linker has just written (through a memory map) sits in the page cache in a
# form that makes the same bytes start 0.1-0.3 ms slower here (18 more page faults), until
# it is evicted and read back; virsh is an installed file too.
install -m 755 "$bin" "$work/devaddr"
bin=$work/devaddr
"$bin" plan --format libvirt "$spec" | sed "s|<name>[^<]*</name>|<name>$name</name>|" >"$work/domain.xml"
# Both commands are started the same light way (posix_spawn from one Python process, output
# to /dev/null), so what is timed is each process from its start to its exit, not the cost
# of forking a shell: a bash fork-and-exec adds ~0.3-0.5 ms to both sides here, a lot next
# to a 2 ms plan. HARNESS=bash times them from bash as before ($EPOCHREALTIME around each).
if [ "${HARNESS:-spawn}" = bash ]; then
  plan() {
    local s=$EPOCHREALTIME
    "$bin" plan "$spec" >/dev/null
    plan_t="$s $EPOCHREALTIME"
  }
  define() {
    local s=$EPOCHREALTIME
    virsh -c "$uri" define "$work/domain.xml" >/dev/null
    define_t="$s $EPOCHREALTIME"
    virsh -c "$uri" undefine "$name" >/dev/null
  }
  plan && define # warm-up: page cache, libvirtd's capabilities
  for i in $(seq "$runs"); do
    if [ $((i % 2)) = 0 ]; then plan; define; else define; plan; fi
    echo "$plan_t $define_t"
  done >"$work/times"
else
  python3 - "$bin" "$spec" "$uri" "$work/domain.xml" "$name" "$runs" >"$work/times" <<'PY'
import os, shutil, sys, time
bin_, spec, uri, xml, name, runs = sys.argv[1:7]
virsh = shutil.which("virsh")
null = os.open(os.devnull, os.O_WRONLY)
io = [(os.POSIX_SPAWN_DUP2, null, 1), (os.POSIX_SPAWN_DUP2, null, 2)]

def run(argv):
    t0 = time.perf_counter()
    pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=io)
    _, status = os.waitpid(pid, 0)
    t1 = time.perf_counter()
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{' '.join(argv)} failed")
    return t0, t1

plan = [bin_, "plan", spec]
define = [virsh, "-c", uri, "define", xml]
undefine = [virsh, "-c", uri, "undefine", name]
run(plan); run(define); run(undefine)  # warm-up: page cache, libvirtd's capabilities
for i in range(1, int(runs) + 1):
    if i % 2 == 0:
        p = run(plan); d = run(define)
    else:
        d = run(define); p = run(plan)
    run(undefine)
    print(*p, *d)
PY
fi
python3 - "$work/times" "$spec" "$runs" <<'PY'
import statistics, sys
rows = [[float(x) for x in l.split()] for l in open(sys.argv[1])]
plan = [(r[1] - r[0]) * 1000 for r in rows]
define = [(r[3] - r[2]) * 1000 for r in rows]
ratio = [p / d for p, d in zip(plan, define)]
med = statistics.median
print(f"spec {sys.argv[2]}, {sys.argv[3]} paired runs")
print(f"devaddr plan: median {med(plan):.2f} ms (min {min(plan):.2f})")
print(f"virsh define: median {med(define):.2f} ms (min {min(define):.2f})")
print(f"plan / define: median of the pairs {med(ratio):.4f}; of the medians {med(plan) / med(define):.4f}")
PY
