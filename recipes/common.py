"""What every recipe shares: flags, splits, and the run over every method.

The rest of the package: `recipes.aggregation` (the heuristics and their
pseudo-labels), `recipes.students` (training one student),
`recipes.classical` (the logistic-regression reference) and
`recipes.evaluation` (PR-AUC, results files, PR curves). Run a recipe from
the repository root as a module: `python -m recipes.text_sentiment`.

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

import os
import time

import numpy as np

from recipes import classical
from recipes.aggregation import aggregate
from recipes.aggregation import pseudo_labels
from recipes.evaluation import pr_auc
from recipes.evaluation import write_report
from recipes.students import CROWD_STUDENTS
from recipes.students import DOCUMENTED
from recipes.students import STUDENTS
from recipes.students import train_student


def add_common_flags(parser, **defaults):
    """Flags every recipe takes; `defaults` overrides per recipe (and
    `students`, the default of `--students`)."""
    students = defaults.pop("students", ",".join(STUDENTS))
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
        "pretrain_steps": 0,
        "mask_rate": 0.15,
        "ground_truth_token": "free",
        "teacher_shrinkage": 0.0,
        # The classifier's default ("auto"), or none / independent /
        # exclusive ("classes": exclusive for one-hot tasks).
        "teacher_transition": "auto",
        "transition_weight": 1.0,
        "transition_shrinkage": 0.0,
        "ema": 0.0,
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
        default=students,
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
    if args.ground_truth_token not in ("free", "mixture"):
        parser.error("--ground-truth-token must be free or mixture.")
    if not 0.0 <= args.ema < 1.0:
        parser.error("--ema is a momentum in [0, 1); 0 turns it off.")
    if args.teacher_transition not in (
        "auto",
        "none",
        "independent",
        "exclusive",
        "classes",
    ):
        parser.error(
            "--teacher-transition must be auto, none, independent, "
            "exclusive or classes."
        )
    if args.loss not in ("mse", "bce"):
        parser.error("--loss must be mse or bce (every student).")
    known = STUDENTS + CROWD_STUDENTS
    unknown = set(filter(None, args.students.split(","))) - set(known)
    if unknown:
        parser.error(
            f"--students: unknown {sorted(unknown)}; choose from "
            f"{', '.join(known)}."
        )
    if args.quick:
        args.seeds, args.steps, args.eval_every = 1, 20, 10
        args.num_layers, args.hidden_dim, args.intermediate_dim = 1, 16, 32
        args.num_heads = 2
        args.pretrain_steps = min(args.pretrain_steps, 10)
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
        classical: callable `(train_rows, targets, val_rows, val_labels,
            test_rows) -> test scores`, the reference a practitioner would
            try first, fitted on hard or soft targets; or a dict of them
            by name (several references).
        classical_name: str, the name of a single `classical`.
        groups: int array `(rows,)` or `None`. Rows sharing a group are
            kept in one split (e.g. clips made of the same images).
        multiclass: bool. The labels are one-hot classes (one per row):
            votes are each teacher's top class, and Dawid-Skene and
            Snorkel are fitted as multi-class models.
        label_names: list of str or `None`. What each label means, for
            the pictures.
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
        classical_name=None,
        groups=None,
        multiclass=False,
        label_names=None,
    ):
        self.name = name
        self.inputs = inputs
        self.labels = labels.astype("float32")
        self.teacher_scores = teacher_scores.astype("float32")
        self.teacher_names = list(teacher_names)
        self.backbone_args = backbone_args
        if callable(classical):
            classical = {classical_name: classical}
        self.classical = dict(classical or {})
        self.groups = groups
        self.multiclass = multiclass
        self.label_names = list(label_names or [])


def sequence_task(name, sequences, pixels, classical_name, **fields):
    """A `Task` whose rows are sequences of feature vectors, every position
    present (an image's patches, a clip's frames), with a logistic
    regression on each row's `pixels`, flattened, as its classical
    reference. `fields` are the `Task`'s other arguments."""
    return Task(
        name=name,
        inputs={
            "features": sequences,
            "padding_mask": np.ones(sequences.shape[:2], "int32"),
        },
        backbone_args={"feature_dim": sequences.shape[-1]},
        classical=classical.logistic_regression(
            pixels.reshape(len(pixels), -1)
        ),
        classical_name=classical_name,
        **fields,
    )


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


def make_deterministic():
    """Makes a run a function of its seeds on the current backend.

    Each student sets `keras.utils.set_random_seed(seed)` (Python, NumPy
    and the backend's generators, and `tf.data`'s seeded shuffles); this
    also makes the backend's ops deterministic: TensorFlow's op
    determinism (which also fixes `tf.data`'s element order) and torch's
    deterministic algorithms. JAX's CPU ops are deterministic already.
    """
    import keras

    backend = keras.config.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    elif backend == "torch":
        import torch

        torch.use_deterministic_algorithms(True)


def run(task, args):
    """Runs every method over `args.seeds` seeds and writes the report."""
    make_deterministic()
    os.makedirs(args.output, exist_ok=True)
    results, curves = {}, {}
    started = time.time()
    aggregated = aggregate(task.teacher_scores, task.multiclass)
    report = None  # Of the first seed's Teacher2Task student.
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
        for reference, fit_predict in task.classical.items():
            for target_name, (rows, targets) in train_targets.items():
                scores[f"{reference} on {target_name}"] = fit_predict(
                    rows, targets, val, task.labels[val], test
                )
        for method in filter(None, args.students.split(",")):
            start = time.time()
            scores[method], tasks, classifier = train_student(
                method, task, split, args, seed, aggregated
            )
            if (
                method in ("teacher2task_sparse", "teacher2task_packed")
                and seed == args.first_seed
                and report is None
            ):
                report = teacher_report(task, test, classifier)
            if tasks is not None:
                teacher_mean = tasks[:, 1:].mean(axis=1)
                scores[f"{method}: task 0 alone"] = tasks[:, 0]
                scores[f"{method}: mean of teacher tasks"] = teacher_mean
            print(f"  {method}: {time.time() - start:.0f} s")
        for name, value in scores.items():
            results.setdefault(name, []).append(pr_auc(truth, value))
        if seed == 0:
            curves = {name: (truth, value) for name, value in scores.items()}
        write_report(
            task,
            args,
            results,
            curves,
            time.time() - started,
            STUDENTS + CROWD_STUDENTS,
            documented=DOCUMENTED,
        )
        if report is not None:
            # `write_report` rewrote results.md: add the report again.
            append_teacher_report(task, args, report)
    return results


def teacher_report(task, test, classifier):
    """`keras_t2t.diagnostics.teacher_report` of the teachers and a trained
    Teacher2Task student on the test rows (every label known there)."""
    import keras_t2t

    table = {name: value[test] for name, value in task.inputs.items()}
    table["label"] = task.labels[test]
    for k, name in enumerate(task.teacher_names):
        table[name] = task.teacher_scores[test][:, k]
    return keras_t2t.diagnostics.teacher_report(
        table,
        keras_t2t.TeacherVocabulary(task.teacher_names),
        inputs=list(task.inputs),
        ground_truth="label",
        classifier=classifier,
    )


def append_teacher_report(task, args, report):
    """Adds the report to `results.md` and its pictures to `--output`."""
    with open(os.path.join(args.output, "results.md"), "a") as f:
        f.write(
            f"\n## Teachers and the Teacher2Task student (test rows, seed "
            f"{args.first_seed})\n\n"
        )
        f.write(report.to_markdown(per_label=task.labels.shape[1] == 1))
        f.write("\n")
    report.plot(args.output)
