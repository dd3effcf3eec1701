#!/usr/bin/env bash
# Replans as a user meets them: for every generated spec that plans (tests/common/specgen.rs),
# a deterministic edit (up to two devices removed, one to three added, some on NUMA nodes),
# then `plan --previous` strict and with `--allow-moves`, one process each. Reports
# p50/p99/max per mode, exit codes, plans whose header says `status: feasible`, any
# exit-0 replan `devaddr check` rejects or that does not plan again to itself, and any
# exit code other than 0/1.
#
#   tests/worst_case_replan.sh [SEEDS=0..400] [EDIT_SEED=7]
# (DEVADDR_ROWS=FILE: also write one row per replan there: spec, mode, exit, ms, notes.)
set -euo pipefail
seeds=${1:-0..400}
edit_seed=${2:-7}
. "$(dirname "$0")/worst_case_specs.sh"
cat >"$work/edit.py" <<'PY'
import random, re, sys
src, dst, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
r = random.Random(seed)
lines = open(src).read().split('\n')
devs = [i for i, l in enumerate(lines) if l.startswith('- {id:') and 'group' not in l]
r.shuffle(devs)
drop = set(devs[:r.randint(0, 2)])
out = [l for i, l in enumerate(lines) if i not in drop]
nodes = re.search(r'numa_nodes: (\d+)', '\n'.join(lines[:4]))
kinds = ["virtio-net", "virtio-blk", "e1000e", "nvme", "virtio-scsi", "e1000"]
while out and out[-1] == '':
    out.pop()
for k in range(r.randint(1, 3)):
    d = f"- {{id: new{k}, kind: {r.choice(kinds)}"
    if nodes and r.random() < .5:
        d += f", numa_node: {r.randrange(int(nodes.group(1)))}"
    out.append(d + "}")
open(dst, 'w').write('\n'.join(out) + '\n')
PY
: >"$work/rows.txt"
for f in "$work"/specs/*.yaml; do
  "$bin" plan "$f" >"$work/prev.yaml" 2>/dev/null || continue
  python3 "$work/edit.py" "$f" "$work/edited.yaml" "$edit_seed"
  for mode in strict moves; do
    args=()
    [ "$mode" = moves ] && args=(--allow-moves)
    s=$(date +%s%N)
    rc=0
    "$bin" plan "$work/edited.yaml" --previous "$work/prev.yaml" "${args[@]}" \
      >"$work/out.yaml" 2>/dev/null || rc=$?
    ms=$((($(date +%s%N) - s) / 1000000))
    note=""
    if [ "$rc" = 0 ]; then
      "$bin" check "$work/out.yaml" >/dev/null 2>&1 || note="check-failed"
      "$bin" plan "$work/out.yaml" 2>/dev/null | cmp -s - "$work/out.yaml" || note="$note changed"
      grep -q 'status: feasible' "$work/out.yaml" && note="$note feasible"
    fi
    echo "$(basename "$f") $mode $rc $ms $note" >>"$work/rows.txt"
    if [ -n "${DEVADDR_ROWS:-}" ]; then cat "$work/rows.txt" >"$DEVADDR_ROWS"; fi
  done
done
python3 - "$work/rows.txt" <<'PY'
import sys
rows = [l.split(None, 4) for l in open(sys.argv[1])]
print("| mode | replans | p50 ms | p99 ms | max ms | exit codes | feasible | check failed or other exit | plans again changed |")
print("|---|---:|---:|---:|---:|---|---:|---:|---:|")
for mode in ["strict", "moves"]:
    r = [x for x in rows if x[1] == mode]
    if not r:
        continue
    t = sorted(int(x[3]) for x in r)
    q = lambda p: t[min(len(t) - 1, int(p * len(t)))]
    codes = {c: sum(x[2] == c for x in r) for c in sorted({x[2] for x in r})}
    feas = sum(len(x) > 4 and 'feasible' in x[4] for x in r)
    bad = sum((len(x) > 4 and 'check' in x[4]) or x[2] not in ('0', '1') for x in r)
    changed = sum(len(x) > 4 and 'changed' in x[4] for x in r)
    print(f"| {mode} | {len(r)} | {q(.5)} | {q(.99)} | {t[-1]} | {codes} | {feas} | {bad} | {changed} |")
PY
