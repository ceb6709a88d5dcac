"""Teacher2Task on a simulated crowd labelling scikit-learn's digits.

Data: `sklearn.datasets.load_digits` (1,797 images, shipped with
scikit-learn), each image 16 patches of 2x2 pixels as in
`recipes.image_digits`; 10 labels, one-hot (macro PR-AUC, one-vs-rest per
digit).

The teachers are a crowd of N annotators who give hard one-hot labels.
Each annotator's kind, and its skill, is drawn per annotator:
- experts, right 92-98% of the time;
- average workers, right 60-80%;
- uniform spammers, who answer at random;
- adversaries, who swap two digits (the same pair for every adversary of a
  crowd: a coordinated, conflicting group) and are right 85-95% elsewhere;
- class specialists, right 95% on three digits of their own and guessing
  at random elsewhere.
A wrong answer that is not a guess is a digit that looks like the image
(drawn by the image's distance to each digit's mean image), as people's
mistakes are. Each image is labelled by `labels_per_item` +- 1 distinct
annotators, drawn with Zipf-like activity (weight 1 / rank): a few
annotators label much of the set, most only a few images.

Students (the same backbone, steps and labels): Teacher2Task on the
documented path, and the same backbone on the pseudo-labels of crowd-kit's
aggregations (`recipes.aggregation.aggregate_crowd`) and on the ground
truth alone. The crowd's "best teacher" is each of its ten most active
annotators, measured on the test images it labelled against Teacher2Task
on the same images.

Usage:
    python -m recipes.crowd_digits --num-annotators 100 --seeds 1
    python -m recipes.crowd_digits --curve num_annotators \
        --values 10,100,1000 --output docs/results/crowd
"""

import argparse
import fcntl
import json
import os
import time

import keras
import numpy as np

from recipes import common
from recipes import image_digits
from recipes.aggregation import CROWD_AGGREGATIONS
from recipes.aggregation import aggregate_crowd
from recipes.evaluation import pr_auc
from recipes.students import STUDENTS
from recipes.students import train_student

NUM_CLASSES = 10
KINDS = ("expert", "average", "spammer", "adversary", "specialist")
# The annotators who are neither spammers nor adversaries, by kind.
SKILLED_MIX = {"expert": 0.2, "average": 0.55, "specialist": 0.25}
# Accuracy ranges per kind (adversaries: off their swapped pair;
# specialists: on their own digits).
ACCURACY = {
    "expert": (0.92, 0.98),
    "average": (0.6, 0.8),
    "adversary": (0.85, 0.95),
    "specialist": (0.95, 0.95),
}
NUM_SPECIALTIES = 3


class Crowd:
    """A simulated crowd's labels and who its annotators are.

    Args:
        said: int array `(items, N)`. Each annotator's digit per image, -1
            where it did not label the image.
        kinds: str array `(N,)`, one of `KINDS` per annotator.
        accuracy: float array `(N,)`. The target accuracy of each
            annotator (see `ACCURACY`; NaN for spammers).
        swap: int pair. The two digits adversaries swap.
        specialties: int array `(N, 3)`. Each specialist's digits (-1 for
            the other kinds).
    """

    def __init__(self, said, kinds, accuracy, swap, specialties):
        self.said = said
        self.kinds = kinds
        self.accuracy = accuracy
        self.swap = swap
        self.specialties = specialties

    @property
    def num_annotators(self):
        return self.said.shape[1]

    def scores(self):
        """`(items, N, 10)` one-hot labels, NaN where not labelled."""
        scores = np.full((*self.said.shape, NUM_CLASSES), np.nan, "float32")
        items, annotators = np.nonzero(self.said >= 0)
        scores[items, annotators] = 0.0
        scores[items, annotators, self.said[items, annotators]] = 1.0
        return scores


