#!/usr/bin/env bash
# Byte-for-byte comparison of two devaddr binaries (stdout, stderr with the binary's name
# written as `devaddr`, exit code) over every input the repository has: `plan --format
# yaml|json|libvirt|qemu|tree` of examples/, benches/specs/, tests/qemu-specs/,
# tests/fuzz-regressions/ (YAML and XML), the libvirt corpus (../shared/corpus/libvirt, if
# present; planned with the libvirt policy) and the generators' specs in GEN_DIRS; for
# every plan a YAML spec gives: `check`, `plan --previous`, planning the plan again and
# `capacity --format json`; `models` and `schema spec|plan|capacity`. For a change that
# must not change any output (a faster verifier, assembler or writer).
#
#   benches/compare_outputs.sh OLD_BIN NEW_BIN [GEN_DIR...]
#
# Generators' specs: `DEVADDR_GEN_DIR=DIR DEVADDR_GEN_SEEDS=0..300 cargo test --test
# gen_dump -- --ignored` and `python3 tests/specgen2.py DIR 0..300`.
# Prints the number of comparisons and each difference; exits 1 on any.
set -uo pipefail
old=$1
new=$2
shift 2
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
runs=0
diffs=0

# Run one command with both binaries; compare. The plan YAML of the old binary is left in
# $work/out.old for the follow-up commands.
same() {
  local rc_old=0 rc_new=0
  timeout 60 "$old" "$@" >"$work/out.old" 2>"$work/err.old" || rc_old=$?
  timeout 60 "$new" "$@" >"$work/out.new" 2>"$work/err.new" || rc_new=$?
  sed -i "s#$old#devaddr#g" "$work/err.old" "$work/out.old"
  sed -i "s#$new#devaddr#g" "$work/err.new" "$work/out.new"
  runs=$((runs + 1))
  if [ "$rc_old" != "$rc_new" ] || ! cmp -s "$work/out.old" "$work/out.new" ||
    ! cmp -s "$work/err.old" "$work/err.new"; then
    diffs=$((diffs + 1))
    echo "DIFFERS: $* (exit $rc_old vs $rc_new)"
  fi
  return "$rc_old"
}

inputs=()
for d in examples benches/specs tests/qemu-specs tests/fuzz-regressions; do
  for f in "$root/$d"/*.yaml "$root/$d"/*.yml "$root/$d"/*.json "$root/$d"/*.xml; do
    [ -f "$f" ] && inputs+=("$f")
  done
done
for d in "$@"; do
  for f in "$d"/*.yaml; do
    [ -f "$f" ] && inputs+=("$f")
  done
done
corpus=()
if [ -d "$root/../shared/corpus/libvirt" ]; then
  for f in "$root/../shared/corpus/libvirt"/*.xml; do
    [ -f "$f" ] && corpus+=("$f")
  done
fi

for f in "${inputs[@]}"; do
  for fmt in json libvirt qemu tree; do
    same plan --format "$fmt" "$f" >/dev/null
  done
  case "$f" in *.xml) same plan "$f" >/dev/null; continue ;; esac
  if same plan --format yaml "$f"; then
    cp "$work/out.old" "$work/plan.yaml"
    same check "$work/plan.yaml"
    same plan "$work/plan.yaml"
    same plan --previous "$work/plan.yaml" "$f"
    same capacity --format json "$work/plan.yaml"
  fi
done
for f in "${corpus[@]}"; do
  for fmt in yaml json libvirt qemu tree; do
    same plan --policy libvirt --format "$fmt" "$f" >/dev/null
  done
  same check "$f"
done
same models
for s in spec plan capacity; do
  same schema "$s"
done
echo "$runs comparisons, $diffs differing"
[ "$diffs" = 0 ]
