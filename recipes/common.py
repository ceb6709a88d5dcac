"""What every recipe shares: splits, baselines, student training, reports.

A recipe supplies model inputs for every row, true labels, teacher scores
(NaN where a teacher did not score) and a classical reference model; this
module runs, on the same splits and in one process, every teacher, the
aggregation heuristics Teacher2Task replaces, the same student trained on
aggregated pseudo-labels and on ground truth alone, and Teacher2Task, over
several seeds, and writes `results.json`, `results.md` and a PR-curve plot.

Honesty rules, applied to every method alike:
- The test split is fixed across seeds, split by the underlying item
  (`Task.groups`: rows sharing an item, e.g. clips showing the same image,
  never straddle two splits), and never used to choose anything.
- The ground-truth budget counts every label a method uses:
  `ground_truth_fraction` of the non-test rows are labelled in total, and
  `validation_share` of those labels form the validation split (whole
  groups) on which settings and checkpoints are chosen; the rest are the
  training labels. Every method sees the same labels.
"""

import json
import os
import time
import warnings

import keras
import numpy as np
import tensorflow as tf
from sklearn.metrics import average_precision_score
from sklearn.metrics import precision_recall_curve

import keras_t2t

# The Teacher2Task students (both task layouts) and the same architecture
# trained on each aggregation's labels (ground truth where known) and on
# the ground truth alone.
AGGREGATIONS = ("teacher_mean", "majority_vote", "dawid_skene", "snorkel")
STUDENTS = (
    "teacher2task_packed",
    "teacher2task_per_example",
    *(f"student_{name}" for name in AGGREGATIONS),
    "student_ground_truth",
)

# keras-hub's T5 layers pass `mask=` to attention layers that take no Keras
# mask; the warning is theirs and says nothing about this run.
warnings.filterwarnings("ignore", message=".*T5MultiHeadAttention.*")


def add_common_flags(parser, **defaults):
    """Flags every recipe takes; `defaults` overrides per recipe."""
    settings = {
        "seeds": 3,
        "ground_truth_fraction": 0.05,
        "test_fraction": 0.2,
        "validation_share": 0.4,
        "num_layers": 2,
        "num_heads": 4,
        "hidden_dim": 128,
        "intermediate_dim": 512,
        "dropout": 0.1,
        "batch_size": 64,
        "steps": 600,
        "eval_every": 100,
        "learning_rate": 1e-3,
        "ground_truth_weight": 5.0,
        "balance": 0.0,
        "task_normalize": "entries",
        "loss": "mse",
        "position_embedding": 0,
        "split_seed": 0,
        "first_seed": 0,
        "schedule": "constant",
    }
    settings.update(defaults)
    parser.add_argument("--output", default="outputs/" + defaults.pop("name"))
    for name, value in settings.items():
        if name == "name":
            continue
        parser.add_argument(
            "--" + name.replace("_", "-"), type=type(value), default=value
        )
    parser.add_argument(
        "--students",
        default=",".join(STUDENTS),
        help="Comma-separated students to train (baselines always run).",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="A tiny run (1 seed, few steps) to check that everything works.",
    )
    return parser


def parse(parser, argv=None):
    args = parser.parse_args(argv)
    if args.schedule not in ("constant", "cosine"):
        parser.error("--schedule must be constant or cosine (decays to 0).")
    if args.task_normalize not in ("entries", "tasks"):
        parser.error("--task-normalize must be entries or tasks.")
    if args.loss not in ("mse", "bce"):
        parser.error("--loss must be mse or bce (every student).")
    unknown = set(filter(None, args.students.split(","))) - set(STUDENTS)
    if unknown:
        parser.error(
            f"--students: unknown {sorted(unknown)}; choose from "
            f"{', '.join(STUDENTS)}."
        )
    if args.quick:
        args.seeds, args.steps, args.eval_every = 1, 20, 10
        args.num_layers, args.hidden_dim, args.intermediate_dim = 1, 16, 32
        args.num_heads = 2
    return args