def kind_counts(num_annotators, noisy_share):
    """Annotators per kind: `noisy_share` split evenly between spammers
    and adversaries, the rest as `SKILLED_MIX` (largest remainders, so a
    crowd of 10 has every kind it is meant to)."""
    shares = {"spammer": noisy_share / 2, "adversary": noisy_share / 2}
    shares.update({k: (1 - noisy_share) * v for k, v in SKILLED_MIX.items()})
    exact = {k: num_annotators * shares[k] for k in KINDS}
    counts = {k: int(np.floor(v)) for k, v in exact.items()}
    order = sorted(KINDS, key=lambda k: counts[k] - exact[k])
    for kind in order[: num_annotators - sum(counts.values())]:
        counts[kind] += 1
    return counts


def look_alike(images, digits, temperature=0.01):
    """`(items, 10)`: the chance of each wrong digit when an annotator
    errs on an image, by the image's distance to each digit's mean image
    (the true digit gets 0)."""
    flat = images.reshape(len(images), -1)
    means = np.stack([flat[digits == c].mean(0) for c in range(NUM_CLASSES)])
    distance = ((flat[:, None] - means[None]) ** 2).mean(axis=2)
    logits = -distance / temperature
    logits[np.arange(len(digits)), digits] = -np.inf
    logits -= logits.max(axis=1, keepdims=True)
    weights = np.exp(logits)
    return weights / weights.sum(axis=1, keepdims=True)


def simulate_crowd(
    images,
    digits,
    num_annotators=10,
    labels_per_item=4,
    noisy_share=0.2,
    seed=0,
    zipf=1.0,
):
    """Draws a crowd and its labels of every image (see the module doc).

    Args:
        images: float array `(items, 8, 8)`.
        digits: int array `(items,)`, the true digits.
        num_annotators: int. N.
        labels_per_item: int. Each image gets this many labels +- 1 (at
            least 1, at most N), from distinct annotators.
        noisy_share: float. The share of spammers and adversaries (half
            each).
        seed: int. The crowd's seed.
        zipf: float. Activity weight `1 / rank**zipf`.

    Returns:
        A `Crowd`.
    """
    rng = np.random.default_rng(seed)
    num_items = len(digits)
    counts = kind_counts(num_annotators, noisy_share)
    kinds = rng.permutation(np.repeat(KINDS, [counts[k] for k in KINDS]))
    accuracy = np.full(num_annotators, np.nan)
    for kind, (low, high) in ACCURACY.items():
        mine = kinds == kind
        accuracy[mine] = rng.uniform(low, high, mine.sum())
    specialties = np.full((num_annotators, NUM_SPECIALTIES), -1)
    for j in np.flatnonzero(kinds == "specialist"):
        specialties[j] = rng.choice(NUM_CLASSES, NUM_SPECIALTIES, False)
    swap = rng.choice(NUM_CLASSES, 2, replace=False)

    # Who labels what: per image, distinct annotators drawn with
    # probability proportional to their activity (Gumbel top-k).
    activity = rng.permutation(1.0 / np.arange(1, num_annotators + 1) ** zipf)
    per_item = rng.integers(labels_per_item - 1, labels_per_item + 2, num_items)
    per_item = np.clip(per_item, 1, num_annotators)
    keys = np.log(activity) + rng.gumbel(size=(num_items, num_annotators))
    ranked = np.argsort(-keys, axis=1)[:, : per_item.max()]
    taken = np.arange(per_item.max())[None] < per_item[:, None]
    items = np.repeat(np.arange(num_items), per_item)
    annotators = ranked[taken]

    truth = digits[items]
    kind = kinds[annotators]
    right = rng.random(len(items)) < np.nan_to_num(accuracy[annotators])
    mistake = _draw(look_alike(images, digits)[items], rng)
    guess = rng.integers(0, NUM_CLASSES, len(items))
    answer = np.where(right, truth, mistake)
    answer = np.where(kind == "spammer", guess, answer)
    in_pair = (kind == "adversary") & np.isin(truth, swap)
    answer = np.where(
        in_pair, swap[::-1][np.argmax(truth[:, None] == swap, 1)], answer
    )
    own = (specialties[annotators] == truth[:, None]).any(axis=1)
    answer = np.where((kind == "specialist") & ~own, guess, answer)

    said = np.full((num_items, num_annotators), -1)
    said[items, annotators] = answer
    return Crowd(said, kinds, accuracy, swap, specialties)


