"""Scoring and reporting: macro PR-AUC, the results files and PR curves."""

import json
import os

import keras
import numpy as np
from sklearn.metrics import average_precision_score
from sklearn.metrics import precision_recall_curve


def pr_auc(labels, scores):
    """Macro PR-AUC over labels, on rows with a score."""
    labels = np.asarray(labels).reshape(len(labels), -1)
    scores = np.asarray(scores).reshape(len(scores), -1)
    values = []
    for k in range(labels.shape[1]):
        scored = ~np.isnan(scores[:, k])
        if labels[scored, k].sum() > 0:
            values.append(
                average_precision_score(labels[scored, k], scores[scored, k])
            )
    return float(np.mean(values))


def write_report(task, args, results, curves, seconds, students):
    """Writes `results.json`, `results.md` and `pr_curves.png`; prints the
    table. `students` are the method names drawn as solid curves."""
    summary = {
        name: {
            "pr_auc_mean": float(np.mean(values)),
            "pr_auc_std": float(np.std(values)),
            "per_seed": [float(v) for v in values],
        }
        for name, values in results.items()
    }
    best_teacher = max(
        (
            v["pr_auc_mean"]
            for n, v in summary.items()
            if n.startswith("teacher:")
        ),
    )
    settings = {k: v for k, v in vars(args).items() if k != "output"}
    settings["backend"] = keras.config.backend()
    settings["seconds"] = round(seconds)
    with open(os.path.join(args.output, "results.json"), "w") as f:
        json.dump({**summary, "settings": settings}, f, indent=2)
    seeds = len(next(iter(results.values())))
    lines = [
        f"# {task.name}: test PR-AUC, mean ± std over {seeds} seed(s)",
        "",
        "| method | PR-AUC | vs best teacher |",
        "|---|---|---|",
    ]
    for name, value in sorted(
        summary.items(), key=lambda item: -item[1]["pr_auc_mean"]
    ):
        delta = 100 * (value["pr_auc_mean"] - best_teacher)
        lines.append(
            f"| {name} | {value['pr_auc_mean']:.3f} ± "
            f"{value['pr_auc_std']:.3f} | {delta:+.1f} pts |"
        )
    lines += [
        "",
        "Teachers that score only some rows (e.g. a human) are measured on "
        "the test rows they scored; aggregations give unscored rows 0.5.",
        "",
        "Settings: " + json.dumps(settings),
    ]
    table = "\n".join(lines)
    with open(os.path.join(args.output, "results.md"), "w") as f:
        f.write(table + "\n")
    print(table)
    plot(task, curves, os.path.join(args.output, "pr_curves.png"), students)


def plot(task, curves, path, students):
    """PR curves of label 0 on seed 0: students solid, the rest dotted."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 5))
    for name, (truth, scores) in curves.items():
        truth = np.asarray(truth).reshape(len(truth), -1)[:, 0]
        scores = np.asarray(scores).reshape(len(scores), -1)[:, 0]
        scored = ~np.isnan(scores)
        precision, recall, _ = precision_recall_curve(
            truth[scored], scores[scored]
        )
        style = "-" if name in students else ":"
        axis.plot(recall, precision, style, label=name, linewidth=1.2)
    axis.set_xlabel("recall")
    axis.set_ylabel("precision")
    axis.set_title(f"{task.name}: PR curves, seed 0 (label 0)")
    axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
