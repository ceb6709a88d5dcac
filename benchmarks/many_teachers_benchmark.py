"""Training cost per table row as the number of teachers N grows.

A crowd table at N = 1,000 has each row scored by a few of the teachers.
This script times training steps of the same T5 encoder (4 layers x 128,
sequence 64, vocabulary 8,000, 64 rows or examples per step) in these
forms, alternating them round by round in one process:

- `sparse N=3 (dense)`: 3 teachers score every row; 4 task slots per row
  (the ground-truth slot is always there, labelled on 5% of rows);
- `sparse N=1000`: 1,000 teachers, 3 of them score each row; 4 slots;
- `per_example N=1000`: one example per (row, source): 64 examples per step
  are 64 / 3.05 rows;
- `packed N=100`: every row carries all 101 task tokens (with `--packed`;
  at N = 1,000 a batch of 64 rows of 1,065 positions ran out of memory
  on a 24 GiB machine: its attention bias alone is 1.2 GB per layer);
- `single_task`: the same encoder with one task (a student trained on
  pseudo-labels), 64 rows per step.

It prints the cost per row, the ratios the library's targets name
(sparse N=1000 / sparse N=3 at most 1.25x; per-example / sparse at
N=1000 at least 2.5x) and the memory of the task table. With `--memory`
each form also trains in a fresh process that reports its peak RSS.

Usage (from the repository root):
    KERAS_BACKEND=tensorflow python -m benchmarks.many_teachers_benchmark \
        --packed --output tf.json
    KERAS_BACKEND=jax python -m benchmarks.many_teachers_benchmark \
        --packed --output jax.json
    python -m benchmarks.many_teachers_benchmark --plot cost.png \
        --results tf.json,jax.json
"""

import argparse
import json

import keras
import numpy as np

import keras_t2t
from benchmarks import measure
from benchmarks.measure import step_ms

SEQUENCE, VOCABULARY, BATCH = 64, 8000, 64
SIZE = dict(
    num_layers=4, num_heads=4, hidden_dim=128, intermediate_dim=512, dropout=0.1
)
SOURCES_PER_ROW, GROUND_TRUTH = 3, 0.05
# form: (layout, number of teachers).
FORMS = {
    "sparse N=3 (dense)": ("sparse", 3),
    "sparse N=1000": ("sparse", 1000),
    "per_example N=1000": ("per_example", 1000),
    "packed N=100": ("packed", 100),
    "single_task": ("per_example", 1),
}


def build(form):
    layout, num_teachers = FORMS[form]
    backbone = keras_t2t.models.Teacher2TaskBackbone(
        num_teachers=num_teachers,
        vocabulary_size=VOCABULARY,
        task_layout=layout,
        **SIZE,
    )
    classifier = keras_t2t.models.Teacher2TaskClassifier(backbone)
    classifier.compile(metrics=[])
    return classifier


def batch(form, rng):
    """One training batch as `keras_t2t.data.expand` makes it."""
    layout, num_teachers = FORMS[form]
    x = {
        "token_ids": rng.integers(1, VOCABULARY, (BATCH, SEQUENCE)),
        "padding_mask": np.ones((BATCH, SEQUENCE), "int32"),
    }
    labelled = rng.random(BATCH) < GROUND_TRUTH
    scorers = np.stack(
        [
            rng.choice(num_teachers, size=min(SOURCES_PER_ROW, num_teachers))
            + 1
            for _ in range(BATCH)
        ]
    )
    if layout == "sparse":
        x["task_ids"] = np.concatenate(
            [np.zeros((BATCH, 1), "int32"), scorers], axis=1
        ).astype("int32")
        y = rng.random(x["task_ids"].shape + (1,)).astype("float32")
        y[~labelled, 0] = np.nan
        return x, y
    if layout == "packed":
        y = np.full((BATCH, num_teachers + 1, 1), np.nan, "float32")
        rows = np.arange(BATCH)[:, None]
        y[rows, scorers] = rng.random(scorers.shape + (1,))
        y[labelled, 0] = rng.random((labelled.sum(), 1))
        return x, y
    # Per-example (and single-task): the examples of consecutive rows.
    x["teacher_id"] = (
        np.zeros(BATCH, "int32")
        if num_teachers == 1
        else scorers.reshape(-1)[:BATCH].astype("int32")
    )
    return x, rng.random((BATCH, 1)).astype("float32")


def rows_per_step(form):
    layout, num_teachers = FORMS[form]
    if layout == "per_example" and num_teachers > 1:
        return BATCH / (SOURCES_PER_ROW + GROUND_TRUTH)
    return BATCH