def _draw(probabilities, rng):
    """One class per row of `probabilities`."""
    cumulative = probabilities.cumsum(axis=1)
    cumulative[:, -1] = 1.0
    return (rng.random((len(probabilities), 1)) > cumulative).sum(axis=1)


# The documented Teacher2Task student of `recipes.students`: the sparse
# layout, whose cost per row does not grow with N (the packed layout
# prepends all N + 1 task tokens to every row), where the recipes have it.
TEACHER2TASK = (
    "teacher2task_sparse"
    if "teacher2task_sparse" in STUDENTS
    else "teacher2task_packed"
)
# Every student this recipe trains by default. The teacher-mean student is
# the majority-vote student here: the mean of one-hot labels is the vote
# share, so it is not trained twice.
CROWD_DIGITS_STUDENTS = (
    TEACHER2TASK,
    *(f"student_{name}" for name in CROWD_AGGREGATIONS),
    "student_ground_truth",
)
# What each curve varies, and its default points.
CURVES = {
    "num_annotators": (10, 100, 1000),
    "noisy_share": (0.0, 0.2, 0.4, 0.6),
    "labels_per_item": (2, 4, 8),
}
NUM_BEST = 10


def build_task(images, digits, crowd):
    """The crowd's `common.Task`: patches in, one-hot digits out."""
    patches = image_digits.to_patches(images)
    width = len(str(crowd.num_annotators - 1))
    return common.sequence_task(
        "crowd_digits",
        patches,
        images,
        "pixel logistic regression",
        labels=np.eye(NUM_CLASSES, dtype="float32")[digits],
        teacher_scores=crowd.scores(),
        teacher_names=[
            f"annotator_{j:0{width}d}" for j in range(crowd.num_annotators)
        ],
        multiclass=True,
    )


def best_teachers(crowd, task, test, scores, number=NUM_BEST):
    """The `number` most active annotators, each against the student's
    `scores` on the test images it labelled (macro PR-AUC on both)."""
    truth = task.labels[test]
    activity = (crowd.said >= 0).sum(axis=0)
    rows = []
    for j in np.argsort(-activity, kind="stable")[:number]:
        seen = crowd.said[test, j] >= 0
        if not seen.any():
            continue
        rows.append(
            {
                "annotator": task.teacher_names[j],
                "kind": str(crowd.kinds[j]),
                "labels": int(activity[j]),
                "test_items": int(seen.sum()),
                "annotator_pr_auc": pr_auc(
                    truth[seen], task.teacher_scores[test][seen, j]
                ),
                "student_pr_auc": pr_auc(truth[seen], scores[seen]),
            }
        )
    return rows


def run_point(images, digits, setting, seed, args, record, save):
    """One crowd (`setting`: num_annotators, labels_per_item, noisy_share)
    and seed: the aggregations, then each student not yet in `record`.

    `record` is this point's dict in the results file, filled in place;
    `save()` is called after each student so that partial results survive.
    """
    crowd = simulate_crowd(
        images,
        digits,
        num_annotators=setting["num_annotators"],
        labels_per_item=setting["labels_per_item"],
        noisy_share=setting["noisy_share"],
        seed=args.crowd_seed + seed,
        zipf=args.zipf,
    )
    task = build_task(images, digits, crowd)
    split = common.split_rows(len(digits), args, seed)
    train, val, test, labelled = split
    truth = task.labels[test]
    students = [s for s in args.students.split(",") if s]
    todo = [s for s in students if s not in record.setdefault("pr_auc", {})]
    if not todo:
        return
    print(
        f"[crowd_digits] {setting} seed {seed}: {len(train)} train images "
        f"({int(labelled.sum())} with ground truth), {len(val)} validation, "
        f"{len(test)} test; {int((crowd.said >= 0).sum())} crowd labels"
    )
    names = [s[len("student_") :] for s in students if s.startswith("student_")]
    names = [
        n for n in CROWD_AGGREGATIONS if n in names or n == "majority_vote"
    ]
    start = time.time()
    aggregated, failures = aggregate_crowd(crowd.said, NUM_CLASSES, names)
    aggregated["teacher_mean"] = aggregated["majority_vote"]
    record["aggregation_seconds"] = round(time.time() - start, 1)
    record["failures"] = failures
    for name, value in aggregated.items():
        record.setdefault("test_time", {})[name] = pr_auc(truth, value[test])
    record.setdefault("seconds", {})
    for method in todo:
        name = method[len("student_") :]
        if method.startswith("student_") and name not in aggregated:
            if name != "ground_truth":
                print(f"  {method}: skipped ({failures.get(name)})")
                continue
        start = time.time()
        scores, _, _ = train_student(
            method, task, split, args, seed, aggregated
        )
        # Looked up again: a save merges in a new dict.
        seconds = record["seconds"]
        seconds[method] = round(time.time() - start, 1)
        record["pr_auc"][method] = pr_auc(truth, scores)
        if method == TEACHER2TASK:
            record["best_teachers"] = best_teachers(crowd, task, test, scores)
        print(
            f"  {method}: {record['pr_auc'][method]:.3f} "
            f"({seconds[method]:.0f} s)"
        )
        save()


