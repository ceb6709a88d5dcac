"""Scoring and reporting: macro PR-AUC, the results files and PR curves."""

import json
import os

import keras
import numpy as np
from sklearn.metrics import precision_recall_curve

from keras_t2t.metrics import pr_auc_score


def pr_auc(labels, scores):
    """Macro PR-AUC over labels, on rows with a score
    (`keras_t2t.metrics.pr_auc_score` of `(rows, labels)` arrays)."""
    labels = np.asarray(labels).reshape(len(labels), -1)
    scores = np.asarray(scores).reshape(len(scores), -1)
    return pr_auc_score(labels, scores)


def write_report(
    task, args, results, curves, seconds, students, documented=None
):
    """Writes `results.json`, `results.md`, `ranking.png` and
    `pr_curves.png`; prints the table. `students` are the student method
    names; `documented` is the library's documented path, marked."""
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
    plot_ranking(
        task,
        results,
        os.path.join(args.output, "ranking.png"),
        students,
        documented,
    )
    plot(
        task,
        curves,
        os.path.join(args.output, "pr_curves.png"),
        students,
        results,
        documented,
    )


def _kind(name, students):
    """The family a method's row belongs to, for its colour."""
    if name.startswith("teacher:"):
        return "teacher"
    if name.startswith("teacher2task"):
        return "teacher2task"
    if name.startswith("student_ground_truth"):
        return "ground truth"
    if name.split(":")[0] in students:
        return "aggregation student"
    if "needs all teachers" in name:
        return "test-time ensemble"
    return "classical"


KIND_STYLES = {
    "teacher2task": ("tab:red", "o"),
    "aggregation student": ("tab:blue", "s"),
    "ground truth": ("tab:gray", "v"),
    "test-time ensemble": ("tab:purple", "D"),
    "classical": ("tab:green", "^"),
    "teacher": ("tab:orange", "P"),
}


def plot_ranking(task, results, path, students, documented):
    """Test PR-AUC per method, best first: the mean over seeds, each
    seed's value as a dot; one colour and marker per kind of method; the
    documented path in bold."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ranked = sorted(results.items(), key=lambda item: np.mean(item[1]))
    height = max(3.0, 0.28 * len(ranked) + 1.2)
    figure, axis = plt.subplots(figsize=(8, height))
    seen = set()
    for row, (name, values) in enumerate(ranked):
        kind = _kind(name, students)
        colour, marker = KIND_STYLES[kind]
        axis.plot(
            values,
            [row] * len(values),
            marker,
            color=colour,
            alpha=0.35,
            markersize=4,
        )
        axis.plot(
            [np.mean(values)],
            [row],
            marker,
            color=colour,
            markersize=8,
            label=None if kind in seen else kind,
        )
        if len(values) > 1:
            axis.hlines(row, min(values), max(values), color=colour)
        seen.add(kind)
    axis.set_yticks(range(len(ranked)))
    axis.set_yticklabels(
        [
            name + " (documented path)" if name == documented else name
            for name, _ in ranked
        ],
        fontsize=7,
    )
    for label, (name, _) in zip(axis.get_yticklabels(), ranked, strict=True):
        if name == documented:
            label.set_fontweight("bold")
    seeds = max(len(values) for values in results.values())
    axis.set_xlabel(
        f"test PR-AUC (large: mean of {seeds} seed(s); small: each seed)"
    )
    axis.set_title(f"{task.name}: methods ranked by test PR-AUC")
    axis.grid(axis="x", alpha=0.3)
    axis.legend(fontsize=7, loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def pick_curves(results, students, documented):
    """The few methods a PR-curve panel shows: the documented path, the
    best teacher, the best student on aggregated labels, the ground-truth
    student, the best test-time ensemble and the best classical row."""
    best = {}
    for name, values in results.items():
        kind = _kind(name, students)
        if kind == "teacher2task" and name != documented:
            continue
        if kind not in best or np.mean(values) > np.mean(results[best[kind]]):
            best[kind] = name
    return [best[kind] for kind in KIND_STYLES if kind in best]


def plot(task, curves, path, students, results=None, documented=None):
    """PR curves of seed 0 for the few methods that matter (`pick_curves`),
    each in its own colour, with its test PR-AUC in the legend. Several
    labels are pooled (micro-average)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if results is None:
        results = {name: [0.0] for name in curves}
    names = [
        n for n in pick_curves(results, students, documented) if n in curves
    ]
    figure, axis = plt.subplots(figsize=(7, 5))
    for name in names:
        truth, scores = curves[name]
        truth = np.asarray(truth).reshape(len(truth), -1)
        scores = np.asarray(scores).reshape(len(scores), -1)
        scored = ~np.isnan(scores)
        precision, recall, _ = precision_recall_curve(
            truth[scored], scores[scored]
        )
        colour, _ = KIND_STYLES[_kind(name, students)]
        values = results[name]
        spread = f" ± {np.std(values):.3f}" if len(values) > 1 else ""
        axis.plot(
            recall,
            precision,
            color=colour,
            linewidth=2.0 if name == documented else 1.2,
            label=f"{name}: {np.mean(values):.3f}{spread}",
        )
    positive = ", ".join(task.label_names) or "positive"
    if truth.shape[1] > 1:
        positive = f"all {truth.shape[1]} labels pooled"
    axis.set_xlabel(f"recall ({positive})")
    axis.set_ylabel("precision")
    axis.set_title(
        f"{task.name}: PR curves of seed 0 (legend: test PR-AUC, mean ± "
        "std over seeds)",
        fontsize=9,
    )
    base_rate = float(np.mean(truth))
    axis.axhline(
        base_rate,
        color="black",
        linestyle=":",
        linewidth=0.8,
        label=f"share of positives (a random score): {base_rate:.3f}",
    )
    axis.legend(fontsize=7, loc="lower left", framealpha=0.9)
    axis.set_xlim(0, 1)
    axis.set_ylim(max(0.0, base_rate - 0.15), 1.01)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
