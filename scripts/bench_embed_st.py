"""Texts per second of sentence-transformers on the CPU, for bench-embed.sh.

usage: bench_embed_st.py MODEL_DIR TEXTS.jsonl THREADS [BATCH]
"""
import json
import sys
import time

import torch
from sentence_transformers import SentenceTransformer

model_dir, path, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
batch = int(sys.argv[4]) if len(sys.argv) > 4 else 32
torch.set_num_threads(threads)
texts = [json.loads(line)["text"] for line in open(path, encoding="utf-8") if line.strip()]
model = SentenceTransformer(model_dir, device="cpu")
model.encode(texts[:batch], batch_size=batch)
start = time.perf_counter()
vectors = model.encode(texts, batch_size=batch, normalize_embeddings=True)
secs = time.perf_counter() - start
print(f"sentence-transformers: {len(texts)} texts ({vectors.shape[0]} x {vectors.shape[1]}) "
      f"in {secs:.2f} s: {len(texts) / secs:.1f} texts/s")
