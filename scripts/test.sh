#!/usr/bin/env bash
# The test command: installs what the tests need, then runs every test in the
# workspace and ends with one summary line over all test binaries.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# setup.sh installed lavapipe: the GPU tests must run on it, not skip.
export FLOW_REQUIRE_VULKAN=1
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
cargo test --workspace --locked --no-fail-fast 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
passed=$(grep -Eo '^test result: .* ([0-9]+) passed' "$log" | grep -Eo '[0-9]+ passed' | awk '{s+=$1} END {print s+0}')
failed=$(grep -Eo '^test result: .* ([0-9]+) failed' "$log" | grep -Eo '[0-9]+ failed' | awk '{s+=$1} END {print s+0}')
echo "all tests: ${passed} passed, ${failed} failed"
exit "$status"
