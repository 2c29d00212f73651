#!/usr/bin/env bash
# Runs the bundled example workflow on the sample media in examples/media.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo run --release --locked -- run workflows/demo.yaml "$@"
echo "reports: out/demo/*.json; progress: cargo run --release -- status -w workflows/demo.yaml" >&2
