"""Latency of an exported SavedModel against `model.predict`, same batch.

Builds a text Teacher2Task classifier (a 2x128 T5 encoder and a SentencePiece
tokenizer trained on generated text), exports it, and times, on the same
batch of raw strings, the SavedModel's `serving_default` signature (loaded
with `tf.saved_model.load`) and `classifier.predict`. Prints the medians and
their ratio. Run with any KERAS_BACKEND: the export itself is always
TensorFlow.

Usage:
    KERAS_BACKEND=jax python -m benchmarks.export_latency --batch 64

from the repository root.
"""

import argparse
import os
import tempfile
import time

import keras
import keras_hub
import numpy as np
import tensorflow as tf

import keras_t2t

# A 2 x 128 encoder, the backbone's default dropout.
SIZE = dict(
    num_layers=2, num_heads=4, hidden_dim=128, intermediate_dim=512, dropout=0.1
)


def median_seconds(fn, repeats):
    fn()  # Warm up (tracing, compilation).
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(300)]
    texts = [
        " ".join(rng.choice(words, rng.integers(5, 40))) for _ in range(2000)
    ]
    proto = keras_t2t.data.train_sentencepiece(texts, vocabulary_size=500)
    tokenizer = keras_hub.models.T5Tokenizer(proto=proto)
    preprocessor = keras_t2t.data.TextPreprocessor(tokenizer, 64)
    backbone = keras_t2t.models.Teacher2TaskBackbone(
        num_teachers=3,
        task_layout="per_example",
        vocabulary_size=tokenizer.vocabulary_size(),
        **SIZE,
    )
    classifier = keras_t2t.models.Teacher2TaskClassifier(
        backbone, preprocessor=preprocessor
    )
    batch = np.array(texts[: args.batch])
    path = keras_t2t.export.export_saved_model(
        classifier, os.path.join(tempfile.mkdtemp(), "t2t")
    )
    serving = tf.saved_model.load(path).signatures["serving_default"]
    text = tf.constant(batch)
    exported = median_seconds(lambda: serving(text=text), args.repeats)
    predicted = median_seconds(
        lambda: classifier.predict({"text": batch}, verbose=0), args.repeats
    )
    print(
        f"backend {keras.config.backend()}, batch {args.batch}: "
        f"SavedModel {exported * 1000:.1f} ms, model.predict "
        f"{predicted * 1000:.1f} ms, ratio (SavedModel / predict) "
        f"{exported / predicted:.2f}"
    )


if __name__ == "__main__":
    main()
