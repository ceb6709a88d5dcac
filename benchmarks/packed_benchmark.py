"""Training cost per table row: packed vs per-example Teacher2Task.

A per-example batch holds (row, task) pairs, so a row scored by k sources
costs k encoder passes; a packed batch holds rows, each carrying all N + 1
task tokens, so it costs one. This script times training steps of the same
T5 encoder (4 layers x 128, sequence 64, vocabulary 8,000) in three forms,
alternating them round by round in one process:

- `packed`: 64 rows per step, every task in one pass;
- `per_example`: 64 (row, task) examples per step, i.e. 64 / k rows;
- `single_task`: the same encoder with one task (a student on pseudo-labels),
  64 rows per step.

and prints the cost per table row and the ratios, for N = 3, 5 and 8
teachers each scoring 90% of the rows (plus ground truth on 5%). With
`--memory` each form also runs in a fresh process that reports its peak RSS.

Usage:
    KERAS_BACKEND=tensorflow python -m benchmarks.packed_benchmark
    KERAS_BACKEND=jax python -m benchmarks.packed_benchmark --rounds 3

from the repository root.
"""

import argparse
import json

import keras
import numpy as np

import keras_t2t
from benchmarks import measure
from benchmarks.measure import step_ms

SEQUENCE, VOCABULARY, BATCH = 64, 8000, 64
# The encoder: 4 layers of width 128 (the backbone's default dropout).
SIZE = dict(
    num_layers=4, num_heads=4, hidden_dim=128, intermediate_dim=512, dropout=0.1
)
COVERAGE, GROUND_TRUTH = 0.9, 0.05


def sources_per_row(num_teachers):
    return num_teachers * COVERAGE + GROUND_TRUTH


def build(form, num_teachers):
    backbone = keras_t2t.models.Teacher2TaskBackbone(
        num_teachers=1 if form == "single_task" else num_teachers,
        vocabulary_size=VOCABULARY,
        task_layout="packed" if form == "packed" else "per_example",
        **SIZE,
    )
    classifier = keras_t2t.models.Teacher2TaskClassifier(backbone)
    classifier.compile(metrics=[])
    return classifier


def batch(form, num_teachers, rng):
    x = {
        "token_ids": rng.integers(1, VOCABULARY, (BATCH, SEQUENCE)),
        "padding_mask": np.ones((BATCH, SEQUENCE), "int32"),
    }
    if form == "packed":
        y = rng.random((BATCH, num_teachers + 1, 1)).astype("float32")
        y[rng.random(y.shape) > COVERAGE] = np.nan
        return x, y
    x["teacher_id"] = (
        rng.integers(0, num_teachers + 1, BATCH)
        if form == "per_example"
        else np.zeros(BATCH, "int64")
    ).astype("int32")
    return x, rng.random((BATCH, 1)).astype("float32")


def rows_per_step(form, num_teachers):
    if form == "per_example":
        return BATCH / sources_per_row(num_teachers)
    return BATCH


def time_forms(num_teachers, rounds, steps):
    rng = np.random.default_rng(0)
    forms = ("packed", "per_example", "single_task")
    models = {form: build(form, num_teachers) for form in forms}
    data = {form: batch(form, num_teachers, rng) for form in forms}
    times = {form: [] for form in forms}
    for _ in range(rounds):
        for form in forms:
            times[form].append(step_ms(models[form], data[form], steps))
    return {
        form: {
            "step_ms": float(np.median(times[form])),
            "ms_per_row": float(
                np.median(times[form]) / rows_per_step(form, num_teachers)
            ),
        }
        for form in forms
    }


def peak_rss(form, num_teachers, steps):
    """Peak RSS (MB) of a fresh process training `form` for `steps`."""
    return measure.training_peak_rss_mb(
        "benchmarks.packed_benchmark", [form, num_teachers], steps
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--teachers", default="3,5,8")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--memory", action="store_true")
    parser.add_argument("--output", default=None, help="JSON results file.")
    args = parser.parse_args(argv)
    backend = keras.config.backend()
    print(
        f"backend {backend}; T5 4x128, sequence {SEQUENCE}, batch {BATCH}; "
        f"median of {args.rounds} rounds x {args.steps} steps"
    )
    print(
        "| N | packed ms/step | per-example ms/step | single-task ms/step "
        "| per-example / packed per row | packed / single-task per row |"
    )
    print("|---|---|---|---|---|---|")
    results = {"backend": backend}
    for num_teachers in map(int, args.teachers.split(",")):
        r = time_forms(num_teachers, args.rounds, args.steps)
        speedup = r["per_example"]["ms_per_row"] / r["packed"]["ms_per_row"]
        overhead = r["packed"]["ms_per_row"] / r["single_task"]["ms_per_row"]
        r.update(speedup=speedup, overhead_vs_single_task=overhead)
        if args.memory:
            r["peak_rss_mb"] = {
                form: peak_rss(form, num_teachers, args.steps)
                for form in ("packed", "per_example", "single_task")
            }
        results[str(num_teachers)] = r
        print(
            f"| {num_teachers} | {r['packed']['step_ms']:.1f} | "
            f"{r['per_example']['step_ms']:.1f} | "
            f"{r['single_task']['step_ms']:.1f} | {speedup:.2f}x | "
            f"{overhead:.2f}x |"
        )
        if args.memory:
            rss = r["peak_rss_mb"]
            print(
                f"  peak RSS MB: packed {rss['packed']:.0f}, per-example "
                f"{rss['per_example']:.0f}, single-task "
                f"{rss['single_task']:.0f} (packed / single-task "
                f"{rss['packed'] / rss['single_task']:.2f})"
            )
    if args.output:
        with open(args.output, "w") as f:
            json.dump(results, f, indent=2)
    return results


if __name__ == "__main__":
    main()
