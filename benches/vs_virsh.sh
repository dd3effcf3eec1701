#!/usr/bin/env bash
# Issue 15's comparison: the whole `devaddr plan` process on a spec against `virsh define` of
# the same guest (the domain `devaddr plan --format libvirt` writes for it), in paired runs:
# each pair runs both, in alternating order, and the domain is undefined after each define
# (not timed). Prints the medians and the median of the per-pair ratios plan / define.
#
#   benches/vs_virsh.sh [RUNS=40] [SPEC=benches/specs/q35-200-virtio.yaml]
#
# DEVADDR_BIN: another devaddr binary (default: target/release/devaddr, built first).
# LIBVIRT_URI: the libvirt to define in (default qemu:///system). Needs bash 5 and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-40}
spec=${2:-benches/specs/q35-200-virtio.yaml}
uri=${LIBVIRT_URI:-qemu:///system}
if [ -z "${DEVADDR_BIN:-}" ]; then
  cargo build --release -q
fi
bin=${DEVADDR_BIN:-target/release/devaddr}
if ! virsh -c "$uri" version >/dev/null 2>&1; then
  echo "no libvirt at $uri (virsh -c $uri version fails): nothing to compare with" >&2
  exit 2
fi
name="devaddr-vs-virsh-$$"
work=$(mktemp -d)
trap 'virsh -c "$uri" undefine "$name" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
"$bin" plan --format libvirt "$spec" | sed "s|<name>[^<]*</name>|<name>$name</name>|" >"$work/domain.xml"
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