class Task:
    """One recipe's data: everything `run` needs.

    Args:
        name: str. The recipe, for the report.
        inputs: dict of arrays, the student's inputs for every row.
        labels: float array `(rows, num_labels)`, all true labels.
        teacher_scores: float array `(rows, N, num_labels)`, NaN where a
            teacher did not score.
        teacher_names: list of str.
        backbone_args: dict. `vocabulary_size` or `feature_dim`.
        classical: callable `(train_rows, targets, weights, val_rows,
            val_labels, test_rows) -> test scores`, the reference a
            practitioner would try first, fitted on hard or soft targets.
        classical_name: str.
        groups: int array `(rows,)` or `None`. Rows sharing a group are
            kept in one split (e.g. clips made of the same images).
        multiclass: bool. The labels are one-hot classes (one per row):
            votes are each teacher's top class, and Dawid-Skene and
            Snorkel are fitted as multi-class models.
    """

    def __init__(
        self,
        name,
        inputs,
        labels,
        teacher_scores,
        teacher_names,
        backbone_args,
        classical,
        classical_name,
        groups=None,
        multiclass=False,
    ):
        self.name = name
        self.inputs = inputs
        self.labels = labels.astype("float32")
        self.teacher_scores = teacher_scores.astype("float32")
        self.teacher_names = list(teacher_names)
        self.backbone_args = backbone_args
        self.classical = classical
        self.classical_name = classical_name
        self.groups = groups
        self.multiclass = multiclass


def split_rows(num_rows, args, seed, groups=None):
    """Train, validation and test rows, and which train rows are labelled.

    The test split is the same for every seed (drawn with
    `args.split_seed`); seeds vary the labelled rows, the validation split
    and the initialisation. `ground_truth_fraction` of the non-test rows
    get a label in total: `validation_share` of them, in whole groups, are
    the validation rows (their groups' other rows are left out, as they
    share items with validation rows); the rest are labelled training rows.
    """
    groups = np.arange(num_rows) if groups is None else np.asarray(groups)
    test, rest = test_split(num_rows, args, groups)
    rng = np.random.default_rng(seed)
    budget = max(4, int(round(len(rest) * args.ground_truth_fraction)))
    num_val = max(2, int(round(budget * args.validation_share)))
    val_groups, val = [], []
    for group in rng.permutation(np.unique(groups[rest])):
        if len(val) >= num_val:
            break
        val_groups.append(group)
        members = rest[groups[rest] == group]
        val.extend(rng.permutation(members)[: num_val - len(val)])
    val = np.sort(np.asarray(val))
    train = rng.permutation(rest[~np.isin(groups[rest], val_groups)])
    labelled = np.zeros(len(train), bool)
    labelled[: budget - len(val)] = True
    return train, val, test, labelled


def test_split(num_rows, args, groups=None):
    """`(test rows, all other rows)`: fixed across seeds, whole groups."""
    groups = np.arange(num_rows) if groups is None else np.asarray(groups)
    names = np.unique(groups)
    order = np.random.default_rng(args.split_seed).permutation(len(names))
    test_groups = names[order[: int(len(names) * args.test_fraction)]]
    is_test = np.isin(groups, test_groups)
    return np.flatnonzero(is_test), np.flatnonzero(~is_test)


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


def aggregate(teacher_scores, multiclass=False):
    """The aggregation heuristics: mean, majority vote, Dawid-Skene, Snorkel.

    Each gives a score per row and label; a row no teacher scored gets 0.5
    (1 / classes for multi-class labels). Votes are teacher confidences
    thresholded at 0.5 (multi-class: each teacher's top class); the vote
    score is the share of votes; Dawid-Skene (crowd-kit) and Snorkel's
    LabelModel are fitted on the votes of all rows, without labels, one
    label at a time (multi-class: one model over the classes). These need
    every teacher at inference; the students trained on them do not.
    """
    present = ~np.isnan(teacher_scores)
    count = present.sum(axis=1)
    mean = _nan_mean(teacher_scores)
    if multiclass:
        return _aggregate_classes(teacher_scores, mean)
    votes = (np.nan_to_num(teacher_scores) >= 0.5).astype("float32")
    vote = np.where(present, votes, 0).sum(axis=1) / np.maximum(count, 1)
    dawid_skene = np.full(mean.shape, 0.5, "float32")
    snorkel = np.full(mean.shape, 0.5, "float32")
    for label in range(teacher_scores.shape[2]):
        said = np.where(present[:, :, label], votes[:, :, label], -1)
        dawid_skene[:, label] = _dawid_skene(said, 2)[:, 1]
        snorkel[:, label] = _snorkel(said, 2)[:, 1]
    unscored = count == 0
    return {
        "teacher_mean": np.where(unscored, 0.5, mean),
        "majority_vote": np.where(unscored, 0.5, vote),
        "dawid_skene": dawid_skene,
        "snorkel": snorkel,
    }


