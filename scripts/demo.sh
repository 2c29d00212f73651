#!/usr/bin/env bash
# Runs the bundled example workflow on the sample media in examples/media.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# With a CUDA driver on the machine, build the CUDA backend in too.
features=()
if ldconfig -p 2>/dev/null | grep -q 'libcuda\.so'; then features=(--features cuda); fi
cargo run --release --locked "${features[@]}" -- run workflows/demo.yaml "$@"
echo "reports: out/demo/*.json; progress: cargo run --release -- status -w workflows/demo.yaml" >&2
