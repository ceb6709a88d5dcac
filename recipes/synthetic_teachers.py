"""Teacher2Task end to end on generated data: the library's smoke demo.

Three simulated teachers (noisy, overconfident, biased) score most rows of
a generated feature-sequence table; ground truth is known for a few. The
table is expanded into N+1 tasks, a small Teacher2Task student is trained
with `model.fit`, and PR-AUC on a held-out test split is printed for every
teacher, the teachers' mean and the student (ground-truth task).

Usage:
    KERAS_BACKEND=jax python -m recipes.synthetic_teachers --epochs 8
"""

import argparse

import keras
import numpy as np
from sklearn.metrics import average_precision_score

import keras_t2t


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=3000)
    parser.add_argument("--ground-truth-fraction", type=float, default=0.1)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--ground-truth-weight", type=float, default=3.0)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def main():
    args = parse_args()
    keras.utils.set_random_seed(args.seed)
    data = keras_t2t.datasets.make_synthetic_teachers(
        num_rows=args.rows,
        ground_truth_fraction=args.ground_truth_fraction,
        teacher_coverage=1.0,
        seed=args.seed,
    )
    vocabulary = keras_t2t.TeacherVocabulary(["calm", "bold", "biased"])

    rng = np.random.default_rng(args.seed)
    order = rng.permutation(args.rows)
    test, train = order[: args.rows // 5], order[args.rows // 5 :]

    # Teachers score 80% of the training rows each; the test split keeps
    # every score so that each teacher is measured on all test rows.
    train_scores = data["teacher_scores"][train].copy()
    train_scores[rng.random(train_scores.shape) >= 0.8] = np.nan
    inputs = data["inputs"]
    x, y, weight = keras_t2t.data.expand_arrays(
        {name: value[train] for name, value in inputs.items()},
        data["labels"][train],
        train_scores,
        ground_truth_weight=args.ground_truth_weight,
    )
    counts = np.bincount(x["teacher_id"], minlength=len(vocabulary))
    print(
        "Training examples per task: "
        + ", ".join(
            f"{n}={c}" for n, c in zip(vocabulary.names, counts, strict=True)
        )
    )

    backbone = keras_t2t.models.Teacher2TaskBackbone(
        num_teachers=vocabulary.num_teachers,
        feature_dim=inputs["features"].shape[-1],
        num_layers=2,
        num_heads=2,
        hidden_dim=32,
        intermediate_dim=64,
        dropout=0.1,
    )
    classifier = keras_t2t.models.Teacher2TaskClassifier(
        backbone, num_labels=1, teacher_vocabulary=vocabulary
    )
    classifier.fit(
        x,
        y,
        sample_weight=weight,
        epochs=args.epochs,
        batch_size=args.batch_size,
        verbose=2,
    )

    truth = data["true_labels"][test, 0]
    test_inputs = {name: value[test] for name, value in inputs.items()}
    student = classifier.predict(test_inputs, verbose=0)[:, 0]
    scores = data["teacher_scores"][test, :, 0]
    rows = [(name, scores[:, k]) for k, name in enumerate(vocabulary.teachers)]
    rows += [("teacher mean", scores.mean(axis=1)), ("Teacher2Task", student)]
    print(f"\nPR-AUC on {len(test)} test rows (seed {args.seed}):")
    for name, score in rows:
        print(f"  {name:<14} {average_precision_score(truth, score):.3f}")


if __name__ == "__main__":
    main()
