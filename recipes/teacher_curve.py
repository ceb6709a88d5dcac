"""Test PR-AUC as teachers are added one at a time, in a fixed order.

Runs `recipes.text_sentiment` with the first k teachers of `--teachers mix`
(VADER, TextBlob, AFINN, VADER on the first half, MiniLM zero-shot, the
sparse human), k = 1 ... 6, each into `--output/teachers_<k>`, and draws
`teacher_curve.png` with `teacher_curve.md`: the documented Teacher2Task
student against the best teacher among the first k and their test-time
mean, with the seed spread. A k whose directory already holds a
`results.json` with every seed is read, not rerun (so a full table run
with more students can stand in for a point: same seeds, same settings,
deterministic).

Usage:
    python -m recipes.teacher_curve --output outputs/text_curve
    python -m recipes.teacher_curve --student-input minilm --seeds 1
"""

import argparse
import json
import os

import numpy as np

from recipes import text_sentiment
from recipes.students import DOCUMENTED

TEACHERS = text_sentiment.TEACHER_SETS["mix"]


def point_dir(output, k):
    return os.path.join(output, f"teachers_{k}")


def run_point(k, args, extra):
    """Results of the first `k` teachers, run unless already there."""
    path = os.path.join(point_dir(args.output, k), "results.json")
    if os.path.exists(path):
        with open(path) as f:
            results = json.load(f)
        if len(results[DOCUMENTED]["per_seed"]) >= args.seeds:
            return results
    text_sentiment.main(
        [
            "--teachers=mix",
            f"--num-teachers={k}",
            f"--student-input={args.student_input}",
            f"--seeds={args.seeds}",
            f"--students={DOCUMENTED}",
            f"--output={point_dir(args.output, k)}",
            *extra,
        ]
    )
    with open(path) as f:
        return json.load(f)


def summarize(points, seeds):
    """Per k: the student's values on the first `seeds` seeds (a table run
    with more seeds stands in for a point), the best teacher among the
    first k, and the teachers' test-time mean."""
    rows = []
    for k, results in points.items():
        teachers = {
            name: value["pr_auc_mean"]
            for name, value in results.items()
            if name.startswith("teacher:")
        }
        best = max(teachers, key=teachers.get)
        rows.append(
            {
                "k": k,
                "added": TEACHERS[k - 1],
                "student": results[DOCUMENTED]["per_seed"][:seeds],
                "best_teacher": (best[len("teacher: ") :], teachers[best]),
                "teacher_mean": results["teacher_mean (needs all teachers)"][
                    "pr_auc_mean"
                ],
            }
        )
    return rows


def write(rows, args):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ks = [row["k"] for row in rows]
    figure, axis = plt.subplots(figsize=(7, 4.5))
    means = [np.mean(row["student"]) for row in rows]
    for row in rows:
        axis.plot(
            [row["k"]] * len(row["student"]),
            row["student"],
            "o",
            color="tab:red",
            alpha=0.3,
            markersize=4,
        )
    axis.errorbar(
        ks,
        means,
        yerr=[np.std(row["student"]) for row in rows],
        color="tab:red",
        marker="o",
        capsize=3,
        label=f"Teacher2Task ({DOCUMENTED}), mean ± std; dots: seeds",
    )
    axis.plot(
        ks,
        [row["best_teacher"][1] for row in rows],
        "s--",
        color="tab:orange",
        label="best teacher among the first k",
    )
    axis.plot(
        ks,
        [row["teacher_mean"] for row in rows],
        "D:",
        color="tab:purple",
        label="mean of the first k teachers (test-time ensemble)",
    )
    axis.set_xticks(ks)
    axis.set_xticklabels(
        [f"{row['k']}\n+{row['added']}" for row in rows], fontsize=7
    )
    axis.set_xlabel("teachers (k: the first k, in this order)")
    axis.set_ylabel("test PR-AUC")
    seeds = max(len(row["student"]) for row in rows)
    axis.set_title(
        f"text_sentiment: teachers added one at a time (student input: "
        f"{args.student_input}; {seeds} seed(s))",
        fontsize=9,
    )
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7, loc="upper left")
    figure.tight_layout()
    figure.savefig(os.path.join(args.output, "teacher_curve.png"), dpi=120)
    plt.close(figure)
    lines = [
        "| k | teacher added | Teacher2Task (mean ± std) | per seed | "
        "best teacher | teacher mean |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        seeds = " / ".join(f"{v:.3f}" for v in row["student"])
        name, value = row["best_teacher"]
        lines.append(
            f"| {row['k']} | {row['added']} | {np.mean(row['student']):.3f}"
            f" ± {np.std(row['student']):.3f} | {seeds} | {name} "
            f"{value:.3f} | {row['teacher_mean']:.3f} |"
        )
    with open(os.path.join(args.output, "teacher_curve.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output", default="outputs/text_curve")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument(
        "--student-input", choices=("tokens", "minilm"), default="tokens"
    )
    parser.add_argument(
        "--max-teachers", type=int, default=len(TEACHERS), help="Last k."
    )
    parser.add_argument(
        "--plot-only",
        action="store_true",
        help="Draw the points already run; run none.",
    )
    args, extra = parser.parse_known_args(argv)
    points = {}
    for k in range(1, args.max_teachers + 1):
        done = os.path.exists(
            os.path.join(point_dir(args.output, k), "results.json")
        )
        if done or not args.plot_only:
            points[k] = run_point(k, args, extra)
    write(summarize(points, args.seeds), args)
    return points


if __name__ == "__main__":
    main()
