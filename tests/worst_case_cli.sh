#!/usr/bin/env bash
# The worst case as a user meets it: the release CLI, one process per spec, on the
# generator's specs (tests/common/specgen.rs). For every spec: wall time, exit code, and
# for exit 0 that `devaddr check` accepts the plan, that planning it again changes nothing,
# and whether the header says `status: feasible`. Prints p50/p99/max per size bucket.
#
#   tests/worst_case_cli.sh [SEEDS=0..400] [TIMEOUT_S=10]    (DEVADDR_ARGS: extra plan flags)
set -euo pipefail
seeds=${1:-0..400}
limit=${2:-10}
. "$(dirname "$0")/worst_case_specs.sh"
: >"$work/rows.csv"
for f in "$work"/specs/*.yaml; do
  n=$(grep -c '^- ' "$f" || true)
  s=$(date +%s%N)
  rc=0
  timeout "$limit" "$bin" plan ${DEVADDR_ARGS:-} "$f" >"$work/plan.yaml" 2>"$work/err.txt" || rc=$?
  ms=$((($(date +%s%N) - s) / 1000000))
  notes=""
  if [ "$rc" = 0 ]; then
    "$bin" check "$work/plan.yaml" >/dev/null 2>&1 || notes="$notes check-failed"
    "$bin" plan "$work/plan.yaml" 2>/dev/null | cmp -s - "$work/plan.yaml" || notes="$notes not-idempotent"
    grep -q 'status: feasible' "$work/plan.yaml" && notes="$notes feasible"
  fi
  echo "$(basename "$f"),$n,$rc,$ms,$notes" >>"$work/rows.csv"
done
python3 - "$work/rows.csv" <<'PY'
import csv, sys
rows = list(csv.reader(open(sys.argv[1])))
def line(name, r):
    t = sorted(int(x[3]) for x in r)
    if not t:
        return
    q = lambda p: t[min(len(t) - 1, int(p * len(t)))]
    ok = [x for x in r if x[2] == '0']
    feas = sum('feasible' in x[4] for x in ok)
    codes = {c: sum(x[2] == c for x in r) for c in sorted({x[2] for x in r})}
    print(f"| {name} | {len(r)} | {q(.5)} | {q(.99)} | {t[-1]} | {codes} | {len(ok) - feas} | {feas} |")
print("| devices | specs | p50 ms | p99 ms | max ms | exit codes | optimal | feasible |")
print("|---|---:|---:|---:|---:|---|---:|---:|")
for lo, hi in [(1, 49), (50, 199), (200, 999), (1000, 2000)]:
    line(f"{lo}-{hi}", [x for x in rows if lo <= int(x[1]) <= hi])
line("all", rows)
bad = [x for x in rows if 'check-failed' in x[4] or 'not-idempotent' in x[4] or x[2] not in ('0', '1')]
print(f"\nplans failing check, not idempotent, a generated spec refused (2), or other exits (124 = timeout): {len(bad)}")
for x in bad:
    print("  ", x)
PY
