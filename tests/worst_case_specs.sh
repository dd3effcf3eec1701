# Sourced by tests/worst_case_cli.sh and tests/worst_case_replan.sh: builds the release
# binary and writes the generator's specs for seeds "$seeds" (tests/common/specgen.rs) to
# "$work/specs"; "$work" is a temporary folder removed on exit; "$bin" is the binary
# (DEVADDR_BIN: another one, e.g. a copy kept while the source changes).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cargo build --release -q
DEVADDR_GEN_DIR="$work/specs" DEVADDR_GEN_SEEDS="$seeds" \
  cargo test --release -q --test gen_dump -- --ignored >/dev/null
bin=${DEVADDR_BIN:-target/release/devaddr}