def _aggregate_classes(teacher_scores, mean):
    num_classes = teacher_scores.shape[2]
    scored = ~np.isnan(teacher_scores).all(axis=2)  # (rows, teachers)
    said = np.where(
        scored, np.nan_to_num(teacher_scores, nan=-1).argmax(axis=2), -1
    )
    votes = np.stack([(said == c).sum(axis=1) for c in range(num_classes)], 1)
    count = scored.sum(axis=1, keepdims=True)
    uniform = np.full(mean.shape, 1.0 / num_classes, "float32")
    unscored = count == 0
    return {
        "teacher_mean": np.where(unscored, uniform, mean),
        "majority_vote": np.where(
            unscored, uniform, votes / np.maximum(count, 1)
        ),
        "dawid_skene": _dawid_skene(said, num_classes),
        "snorkel": _snorkel(said, num_classes),
    }


def _dawid_skene(said, num_classes):
    """crowd-kit's Dawid-Skene on votes (-1: no vote): `(rows, classes)`."""
    import pandas as pd
    from crowdkit.aggregation import DawidSkene

    rows, teachers = np.nonzero(said >= 0)
    frame = pd.DataFrame(
        {"task": rows, "worker": teachers, "label": said[rows, teachers]}
    )
    probabilities = DawidSkene(n_iter=100).fit_predict_proba(frame)
    scores = np.full((len(said), num_classes), 1.0 / num_classes, "float32")
    for label in probabilities.columns:
        scores[probabilities.index.to_numpy(), int(label)] = probabilities[
            label
        ].to_numpy()
    return scores


def _snorkel(said, num_classes):
    """Snorkel's LabelModel on votes (-1 abstains): `(rows, classes)`."""
    from snorkel.labeling.model import LabelModel

    model = LabelModel(cardinality=num_classes, verbose=False)
    model.fit(said.astype(int), n_epochs=200, seed=0, progress_bar=False)
    return model.predict_proba(said.astype(int)).astype("float32")


def _nan_mean(values):
    present = ~np.isnan(values)
    total = np.where(present, values, 0.0).sum(axis=1)
    return total / np.maximum(present.sum(axis=1), 1)


def pseudo_labels(task, rows, labelled, scores=None):
    """Ground truth where known, else an aggregation's scores (default:
    the teachers' mean confidence); NaN on rows no teacher scored."""
    if scores is None:
        scores = _nan_mean(task.teacher_scores)
    targets = scores[rows].astype("float32").copy()
    unscored = ~(~np.isnan(task.teacher_scores[rows])).any(axis=(1, 2))
    targets[unscored] = np.nan
    targets[labelled] = task.labels[rows][labelled]
    return targets


class _BestOnValidation(keras.callbacks.Callback):
    """Keeps the weights with the best validation PR-AUC (ground truth).

    With `labelled` rows `(x, y)`, a Teacher2Task student also fits its
    task combination on them at each evaluation and is scored by the
    reading it keeps (`Teacher2TaskClassifier.fit_combination`).
    """

    def __init__(self, inputs, labels, label, every, labelled=None):
        super().__init__()
        self.inputs, self.labels = inputs, labels
        self.label, self.every, self.labelled = label, every, labelled
        self.best, self.best_step, self.weights = -1.0, 0, None
        self.combination = None

    def on_epoch_end(self, epoch, logs=None):
        step = (epoch + 1) * self.every
        if self.labelled is None:
            scores = self.model.predict(self.inputs, batch_size=512, verbose=0)
            value, note = pr_auc(self.labels, scores), ""
        else:
            report = self.model.fit_combination(
                *self.labelled, validation_data=(self.inputs, self.labels)
            )
            value = max(report["task_0"], report["combined"])
            note = (
                f" (task 0 {report['task_0']:.3f}, combined "
                f"{report['combined']:.3f})"
            )
        print(f"    {self.label}: step {step}, validation {value:.3f}{note}")
        if value > self.best:
            self.best, self.best_step = value, step
            self.weights = self.model.get_weights()
            self.combination = self.model.combination


