#!/usr/bin/env bash
# Score devaddr against a folder of libvirt cases (NAME.in.xml + NAME.out.xml or NAME.err).
#   tests/libvirt/score.sh [-v] [--new-domain] CASES_DIR [OUT_DIR]
# Runs `devaddr plan --format libvirt` on every NAME.in.xml (NAME.out.xml on success,
# NAME.err with the message on failure) and prints score.py's table; the last line is
#   libvirt-fidelity: X/Y cases exact, A/B addresses
# Cases from libvirt's test suite: ../shared/corpus/libvirt. Cases from the live libvirt:
#   oracle.py gen --seed S --count N IN && oracle.py define IN EXP && cp IN/*.in.xml EXP/
#   tests/libvirt/score.sh --new-domain EXP        (virsh define = libvirt's "new domain" parse)
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
verbose=(); extra=()
while [[ $# -gt 0 && $1 == -* ]]; do
  case $1 in -v) verbose=(-v);; --new-domain) extra+=(--new-domain);; *) echo "unknown option $1" >&2; exit 2;; esac
  shift
done
cases=${1:?usage: score.sh [-v] [--new-domain] CASES_DIR [OUT_DIR]}
out=${2:-$(mktemp -d)}
mkdir -p "$out"
bin=$here/target/release/devaddr
[[ -x $bin ]] || cargo build --release --quiet --manifest-path "$here/Cargo.toml"
scorer=$here/../shared/corpus/score.py
for f in "$cases"/*.in.xml; do
  n=$(basename "$f" .in.xml)
  rm -f "$out/$n.out.xml" "$out/$n.err"
  if "$bin" plan --format libvirt "${extra[@]}" "$f" >"$out/$n.out.xml" 2>"$out/$n.err"; then
    rm -f "$out/$n.err"
  else
    rm -f "$out/$n.out.xml"
  fi
done
python3 "$scorer" "${verbose[@]}" "$cases" "$out"