def peak_rss(form, steps):
    """Peak RSS (MB) of a fresh process training `form` for `steps`."""
    return measure.training_peak_rss_mb(
        "benchmarks.many_teachers_benchmark", [form], steps
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--packed", action="store_true")
    parser.add_argument("--memory", action="store_true")
    parser.add_argument(
        "--memory-only", action="store_true", help="Peak RSS, no timing."
    )
    parser.add_argument("--output", default=None, help="JSON results file.")
    parser.add_argument("--plot", default=None, help="PNG of --results.")
    parser.add_argument("--results", default="", help="JSON files, a,b.")
    args = parser.parse_args(argv)
    if args.plot:
        return plot(args.results.split(","), args.plot)
    forms = [f for f in FORMS if args.packed or not f.startswith("packed")]
    if args.memory_only:
        rss = {form: peak_rss(form, args.steps) for form in forms}
        for form, value in rss.items():
            print(f"peak RSS {form}: {value:.0f} MB")
        if args.output:
            with open(args.output, "w") as f:
                json.dump({"peak_rss_mb": rss}, f, indent=2)
        return rss
    rng = np.random.default_rng(0)
    models = {form: build(form) for form in forms}
    data = {form: batch(form, rng) for form in forms}
    times = {form: [] for form in forms}
    for _ in range(args.rounds):
        for form in forms:
            steps = 1 if form.startswith("packed") else args.steps
            times[form].append(step_ms(models[form], data[form], steps))
    backend = keras.config.backend()
    print(
        f"backend {backend}; T5 4x128, sequence {SEQUENCE}, batch {BATCH}; "
        f"{SOURCES_PER_ROW} teachers per row at N=1000; median of "
        f"{args.rounds} rounds x {args.steps} steps"
    )
    print("| form | ms/step | ms/row | task table |")
    print("|---|---|---|---|")
    results = {"backend": backend}
    for form in forms:
        step = float(np.median(times[form]))
        table = models[form].backbone.get_layer(
            "task_tokens"
            if FORMS[form][0] != "per_example"
            else "teacher_embedding"
        )
        table_kb = sum(w.numpy().nbytes for w in table.weights) / 1024
        results[form] = {
            "step_ms": step,
            "ms_per_row": step / rows_per_step(form),
            "task_table_kb": table_kb,
        }
        print(
            f"| {form} | {step:.1f} | {results[form]['ms_per_row']:.2f} | "
            f"{table_kb:.0f} KB |"
        )
    per_row = {form: results[form]["ms_per_row"] for form in forms}
    growth = per_row["sparse N=1000"] / per_row["sparse N=3 (dense)"]
    saving = per_row["per_example N=1000"] / per_row["sparse N=1000"]
    results.update(growth_n3_to_n1000=growth, per_example_over_sparse=saving)
    print(f"sparse N=1000 / sparse N=3 per row: {growth:.2f}x (target <= 1.25)")
    print(
        f"per-example / sparse at N=1000 per row: {saving:.2f}x (target >= 2.5)"
    )
    if "packed N=100" in per_row:
        ratio = per_row["packed N=100"] / per_row["sparse N=1000"]
        results["packed_n100_over_sparse_n1000"] = ratio
        print(f"packed N=100 / sparse N=1000 per row: {ratio:.2f}x")
    if args.memory:
        rss = {form: peak_rss(form, args.steps) for form in forms}
        results["peak_rss_mb"] = rss
        print(
            "peak RSS MB: "
            + ", ".join(f"{form} {value:.0f}" for form, value in rss.items())
        )
    if args.output:
        with open(args.output, "w") as f:
            json.dump(results, f, indent=2)
    return results


def plot(paths, output):
    """Cost per row of each form, one group of bars per backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = []
    for path in paths:
        with open(path) as f:
            runs.append(json.load(f))
    forms = [f for f in FORMS if any(f in run for run in runs)]
    width = 0.8 / len(forms)
    figure, axis = plt.subplots(figsize=(8, 4.5))
    for k, form in enumerate(forms):
        values = [run.get(form, {}).get("ms_per_row", np.nan) for run in runs]
        axis.bar(
            np.arange(len(runs)) + k * width,
            values,
            width,
            label=form,
            color=plt.cm.tab10(k),
        )
    axis.set_xticks(np.arange(len(runs)) + width * (len(forms) - 1) / 2)
    axis.set_xticklabels([run["backend"] for run in runs])
    axis.set_ylabel("training ms per table row (median of rounds)")
    axis.set_title(
        "Cost per row: T5 4x128, sequence 64; 3 teachers per row at N=1000"
    )
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(output, dpi=120)
    return output


if __name__ == "__main__":
    main()