def run_curve(args):
    """Runs `args.curve` over `args.values` and seeds; after each student
    rewrites `<curve>.json`, `<curve>.md` and `<curve>.png` in
    `args.output`, and skips what the JSON already holds (a rerun
    resumes)."""
    os.makedirs(args.output, exist_ok=True)
    path = os.path.join(args.output, args.curve)
    results = {"curve": args.curve, "runs": {}}
    if os.path.exists(path + ".json"):
        with open(path + ".json") as f:
            results = json.load(f)
    # What every run of the curve shares (processes may differ in students
    # and seeds only).
    skip = ("output", "students", "values", "seeds", "first_seed")
    settings = {k: v for k, v in vars(args).items() if k not in skip}
    settings["backend"] = keras.config.backend()
    results["settings"] = settings
    images, digits = image_digits.load_images()
    kind = type(CURVES.get(args.curve, (1,))[0])
    values = [kind(v) for v in args.values.split(",")]

    def save():
        # Several processes may fill one curve (e.g. one student each):
        # what is on disk is merged in under a lock, never overwritten.
        with open(path + ".json", "a+") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            f.seek(0)
            text = f.read()
            if text:
                _merge(results, json.loads(text))
            f.seek(0)
            f.truncate()
            json.dump(results, f, indent=1)
            f.flush()
            write_curve(results, path)

    for seed in range(args.first_seed, args.first_seed + args.seeds):
        for value in values:
            setting = {
                "num_annotators": args.num_annotators,
                "labels_per_item": args.labels_per_item,
                "noisy_share": args.noisy_share,
                args.curve: value,
            }
            record = results["runs"].setdefault(str(value), {})
            record = record.setdefault(str(seed), {})
            run_point(images, digits, setting, seed, args, record, save)
            save()
    return results


def _merge(results, on_disk):
    """Adds to `results` the students, scores and seconds that only
    `on_disk` holds (another process's), point by point."""
    for value, seeds in on_disk["runs"].items():
        for seed, theirs in seeds.items():
            ours = results["runs"].setdefault(value, {}).setdefault(seed, {})
            for key, entry in theirs.items():
                if isinstance(entry, dict):
                    ours[key] = {**entry, **ours.get(key, {})}
                else:
                    ours.setdefault(key, entry)


def _label(method):
    return method.replace("student_", "").replace("_", " ")


def _ordered(found):
    known = [m for m in CROWD_DIGITS_STUDENTS if m in found]
    return known + sorted(set(found) - set(known))


def summarize(results):
    """`{method: {value: [per-seed PR-AUC]}}` of the students, and the
    same of the test-time aggregations."""
    students, test_time = {}, {}
    for value, seeds in results["runs"].items():
        for record in seeds.values():
            for method, score in record.get("pr_auc", {}).items():
                students.setdefault(method, {}).setdefault(value, [])
                students[method][value].append(score)
            for name, score in record.get("test_time", {}).items():
                test_time.setdefault(name, {}).setdefault(value, [])
                test_time[name][value].append(score)
    return students, test_time


