"""What Teacher2Task costs over a plain T5 encoder, on every backend.

Side by side in one run, each backend in its own process:

- speed: the train-step time of `Teacher2TaskClassifier` (64 tokens plus
  the teacher token) and of a plain KerasHub T5 encoder classifier of the
  same size on 65 tokens (token embedding, the same `T5TransformerLayer`s
  and norm, a sigmoid head on position 0), so the only difference is the
  teacher token; both through `fit` with the same optimizer and loss, no
  metrics, measured in alternating rounds. Also `predict_on_batch` latency,
  and the Teacher2Task step with its default compile (PR-AUC every step).
  TensorFlow runs with XLA (`jit_compile=True`) and without; JAX always
  compiles; torch runs eagerly (Keras's `jit_compile=True` on torch is
  `torch.compile`, not measured here).
- memory: peak resident memory of a process that builds one model and
  trains it, one process per (backend, model).
- pipeline: examples/s of `keras_t2t.data.expand` streaming a text table
  through a SentencePiece `TextPreprocessor` into the same batches, against
  the examples/s training consumes.

Usage:
    python -m benchmarks.training_benchmark [--steps 20] [--rounds 3]
        [--backends tensorflow jax torch]

from the repository root (the model comes from the tests' factory).
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time

# The encoder both models share, as keras-hub writes its test configs.
CONFIG = {
    "vocabulary_size": 8000,
    "num_layers": 4,
    "num_heads": 4,
    "hidden_dim": 128,
    "intermediate_dim": 512,
    "dropout": 0.1,
}
BATCH_SIZE = 64
SEQUENCE_LENGTH = 64  # Teacher2Task adds the teacher token: 65 positions.
NUM_TEACHERS = 3


def build(model_name, jit_compile):
    import keras

    import keras_t2t

    keras.utils.set_random_seed(0)
    if model_name == "teacher2task":
        backbone = keras_t2t.models.Teacher2TaskBackbone(
            num_teachers=NUM_TEACHERS, task_layout="per_example", **CONFIG
        )
        model = keras_t2t.models.Teacher2TaskClassifier(backbone)
    else:
        model = plain_t5_encoder_classifier()
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras_t2t.losses.MaskedMultiTaskLoss(),
        metrics=[],
        jit_compile=jit_compile,
    )
    return model


def plain_t5_encoder_classifier():
    """The KerasHub T5 encoder with a classification head, no teacher."""
    import keras

    # keras-hub exports no T5 encoder layers (only the whole
    # encoder-decoder `T5Backbone`): the baseline is built from them.
    from keras_hub.src.models.t5.t5_layer_norm import T5LayerNorm
    from keras_hub.src.models.t5.t5_transformer_layer import T5TransformerLayer

    hidden_dim, dropout = CONFIG["hidden_dim"], CONFIG["dropout"]
    token_ids = keras.Input((None,), dtype="int32", name="token_ids")
    padding_mask = keras.Input((None,), dtype="int32", name="padding_mask")
    x = keras.layers.Embedding(
        CONFIG["vocabulary_size"],
        hidden_dim,
        embeddings_initializer=keras.initializers.TruncatedNormal(stddev=0.05),
    )(token_ids)
    x = keras.layers.Dropout(dropout)(x)
    position_bias = None
    for i in range(CONFIG["num_layers"]):
        x, position_bias = T5TransformerLayer(
            is_decoder=False,
            hidden_dim=hidden_dim,
            intermediate_dim=CONFIG["intermediate_dim"],
            key_value_dim=hidden_dim // CONFIG["num_heads"],
            dropout=dropout,
            activation="relu",
            layer_norm_epsilon=1e-6,
            num_heads=CONFIG["num_heads"],
            use_gated_activation=True,
            use_relative_attention_bias=(i == 0),
        )(
            x,
            attention_mask=padding_mask[:, None, :],
            position_bias=position_bias,
            use_causal_mask=False,
        )
    x = T5LayerNorm(epsilon=1e-6)(x)
    x = keras.layers.Dropout(dropout)(x)
    outputs = keras.layers.Dense(1, activation="sigmoid")(x[:, 0, :])
    return keras.Model(
        {"token_ids": token_ids, "padding_mask": padding_mask}, outputs
    )


def make_batch(model_name, seed=0):
    import numpy as np

    rng = np.random.default_rng(seed)
    length = SEQUENCE_LENGTH + (model_name == "plain")
    x = {
        "token_ids": rng.integers(
            3, CONFIG["vocabulary_size"], (BATCH_SIZE, length)
        ).astype("int32"),
        "padding_mask": np.ones((BATCH_SIZE, length), "int32"),
    }
    if model_name == "teacher2task":
        x["teacher_id"] = rng.integers(0, NUM_TEACHERS + 1, BATCH_SIZE).astype(
            "int32"
        )
    y = rng.random((BATCH_SIZE, 1)).astype("float32")
    return x, y


def dataset(model_name):
    import tensorflow as tf

    x, y = make_batch(model_name)
    return tf.data.Dataset.from_tensors((x, y)).repeat()


class StepTimes:
    def __init__(self):
        import keras

        class Callback(keras.callbacks.Callback):
            def on_train_batch_end(inner, batch, logs=None):
                self.times.append(time.perf_counter())

        self.times = []
        self.callback = Callback()

    def steps_ms(self):
        pairs = zip(self.times[:-1], self.times[1:], strict=True)
        return [1000 * (end - start) for start, end in pairs]


def speed_worker(jit_compile, steps, rounds):
    import numpy as np

    results = {}
    models = {
        "teacher2task": build("teacher2task", jit_compile),
        "plain": build("plain", jit_compile),
    }
    models["teacher2task_prauc"] = build("teacher2task", jit_compile)
    models["teacher2task_prauc"].compile(jit_compile=jit_compile)
    data = {name: dataset(name.split("_")[0]) for name in models}
    step_ms = {name: [] for name in models}
    for name, model in models.items():  # Compile and warm up.
        model.fit(data[name], steps_per_epoch=5, epochs=1, verbose=0)
    for _ in range(rounds):
        for name, model in models.items():
            timer = StepTimes()
            model.fit(
                data[name],
                steps_per_epoch=steps,
                epochs=1,
                verbose=0,
                callbacks=[timer.callback],
            )
            step_ms[name] += timer.steps_ms()
    for name in models:
        results[f"{name}_step_ms"] = float(np.median(step_ms[name]))
    for name in ("teacher2task", "plain"):
        model = models[name]
        x, _ = make_batch(name)
        for _ in range(3):
            model.predict_on_batch(x)
        latencies = []
        for _ in range(20):
            start = time.perf_counter()
            model.predict_on_batch(x)
            latencies.append(1000 * (time.perf_counter() - start))
        results[f"{name}_predict_ms"] = float(np.median(latencies))
    return results


def memory_worker(model_name, jit_compile, steps):
    import keras  # noqa: F401

    import keras_t2t  # noqa: F401

    data = dataset(model_name)
    before = _peak_rss_mb()
    model = build(model_name, jit_compile)
    model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0)
    return {"peak_rss_mb": _peak_rss_mb(), "imports_rss_mb": before}


def pipeline_worker(num_rows):
    import keras_hub
    import numpy as np
    import tensorflow as tf

    import keras_t2t

    rng = np.random.default_rng(0)
    words = np.array([f"w{i}" for i in range(3000)])
    texts = [
        " ".join(rng.choice(words, rng.integers(20, 60)))
        for _ in range(num_rows)
    ]
    proto = keras_t2t.data.train_sentencepiece(
        texts[:5000], vocabulary_size=CONFIG["vocabulary_size"]
    )
    tokenizer = keras_hub.models.T5Tokenizer(proto=proto)
    vocabulary = keras_t2t.TeacherVocabulary(["a", "b", "c"])
    table = {"text": np.array(texts)}
    label = rng.integers(0, 2, num_rows).astype("float32")
    label[rng.random(num_rows) >= 0.05] = np.nan
    table["ground_truth"] = label
    for name in vocabulary.teachers:
        scores = rng.random(num_rows).astype("float32")
        scores[rng.random(num_rows) >= 0.8] = np.nan
        table[name] = scores
    stream = keras_t2t.data.expand(
        table,
        vocabulary,
        inputs="text",
        shuffle_buffer=10_000,
        seed=0,
        preprocessor=keras_t2t.data.TextPreprocessor(
            tokenizer, sequence_length=SEQUENCE_LENGTH
        ),
        batch_size=BATCH_SIZE,
    ).prefetch(tf.data.AUTOTUNE)
    for _ in stream.take(3):  # Warm up.
        pass
    start = time.perf_counter()
    examples = 0
    for x, _, _ in stream:
        examples += int(x["teacher_id"].shape[0])
    seconds = time.perf_counter() - start
    return {"examples_per_s": examples / seconds, "examples": examples}


def _peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_worker(backend, *args):
    env = dict(os.environ, KERAS_BACKEND=backend)
    process = subprocess.run(
        [sys.executable, "-m", "benchmarks.training_benchmark", "--worker"]
        + list(map(str, args)),
        env=env,
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
        capture_output=True,
        text=True,
    )
    if process.returncode != 0:
        raise RuntimeError(f"{backend} {args} failed:\n{process.stderr}")
    return json.loads(process.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pipeline-rows", type=int, default=20_000)
    parser.add_argument(
        "--backends", nargs="+", default=["tensorflow", "jax", "torch"]
    )
    parser.add_argument("--worker", nargs="+")
    args = parser.parse_args()
    if args.worker:
        kind, *rest = args.worker
        if kind == "speed":
            result = speed_worker(rest[0] == "True", args.steps, args.rounds)
        elif kind == "memory":
            result = memory_worker(rest[0], rest[1] == "True", args.steps)
        else:
            result = pipeline_worker(args.pipeline_rows)
        print(json.dumps(result))
        return

    runs = []  # (label, backend, jit_compile)
    for backend in args.backends:
        if backend == "tensorflow":
            runs += [("tensorflow (XLA)", backend, True)]
            runs += [("tensorflow (no XLA)", backend, False)]
        elif backend == "jax":
            runs += [("jax (jit)", backend, True)]
        else:
            runs += [(f"{backend} (eager)", backend, False)]

    print(
        f"Model: T5 encoder, {CONFIG['num_layers']} layers x "
        f"{CONFIG['hidden_dim']} (heads {CONFIG['num_heads']}, ff "
        f"{CONFIG['intermediate_dim']}), vocabulary "
        f"{CONFIG['vocabulary_size']}; batch {BATCH_SIZE} x "
        f"{SEQUENCE_LENGTH} tokens (+1 teacher token; the plain encoder "
        f"gets {SEQUENCE_LENGTH + 1} tokens). Median of "
        f"{args.rounds} x {args.steps} steps.\n"
    )
    speed = {}
    for label, backend, jit in runs:
        speed[label] = run_worker(
            backend,
            "speed",
            jit,
            "--steps",
            args.steps,
            "--rounds",
            args.rounds,
        )
    print(
        "| backend | T2T step ms | plain step ms | ratio | T2T + PR-AUC "
        "step ms | T2T predict ms | plain predict ms | ratio |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for label, r in speed.items():
        print(
            f"| {label} | {r['teacher2task_step_ms']:.1f} | "
            f"{r['plain_step_ms']:.1f} | "
            f"{r['teacher2task_step_ms'] / r['plain_step_ms']:.3f} | "
            f"{r['teacher2task_prauc_step_ms']:.1f} | "
            f"{r['teacher2task_predict_ms']:.1f} | "
            f"{r['plain_predict_ms']:.1f} | "
            f"{r['teacher2task_predict_ms'] / r['plain_predict_ms']:.3f} |"
        )

    print("\nTraining throughput (Teacher2Task, examples/s):\n")
    throughput = {
        label: 1000 * BATCH_SIZE / r["teacher2task_step_ms"]
        for label, r in speed.items()
    }
    fastest = max(throughput.values())
    print("| backend | examples/s | ratio to fastest |")
    print("|---|---|---|")
    for label, value in throughput.items():
        print(f"| {label} | {value:.0f} | {value / fastest:.2f} |")

    print("\nPeak resident memory (one process per model, MB):\n")
    print(
        "| backend | T2T peak | plain peak | ratio | T2T - imports "
        "| plain - imports |"
    )
    print("|---|---|---|---|---|---|")
    for label, backend, jit in runs:
        memory = {
            name: run_worker(
                backend, "memory", name, jit, "--steps", args.steps
            )
            for name in ("teacher2task", "plain")
        }
        t2t, plain = memory["teacher2task"], memory["plain"]
        print(
            f"| {label} | {t2t['peak_rss_mb']:.0f} | "
            f"{plain['peak_rss_mb']:.0f} | "
            f"{t2t['peak_rss_mb'] / plain['peak_rss_mb']:.3f} | "
            f"{t2t['peak_rss_mb'] - t2t['imports_rss_mb']:.0f} | "
            f"{plain['peak_rss_mb'] - plain['imports_rss_mb']:.0f} |"
        )

    pipeline = run_worker(
        "tensorflow", "pipeline", "--pipeline-rows", args.pipeline_rows
    )
    rate = pipeline["examples_per_s"]
    print(
        f"\nInput pipeline (expand + SentencePiece, {pipeline['examples']} "
        f"examples): {rate:.0f} examples/s = {rate / fastest:.1f}x the "
        "fastest training above."
    )


if __name__ == "__main__":
    main()
