# Sourced by tests/worst_case_cli.sh and tests/worst_case_replan.sh: builds the release
# binary and writes the generator's specs for seeds "$seeds" (tests/common/specgen.rs) to
# "$work/specs" (DEVADDR_GEN=second: tests/specgen2.py's instead); "$work" is a temporary
# folder removed on exit; "$bin" is the binary
# (DEVADDR_BIN: another one, e.g. a copy kept while the source changes).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cargo build --release -q
if [ "${DEVADDR_GEN:-}" = second ]; then
  # The second generator (tests/specgen2.py): other distributions, written apart.
  python3 tests/specgen2.py "$work/specs" "$seeds"
else
  DEVADDR_GEN_DIR="$work/specs" DEVADDR_GEN_SEEDS="$seeds" \
    cargo test --release -q --test gen_dump -- --ignored >/dev/null
fi
bin=${DEVADDR_BIN:-target/release/devaddr}
