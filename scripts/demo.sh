#!/usr/bin/env bash
# The main job on the bundled sample media: `flow run workflows/chaffee.yaml`
# over examples/chaffee/media (two monologues of the enrolled voice and an
# interview with a guest), then `flow search` with a question about one clip.
# Models are fetched into ~/.cache/flow/models on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# With a CUDA driver on the machine, build the CUDA backend in too.
features=()
if ldconfig -p 2>/dev/null | grep -q 'libcuda\.so'; then features=(--features cuda); fi
# The test profile: dependencies and model crates are optimised in it (see
# Cargo.toml), and `scripts/test.sh` builds the same binary, so the two
# commands share one build.
cargo build --locked "${features[@]}" --bin flow
flow=target/debug/flow
# The enrolled voice the workflow identifies (committed; made again when
# missing, as a user enrolls their own speaker).
if [ ! -f examples/chaffee/voices/chaffee.json ]; then
  "$flow" enroll chaffee examples/chaffee/enroll/chaffee.wav --dir examples/chaffee/voices
fi
"$flow" run workflows/chaffee.yaml "$@"
question="How many hours of sleep do adults need?"
echo "\$ flow search \"$question\" -w workflows/chaffee.yaml -k 2" >&2
"$flow" search "$question" -w workflows/chaffee.yaml -k 2
echo "database: out/chaffee/chaffee.db; subtitles: out/chaffee/subtitles/; progress: $flow status -w workflows/chaffee.yaml" >&2
