"""Reference vectors for text/tests/family.rs: a small BERT (hidden 32,
4 heads, 2 layers) with deterministic weights, CLS pooling, no
normalisation, truncation at 16 word pieces, embedded by
sentence-transformers. The Rust test writes the same weights itself (the
same formula), under a `bert.` prefix, and must get these vectors.

    python3 scripts/bert_family_reference.py MINILM_FOLDER OUT.json

MINILM_FOLDER: all-MiniLM-L6-v2 (its tokenizer files are reused);
needs torch, transformers and sentence-transformers (the venv that
scripts/bench-embed.sh makes).
"""
import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from sentence_transformers import SentenceTransformer
from transformers import BertConfig, BertModel

TEXTS = [
    "The liver makes ketones from fat when insulin is low.",
    "a",
    "Über die Ernährung: Fett, Eiweiß und Schlaf — 睡眠と食事.",
    "sleep " * 40,
    "How many hours of sleep do adults need?",
]
SIZES = dict(hidden_size=32, num_attention_heads=4, num_hidden_layers=2,
             intermediate_size=64, max_position_embeddings=512, type_vocab_size=2)


def fnv1a(name: str) -> int:
    h = 0x811C9DC5
    for b in name.encode():
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h


def values(name: str, n: int) -> np.ndarray:
    j = np.arange(n, dtype=np.uint64)
    u = (np.uint64(fnv1a(name)) + j * np.uint64(2654435761)) % np.uint64(2**32)
    v = (u.astype(np.float64) / 4294967296.0 - 0.5) * 0.2
    if name.endswith("LayerNorm.weight"):
        v = v + 1.0
    return v.astype(np.float32)


def main(minilm: str, out: str) -> None:
    config = json.loads((Path(minilm) / "config.json").read_text())
    config.update(SIZES)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        model = BertModel(BertConfig(**config), add_pooling_layer=False)
        state = {k: torch.from_numpy(values(k, t.numel()).reshape(t.shape))
                 for k, t in model.state_dict().items()}
        model.load_state_dict(state)
        model.save_pretrained(folder)
        for f in ["tokenizer.json", "tokenizer_config.json", "vocab.txt",
                  "special_tokens_map.json"]:
            shutil.copy(Path(minilm) / f, folder / f)
        (folder / "1_Pooling").mkdir()
        (folder / "1_Pooling/config.json").write_text(json.dumps({
            "word_embedding_dimension": 32, "pooling_mode_cls_token": True,
            "pooling_mode_mean_tokens": False}))
        (folder / "sentence_bert_config.json").write_text(
            json.dumps({"max_seq_length": 16, "do_lower_case": False}))
        (folder / "modules.json").write_text(json.dumps([
            {"idx": 0, "name": "0", "path": "",
             "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling",
             "type": "sentence_transformers.models.Pooling"}]))
        st = SentenceTransformer(str(folder), device="cpu")
        vectors = st.encode(TEXTS, normalize_embeddings=False)
    Path(out).write_text(json.dumps({
        "sizes": SIZES, "max_seq_length": 16, "pooling": "cls", "normalize": False,
        "items": [{"text": t, "vector": [round(float(x), 6) for x in v]}
                  for t, v in zip(TEXTS, vectors)]}, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