def train_student(method, task, split, args, seed, aggregated=None):
    """Trains one student; returns its test scores, every task's too.

    `method` is `"teacher2task_packed"` or `"teacher2task_per_example"`
    (N+1 tasks through `keras_t2t.data.expand`, one layout or the other),
    `"student_<aggregation>"` (the ground-truth task only, on that
    aggregation's labels where no ground truth is known) or
    `"student_ground_truth"`. Every method trains the same architecture
    for the same number of steps on batches of `args.batch_size`
    examples, keeping the checkpoint with the best validation PR-AUC.

    A Teacher2Task student reads the ground truth as the library does by
    default: task 0, or its learned combination of the teacher tasks
    where that wins on validation.

    Returns `(ground-truth scores, all-task scores or None)` on the test
    rows.
    """
    train, val, test, labelled = split
    keras.utils.set_random_seed(seed)
    vocabulary = keras_t2t.TeacherVocabulary(task.teacher_names)
    rows = {name: value[train] for name, value in task.inputs.items()}
    labels = np.where(labelled[:, None], task.labels[train], np.nan)
    packed = method == "teacher2task_packed"
    if method.startswith("teacher2task"):
        table = dict(rows, label=labels)
        for k, name in enumerate(task.teacher_names):
            table[name] = task.teacher_scores[train][:, k]
        dataset = keras_t2t.data.expand(
            table,
            vocabulary,
            inputs=list(task.inputs),
            ground_truth="label",
            packed=packed,
            ground_truth_weight=1.0 if packed else args.ground_truth_weight,
            balance=args.balance or None,
            shuffle_buffer=20_000,
            seed=seed,
            batch_size=args.batch_size,
            drop_remainder=True,
            repeat=True,
        )
    else:
        if method == "student_ground_truth":
            targets = labels
        else:
            name = method[len("student_") :]
            targets = pseudo_labels(task, train, labelled, aggregated[name])
        keep = ~np.isnan(targets).all(axis=1)
        x = {name: value[keep] for name, value in rows.items()}
        dataset = (
            tf.data.Dataset.from_tensor_slices((x, targets[keep]))
            .shuffle(int(keep.sum()), seed=seed, reshuffle_each_iteration=True)
            .repeat()
            .batch(args.batch_size, drop_remainder=True)
        )
    backbone_args = dict(task.backbone_args)
    if args.position_embedding:
        sequence = task.inputs.get("features", task.inputs.get("token_ids"))
        backbone_args["max_sequence_length"] = sequence.shape[1]
    backbone = keras_t2t.models.Teacher2TaskBackbone(
        num_teachers=vocabulary.num_teachers,
        num_layers=args.num_layers,
        num_heads=args.num_heads,
        hidden_dim=args.hidden_dim,
        intermediate_dim=args.intermediate_dim,
        dropout=args.dropout,
        task_layout="packed" if packed else "per_example",
        **backbone_args,
    )
    classifier = keras_t2t.models.Teacher2TaskClassifier(
        backbone,
        num_labels=task.labels.shape[1],
        teacher_vocabulary=vocabulary,
    )
    learning_rate = args.learning_rate
    if args.schedule == "cosine":
        learning_rate = keras.optimizers.schedules.CosineDecay(
            args.learning_rate, decay_steps=args.steps
        )
    loss = keras_t2t.losses.MaskedMultiTaskLoss(
        loss=args.loss,
        normalize=args.task_normalize if packed else "entries",
    )
    classifier.compile(
        optimizer=keras.optimizers.Adam(learning_rate), loss=loss, metrics=[]
    )
    val_inputs = {name: value[val] for name, value in task.inputs.items()}
    labelled_rows = None
    if method.startswith("teacher2task"):
        labelled_rows = (
            {name: value[labelled] for name, value in rows.items()},
            labels[labelled],
        )
    best = _BestOnValidation(
        val_inputs, task.labels[val], method, args.eval_every, labelled_rows
    )
    classifier.fit(
        dataset,
        steps_per_epoch=args.eval_every,
        epochs=max(1, args.steps // args.eval_every),
        callbacks=[best],
        verbose=0,
    )
    classifier.set_weights(best.weights)
    classifier.combination = best.combination
    test_inputs = {name: value[test] for name, value in task.inputs.items()}
    scores = classifier.predict(test_inputs, batch_size=512, verbose=0)
    if not method.startswith("teacher2task"):
        return scores, None
    tasks = classifier.predict(
        test_inputs, batch_size=512, all_tasks=True, verbose=0
    )
    return scores, tasks


def run(task, args):
    """Runs every method over `args.seeds` seeds and writes the report."""
    os.makedirs(args.output, exist_ok=True)
    results, curves = {}, {}
    started = time.time()
    aggregated = aggregate(task.teacher_scores, task.multiclass)
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        split = split_rows(len(task.labels), args, seed, task.groups)
        train, val, test, labelled = split
        truth = task.labels[test]
        print(
            f"[{task.name}] seed {seed}: {len(train)} train rows "
            f"({int(labelled.sum())} with ground truth), {len(val)} "
            f"validation (labelled), {len(test)} test"
        )
        scores = {}
        for k, name in enumerate(task.teacher_names):
            scores[f"teacher: {name}"] = task.teacher_scores[test][:, k]
        for name, value in aggregated.items():
            scores[f"{name} (needs all teachers)"] = value[test]
        train_targets = {
            "ground truth": (
                train[labelled],
                task.labels[train][labelled],
            ),
            "pseudo-labels": (
                train,
                pseudo_labels(task, train, labelled),
            ),
        }
        for target_name, (rows, targets) in train_targets.items():
            name = f"{task.classical_name} on {target_name}"
            scores[name] = task.classical(
                rows, targets, val, task.labels[val], test
            )
        for method in filter(None, args.students.split(",")):
            start = time.time()
            scores[method], tasks = train_student(
                method, task, split, args, seed, aggregated
            )
            if tasks is not None:
                teacher_mean = tasks[:, 1:].mean(axis=1)
                scores[f"{method}: task 0 alone"] = tasks[:, 0]
                scores[f"{method}: mean of teacher tasks"] = teacher_mean
            print(f"  {method}: {time.time() - start:.0f} s")
        for name, value in scores.items():
            results.setdefault(name, []).append(pr_auc(truth, value))
        if seed == 0:
            curves = {name: (truth, value) for name, value in scores.items()}
        _report(task, args, results, curves, time.time() - started)
    return results


def _report(task, args, results, curves, seconds):
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
    _plot(task, curves, os.path.join(args.output, "pr_curves.png"))


def _plot(task, curves, path):
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
        style = "-" if name in STUDENTS else ":"
        axis.plot(recall, precision, style, label=name, linewidth=1.2)
    axis.set_xlabel("recall")
    axis.set_ylabel("precision")
    axis.set_title(f"{task.name}: PR curves, seed 0 (label 0)")
    axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def logistic_regression(features):
    """A classical reference: logistic regression on fixed features.

    Targets may be soft (pseudo-labels): each row then counts as a positive
    with weight p and a negative with weight 1 - p. The inverse
    regularisation strength is chosen on the validation rows.
    """
    from sklearn.linear_model import LogisticRegression

    def fit_predict(rows, targets, val, val_labels, test):
        targets = np.asarray(targets).reshape(len(rows), -1)
        outputs = []
        for label in range(targets.shape[1]):
            keep = ~np.isnan(targets[:, label])
            p = targets[keep, label]
            x = features[rows[keep]]
            x2 = _stack(x, x)
            y2 = np.concatenate([np.ones(len(p)), np.zeros(len(p))])
            w2 = np.concatenate([p, 1 - p])
            best, best_model = -1.0, None
            for c in (0.1, 1.0, 10.0):
                model = LogisticRegression(C=c, max_iter=2000)
                model.fit(x2, y2, sample_weight=w2)
                value = pr_auc(
                    val_labels[:, label],
                    model.predict_proba(features[val])[:, 1],
                )
                # NaN when no validation row is positive for this label:
                # then the first (strongest regularisation) is kept.
                if best_model is None or value > best:
                    best, best_model = value, model
            outputs.append(best_model.predict_proba(features[test])[:, 1])
        return np.stack(outputs, axis=1)

    return fit_predict


def _stack(a, b):
    if hasattr(a, "tocsr"):
        from scipy.sparse import vstack

        return vstack([a, b])
    return np.concatenate([a, b])