def write_curve(results, path):
    """Writes `<path>.md` (tables) and `<path>.png` (students' test PR-AUC
    against the curve's variable, mean and std over seeds)."""
    curve = results["curve"]
    values = sorted(results["runs"], key=float)
    students, test_time = summarize(results)
    cell = lambda scores: (  # noqa: E731
        f"{np.mean(scores):.3f} ± {np.std(scores):.3f} ({len(scores)})"
        if scores
        else "-"
    )
    header = f"| method | {' | '.join(f'{curve} = {v}' for v in values)} |"
    rule = "|---" * (len(values) + 1) + "|"
    lines = [
        f"# crowd_digits: test PR-AUC against {curve}",
        "",
        "Macro PR-AUC (one-vs-rest per digit) on the fixed test split, "
        "mean ± std over seeds (number of seeds in brackets). Students "
        "share the backbone, steps and labels.",
        "",
        f"![test PR-AUC against {curve}]({os.path.basename(path)}.png)",
        "",
        header,
        rule,
    ]
    for method in _ordered(students):
        row = [cell(students[method].get(v, [])) for v in values]
        lines.append(f"| {method} | {' | '.join(row)} |")
    lines += [
        "",
        "Test-time aggregations (they need the crowd's labels of each test "
        "image; for reference):",
        "",
        header,
        rule,
    ]
    for name in _ordered(test_time):
        if name == "teacher_mean":
            continue  # The majority vote's vote share.
        row = [cell(test_time[name].get(v, [])) for v in values]
        lines.append(f"| {name} | {' | '.join(row)} |")
    lines += _best_teacher_lines(results, values, curve)
    lines += _cost_lines(results, values, curve)
    with open(path + ".md", "w") as f:
        f.write("\n".join(lines) + "\n")
    plot_curve(students, values, curve, path + ".png")


def _best_teacher_lines(results, values, curve):
    lines = [
        "",
        f"## The crowd's best teachers: the {NUM_BEST} most active "
        f"annotators against {TEACHER2TASK}",
        "",
        "Each on the test images it labelled (macro PR-AUC over the digits "
        "present); wins counted over annotators and seeds.",
        "",
        f"| {curve} | Teacher2Task above | mean annotator | mean Teacher2Task "
        "on the same images | worst margin |",
        "|---|---|---|---|---|",
    ]
    first = None
    for value in values:
        rows = [
            row
            for record in results["runs"][value].values()
            for row in record.get("best_teachers", [])
        ]
        if not rows:
            continue
        first = first or (value, results["runs"][value])
        margins = [r["student_pr_auc"] - r["annotator_pr_auc"] for r in rows]
        lines.append(
            f"| {value} | {sum(m > 0 for m in margins)} / {len(rows)} | "
            f"{np.mean([r['annotator_pr_auc'] for r in rows]):.3f} | "
            f"{np.mean([r['student_pr_auc'] for r in rows]):.3f} | "
            f"{min(margins):+.3f} |"
        )
    if first:
        value, seeds = first
        seed = sorted(seeds, key=int)[0]
        lines += [
            "",
            f"{curve} = {value}, seed {seed}:",
            "",
            "| annotator | kind | labels | test images | annotator PR-AUC "
            "| Teacher2Task PR-AUC |",
            "|---|---|---|---|---|---|",
        ]
        for r in seeds[seed].get("best_teachers", []):
            lines.append(
                f"| {r['annotator']} | {r['kind']} | {r['labels']} | "
                f"{r['test_items']} | {r['annotator_pr_auc']:.3f} | "
                f"{r['student_pr_auc']:.3f} |"
            )
    return lines


def _cost_lines(results, values, curve):
    seconds, aggregation, failures = {}, {}, {}
    for value in values:
        for record in results["runs"][value].values():
            for method, s in record.get("seconds", {}).items():
                seconds.setdefault(method, {}).setdefault(value, []).append(s)
            if "aggregation_seconds" in record:
                aggregation.setdefault(value, [])
                aggregation[value].append(record["aggregation_seconds"])
            failures.update(record.get("failures", {}))
    settings = results.get("settings", {})
    lines = [
        "",
        "## Seconds per student and run (training and validation passes)",
        "",
        f"| method | {' | '.join(f'{curve} = {v}' for v in values)} |",
        "|---" * (len(values) + 1) + "|",
    ]
    for method in _ordered(seconds):
        row = [
            f"{np.mean(seconds[method][v]):.0f}"
            if v in seconds[method]
            else "-"
            for v in values
        ]
        lines.append(f"| {method} | {' | '.join(row)} |")
    row = [
        f"{np.mean(aggregation[v]):.0f}" if v in aggregation else "-"
        for v in values
    ]
    lines.append(f"| crowd-kit aggregations (all, once) | {' | '.join(row)} |")
    for name, why in failures.items():
        lines.append(f"\n{name} did not run: {why}")
    lines += ["", "Settings: " + json.dumps(settings)]
    return lines


def plot_curve(students, values, curve, path):
    """One colour and marker per student; error bars: std over seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = np.array([float(v) for v in values])
    figure, axis = plt.subplots(figsize=(7.5, 5))
    colours = plt.get_cmap("tab10").colors
    markers = "os^vDP*Xph<>"
    methods = _ordered(students)
    # Small sideways offsets keep overlapping error bars apart.
    offsets = np.linspace(-0.02, 0.02, len(methods))
    for k, method in enumerate(methods):
        have = [v in students[method] for v in values]
        means = [
            np.mean(students[method][v])
            for v in values
            if v in students[method]
        ]
        stds = [
            np.std(students[method][v]) for v in values if v in students[method]
        ]
        where = (
            x[have] * (1 + offsets[k])
            if curve == "num_annotators"
            else (x[have] + offsets[k] * (x.max() - x.min() or 1))
        )
        main = method == TEACHER2TASK
        axis.errorbar(
            where,
            means,
            yerr=stds,
            label=_label(method),
            color=colours[k % len(colours)],
            marker=markers[k % len(markers)],
            linewidth=2.2 if main else 1.0,
            markersize=7 if main else 5,
            capsize=3,
        )
    if curve == "num_annotators":
        axis.set_xscale("log")
    axis.set_xticks(x)
    axis.set_xticklabels(values)
    axis.set_xlabel(
        {
            "num_annotators": "annotators in the crowd (N)",
            "noisy_share": "share of spammers and adversaries",
            "labels_per_item": "labels per image",
        }.get(curve, curve)
    )
    axis.set_ylabel("test macro PR-AUC")
    axis.set_title(f"crowd_digits: test PR-AUC against {curve}")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    common.add_common_flags(
        parser,
        name="crowd_digits",
        steps=800,
        eval_every=200,
        hidden_dim=64,
        intermediate_dim=256,
        schedule="cosine",
        position_embedding=1,
        students=",".join(CROWD_DIGITS_STUDENTS),
    )
    parser.add_argument("--num-annotators", type=int, default=100)
    parser.add_argument("--labels-per-item", type=int, default=4)
    parser.add_argument(
        "--noisy-share",
        type=float,
        default=0.2,
        help="Share of spammers and adversaries (half each).",
    )
    parser.add_argument("--crowd-seed", type=int, default=0)
    parser.add_argument("--zipf", type=float, default=1.0)
    parser.add_argument(
        "--curve",
        default="num_annotators",
        choices=sorted(CURVES),
        help="The setting --values vary (the others stay at their flags).",
    )
    parser.add_argument(
        "--values",
        default=None,
        help="Comma-separated points of --curve. Defaults to the flag's "
        "own value; e.g. 10,100,1000.",
    )
    parser.add_argument(
        "--render",
        action="store_true",
        help="Only rewrite <curve>.md and <curve>.png from <curve>.json.",
    )
    args = common.parse(parser, argv)
    if args.render:
        path = os.path.join(args.output, args.curve)
        with open(path + ".json") as f:
            results = json.load(f)
        write_curve(results, path)
        return results
    if args.values is None:
        args.values = str(getattr(args, args.curve))
    return run_curve(args)


if __name__ == "__main__":
    main()
