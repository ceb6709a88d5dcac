import os

import numpy as np
from keras import ops

from keras_t2t import _arguments
from keras_t2t.data.sources import TableSpec
from keras_t2t.data.sources import read_rows
from keras_t2t.diagnostics import plots
from keras_t2t.diagnostics import summary
from keras_t2t.diagnostics.statistics import TableStatistics
from keras_t2t.diagnostics.statistics import calibration_bins
from keras_t2t.diagnostics.statistics import expected_calibration_error
from keras_t2t.metrics.pr_auc import pr_auc_score

_BLOCK_ROWS = 4096
# A block holds at most this many targets: a wide table of 1,000 teachers is
# read ~500 rows at a time, so a block stays ~2 MB whatever N.
_BLOCK_VALUES = 1 << 19

_LABELS = {
    "teacher": "teacher",
    "label": "label",
    "scored": "scored",
    "coverage": "coverage",
    "overlap": "overlap",
    "conflict": "conflict",
    "mean_score": "mean score",
    "labelled_scored": "labelled",
    "pr_auc": "PR-AUC",
    "ece": "ECE",
    "fidelity_mae": "fidelity MAE",
    "fidelity_corr": "fidelity r",
    "combination_weight": "weight",
}


def teacher_report(
    source,
    vocabulary,
    inputs,
    ground_truth=None,
    teachers=None,
    *,
    classifier=None,
    threshold=0.5,
    num_bins=10,
    min_labelled=10,
    summarize_above=20,
    top_k=10,
    min_overlap=5,
    shrinkage=10.0,
    block_size=_BLOCK_ROWS,
    batch_size=None,
    file_format=None,
    **table_options,
):
    """Measures each teacher of a table, and a student trained on them.

    For every teacher (and label), as Snorkel's `LFAnalysis` does for
    labelling functions: coverage (the share of rows it scored), overlap
    (the share of rows it scored where another teacher scored too) and
    conflict (the share of rows where another teacher's vote differs from
    its own; a vote is a confidence at or above `threshold`), and its mean
    score. Against the ground truth, on the labelled rows the teacher
    scored: PR-AUC (average precision, as scikit-learn's
    `average_precision_score`) and expected calibration error over
    `num_bins` equal-width bins, with the number of rows they are measured
    on; n/a (NaN) with fewer than `min_labelled` such rows or no positive.

    With a trained `Teacher2TaskClassifier`, also: its fidelity to each
    teacher on the table's rows (how closely its task-k output reproduces
    teacher k's scores: mean absolute error and Pearson correlation), its
    own reading of the ground truth (PR-AUC and ECE on the labelled rows),
    the weights of its learned `combination` when it keeps one, and the
    cosine similarity of its task embeddings. Pass rows it did not train
    on for an honest measure.

    The table is read as `keras_t2t.data.expand` reads it, with the same
    arguments, and streamed in blocks of `block_size` rows: counts and
    sums accumulate per block, and only the (score, label) pairs of
    labelled entries are kept (PR-AUC needs them exactly). Pairs of
    teachers are counted only where they scored a row together, so a
    crowd table (each item scored by a few of 1,000 workers) costs what
    its scores cost, not N x N.

    Every teacher's skill is measured with its counts: the share of its
    votes that match the ground truth, and the share that match the other
    teachers' majority on the row, each shrunk towards the pooled rate
    (`shrinkage` pseudo-rows) with a 95% Wilson interval, so that a
    worker with three lucky votes does not rank first (`skill_frame()`).

    With more than `summarize_above` teachers the report summarises
    instead of listing: its Markdown shows the distribution of each
    per-teacher statistic over the teachers (quantiles; `plot` draws the
    histograms), the `top_k` teachers by skill and the `top_k` last, the
    `top_k` most conflicting pairs among those that co-scored at least
    `min_overlap` rows, and the memory of the student's task table; no N x
    N matrix is made (`pair_scored`, `pair_conflict` and
    `task_similarity` are `None`; `co_scored` holds the pairs).
    `to_frame()` still has a row per teacher.

    Args:
        source: the table: a dict of arrays, a DataFrame, a
            `tf.data.Dataset` of dicts, or CSV, JSON Lines, Parquet or
            TFRecord file(s), as for `expand`.
        vocabulary: `keras_t2t.TeacherVocabulary`.
        inputs: str or list of str. The input columns (the classifier's
            inputs, when one is given).
        ground_truth: str. The ground-truth column; as for `expand`.
        teachers: list or dict of teacher columns; as for `expand`.
        classifier: a trained `keras_t2t.models.Teacher2TaskClassifier`
            taking the input columns, or `None`. Defaults to `None`.
        threshold: float in `(0, 1)`. Confidences at or above it vote
            positive, for overlap and conflict. Defaults to `0.5`.
        num_bins: int. Calibration bins. Defaults to `10`.
        min_labelled: int. The fewest labelled rows PR-AUC and ECE are
            measured on; below it they are n/a. Defaults to `10`.
        summarize_above: int. With more teachers than this, the report
            summarises instead of drawing N x N matrices. Defaults to `20`.
        top_k: int. Pairs and teachers listed in a summary. Defaults to
            `10`.
        min_overlap: int. The fewest rows a pair of teachers must have
            co-scored to be ranked among the most conflicting (one row in
            common would make a share of 1.0). Defaults to `5`.
        shrinkage: float. Pseudo-rows of the pooled rate added to each
            teacher's skill counts. Defaults to `10.0`.
        block_size: int. Rows per block, at most: a wide table of many
            teachers is read in blocks of at most 2**19 values. Defaults
            to 4096.
        batch_size: int or `None`. The classifier's `predict` batch size.
        file_format: as for `expand`.
        **table_options: `layout`, `num_labels`, `rescale`,
            `ignore_columns` and the long-table columns, as for `expand`.

    Returns:
        A `TeacherReport`: `to_frame()`, `to_markdown()`, `plot(directory)`.

    Example:
    ```python
    report = keras_t2t.diagnostics.teacher_report(
        "reviews.csv", vocabulary, inputs="text", ground_truth="label",
        classifier=classifier,
    )
    print(report.to_markdown())
    report.plot("outputs/diagnostics")
    ```
    """
    _arguments.number("threshold", threshold, above=0.0, below=1.0)
    for name, value, least in (
        ("num_bins", num_bins, 1),
        ("min_labelled", min_labelled, 1),
        ("block_size", block_size, 1),
        ("summarize_above", summarize_above, 0),
        ("top_k", top_k, 1),
        ("min_overlap", min_overlap, 1),
    ):
        _arguments.integer(name, value, least)
    _arguments.integer("batch_size", batch_size, 1, allow_none=True)
    _arguments.number("shrinkage", shrinkage, 0.0)
    if classifier is not None:
        _check_classifier(classifier, vocabulary)
    spec = TableSpec.of_call(
        teacher_report,
        vocabulary,
        inputs,
        ground_truth,
        teachers,
        table_options,
    )
    rows = read_rows(source, spec, file_format=file_format)
    block_rows = max(
        1, min(int(block_size), _BLOCK_VALUES // (vocabulary.num_teachers + 1))
    )
    statistics = None
    for block in rows.blocks(block_rows).as_numpy_iterator():
        targets = block["targets"]
        if statistics is None:
            num_labels = targets.shape[-1]
            if classifier is not None and classifier.num_labels != num_labels:
                raise ValueError(
                    f"The table has {num_labels} label(s) per row but the "
                    f"classifier predicts {classifier.num_labels}."
                )
            statistics = TableStatistics(
                vocabulary.num_teachers, num_labels, threshold
            )
        predictions = reading = None
        if classifier is not None:
            predictions, reading = _predict(
                classifier, block["inputs"], targets, batch_size
            )
        statistics.add(targets, predictions, reading)
    if statistics is None or statistics.rows == 0:
        raise ValueError("The table has no rows: there is nothing to report.")
    return TeacherReport._from_statistics(
        statistics,
        vocabulary,
        num_bins=int(num_bins),
        min_labelled=int(min_labelled),
        classifier=classifier,
        summarize_above=int(summarize_above),
        top_k=int(top_k),
        min_overlap=int(min_overlap),
        shrinkage=float(shrinkage),
    )


def _check_classifier(classifier, vocabulary):
    own = getattr(classifier, "teacher_vocabulary", None)
    if own is not None and own != vocabulary:
        raise ValueError(
            f"The classifier was trained on the teachers {list(own.names)} "
            f"but the report's vocabulary is {list(vocabulary.names)}: task "
            "k must be the same teacher in both."
        )
    if classifier.backbone.num_teachers != vocabulary.num_teachers:
        raise ValueError(
            f"The classifier has {classifier.backbone.num_teachers} teacher "
            f"tasks but the vocabulary has {vocabulary.num_teachers} "
            f"teachers ({list(vocabulary.teachers)})."
        )


def _predict(classifier, inputs, targets, batch_size):
    """Every scored task's and the ground-truth reading's predictions on
    the rows of a block that have any value (NaN elsewhere)."""
    rows = ~np.isnan(targets).all(axis=(1, 2))
    shape = targets.shape
    predictions = np.full(shape, np.nan, np.float32)
    reading = np.full((shape[0], shape[2]), np.nan, np.float32)
    if not rows.any():
        return predictions, reading
    x = {name: np.asarray(value)[rows] for name, value in inputs.items()}
    options = dict(batch_size=batch_size, verbose=0)
    combination = classifier.combination
    if getattr(classifier.backbone, "sparse", False):
        # Each row reads the ground truth and the teachers that scored it,
        # one pass whatever N (`all_tasks=True` would read all N + 1).
        scored = ~np.isnan(targets[rows]).all(axis=2)
        scored[:, 0] = True
        slots = np.argsort(~scored, axis=1, kind="stable")
        slots = slots[:, : scored.sum(axis=1).max()]
        task_ids = np.where(
            np.take_along_axis(scored, slots, axis=1), slots, -1
        ).astype("int32")
        # With a combination `predict` returns its reading, not the
        # slots asked for: read the slots without it, then the reading.
        classifier.combination = None
        try:
            outputs = np.asarray(
                classifier.predict(dict(x, task_ids=task_ids), **options)
            )
        finally:
            classifier.combination = combination
        row, slot = np.nonzero(task_ids >= 0)
        block_rows = np.flatnonzero(rows)
        predictions[block_rows[row], task_ids[row, slot]] = outputs[row, slot]
        if combination is None:
            reading[rows] = outputs[:, 0]
        else:
            reading[rows] = np.asarray(classifier.predict(x, **options))
        return predictions, reading
    tasks = np.asarray(classifier.predict(x, all_tasks=True, **options))
    predictions[rows] = tasks
    if combination is not None:
        chosen = tasks[:, combination.tasks(classifier.backbone.num_teachers)]
        reading[rows] = ops.convert_to_numpy(combination(chosen))
    else:
        reading[rows] = tasks[:, 0]
    return predictions, reading


def _task_layer(classifier):
    backbone = classifier.backbone
    # Packed and sparse models hold their task vectors in `TaskTokens`,
    # per-example ones in `TeacherEmbedding`; the table is the same kind.
    if backbone.packed:
        return backbone.task_tokens
    return backbone.teacher_embedding


def _task_vectors(classifier):
    """The task vectors as the model reads them (a mixture ground truth
    composed), as float64."""
    layer = _task_layer(classifier)
    vectors = getattr(layer, "task_vectors", None)
    vectors = vectors() if vectors is not None else layer.embeddings
    return np.asarray(ops.convert_to_numpy(vectors), np.float64)


def _task_table(variable):
    """The task table's shape, dtype and bytes: what a student pays per
    teacher, whatever the rows."""
    shape = tuple(int(d) for d in variable.shape)
    dtype = np.dtype(str(variable.dtype).split(".")[-1])
    return {
        "shape": shape,
        "dtype": dtype.name,
        "bytes": int(np.prod(shape)) * dtype.itemsize,
    }


def _cosine_to(vectors, index):
    norms = np.linalg.norm(vectors, axis=1)
    unit = vectors / np.where(norms > 0, norms, 1.0)[:, None]
    return unit @ unit[index]


def _cosine(vectors):
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    unit = vectors / np.where(norms > 0, norms, 1.0)
    return unit @ unit.T


class TeacherReport:
    """What each teacher of a table gives, and what a student made of it.

    Made by `keras_t2t.diagnostics.teacher_report`. Values that cannot be
    measured (a teacher that scored nothing, too few labelled rows, no
    positive label) are NaN, printed `n/a`; `notes` says why.

    Attributes:
        teachers: tuple of str. The teacher names, in task order 1..N.
        num_labels: int.
        num_rows: int. Rows read.
        rows_without_teacher: int. Rows no teacher scored (any label).
        labelled: int array `(num_labels,)`. Rows with a ground-truth
            value, per label; `positives` those that are 1.
        scored, coverage, overlap, conflict, mean_score, pr_auc, ece,
        labelled_scored: arrays `(N, num_labels)`, per teacher and label
            (`labelled_scored`: the labelled rows the teacher scored,
            which PR-AUC and ECE are measured on).
        pair_scored, pair_conflict: arrays `(N, N, num_labels)`: rows both
            teachers scored, and the share of them where their votes
            differ; `None` in a summary (see `co_scored`).
        co_scored: dict, the pairs of teachers that scored some row
            together, sparse: `teachers` `(P, 2)` (task order minus one,
            j < k), `scored` `(P, num_labels)` rows both scored, `conflict`
            `(P, num_labels)` the share where their votes differ (NaN
            where they scored no row of that label together).
        correct, agreement_rows, agreement: int arrays `(N, num_labels)`:
            votes matching the ground truth (of `labelled_scored`), rows
            where the other teachers' votes have a strict majority, and
            votes matching it.
        skill: dict of `(N,)` arrays, labels pooled: the counts above,
            `accuracy` and `agreement_rate` with their `_shrunk` values
            and 95% Wilson intervals (`_low`, `_high`), `skill` (the
            shrunk accuracy, or the shrunk agreement without ground
            truth), `basis` (which) and `order` (teachers by skill,
            highest first).
        summarized: bool. More than `summarize_above` teachers: the
            Markdown and pictures summarise instead of drawing N x N.
        top_conflicts: list of dicts (`teachers`, `scored`, `conflict`):
            the `top_k` most conflicting pairs, labels pooled, among those
            that co-scored `min_overlap` rows or more.
        distributions: dict `{statistic: {measured, missing, quantiles,
            counts, edges}}`: each per-teacher statistic (labels pooled)
            over the teachers, and `pair conflict` over the ranked pairs.
        fidelity_rows, fidelity_mae, fidelity_corr: arrays
            `(N, num_labels)` or `None` (no classifier): the student's
            task k against teacher k, on the rows teacher k scored.
        student: dict or `None`: `labelled`, `pr_auc` and `ece` per label
            (arrays) of the student's ground-truth reading.
        combination_weights: list of N floats or `None`: the weights of
            the classifier's learned combination, when it keeps one.
        task_similarity: array `(N + 1, N + 1)` or `None`: the cosine
            similarity of the task embeddings (ground truth first); `None`
            in a summary.
        ground_truth_similarity: array `(N + 1,)` or `None`: the cosine
            similarity of each task embedding to the ground truth's.
        task_table: dict or `None`: the `shape`, `dtype` and `bytes` of
            the student's task table ((N + 1) x hidden_dim), what the
            student's size grows by per teacher.
        task_names: tuple of str. The task names, ground truth first.
        calibration: dict `{name: (count, mean score, positive rate)}`,
            arrays `(num_bins,)` over the labelled rows, labels pooled: a
            reliability diagram per teacher, and for the student's reading
            (`"student: ground truth"`) with a classifier.
        notes: list of str. Why values are n/a, in words.
    """

    def __init__(self, **values):
        for name, value in values.items():
            setattr(self, name, value)

    @classmethod
    def _from_statistics(
        cls,
        statistics,
        vocabulary,
        num_bins,
        min_labelled,
        classifier,
        summarize_above=20,
        top_k=10,
        min_overlap=5,
        shrinkage=10.0,
    ):
        s = statistics
        num_teachers, num_labels = s.num_teachers, s.num_labels
        summarized = num_teachers > summarize_above
        shape = (num_teachers, num_labels)
        pr_auc = np.full(shape, np.nan)
        ece = np.full(shape, np.nan)
        labelled_scored = np.zeros(shape, np.int64)
        calibration = {}
        for k in range(num_teachers):
            for label in range(num_labels):
                scores, labels = s.labelled_pairs(k, label)
                labelled_scored[k, label] = len(scores)
                if len(scores) >= min_labelled:
                    pr_auc[k, label] = pr_auc_score(labels, scores)
                    ece[k, label] = expected_calibration_error(
                        labels, scores, num_bins
                    )
            scores, labels = s.labelled_pairs(k)
            calibration[vocabulary.teachers[k]] = calibration_bins(
                labels, scores, num_bins
            )
        pair_teachers, pair_rows, pair_differ = s.pairs()
        pair_scored = pair_conflict = None
        with np.errstate(invalid="ignore", divide="ignore"):
            mean_score = np.where(s.scored > 0, s.score_sum / s.scored, np.nan)
            co_conflict = np.where(
                pair_rows > 0, pair_differ / pair_rows, np.nan
            )
            if not summarized:
                pair_scored = s.pair_scored
                pair_conflict = np.where(
                    pair_scored > 0, s.pair_disagree / pair_scored, np.nan
                )
        top, shares = summary.top_conflicts(
            pair_teachers,
            pair_rows,
            pair_differ,
            vocabulary.teachers,
            min_overlap,
            top_k,
        )
        values = dict(
            teachers=tuple(vocabulary.teachers),
            task_names=tuple(vocabulary.names),
            num_labels=num_labels,
            num_rows=s.rows,
            rows_without_teacher=s.rows_without_teacher,
            labelled=s.labelled,
            positives=s.positives,
            threshold=s.threshold,
            num_bins=num_bins,
            min_labelled=min_labelled,
            scored=s.scored,
            coverage=s.scored / s.rows,
            overlap=s.overlap / s.rows,
            conflict=s.conflict / s.rows,
            mean_score=mean_score,
            labelled_scored=labelled_scored,
            pr_auc=pr_auc,
            ece=ece,
            pair_scored=pair_scored,
            pair_conflict=pair_conflict,
            co_scored={
                "teachers": pair_teachers,
                "scored": pair_rows,
                "differ": pair_differ,
                "conflict": co_conflict,
            },
            correct=s.correct,
            agreement_rows=s.agreement_rows,
            agreement=s.agreement,
            skill=summary.skill_estimates(
                labelled_scored.sum(axis=1),
                s.correct.sum(axis=1),
                s.agreement_rows.sum(axis=1),
                s.agreement.sum(axis=1),
                shrinkage,
            ),
            summarized=summarized,
            summarize_above=summarize_above,
            top_k=top_k,
            min_overlap=min_overlap,
            shrinkage=shrinkage,
            top_conflicts=top,
            fidelity_rows=None,
            fidelity_mae=None,
            fidelity_corr=None,
            student=None,
            combination_weights=None,
            task_similarity=None,
            ground_truth_similarity=None,
            task_table=None,
            calibration=calibration,
        )
        if classifier is not None:
            fidelity = s.fidelity_values()
            if fidelity is None:  # No block had a row with a value.
                fidelity = (
                    np.zeros(shape, np.int64),
                    np.full(shape, np.nan),
                    np.full(shape, np.nan),
                )
            rows, mae, correlation = fidelity
            values.update(
                fidelity_rows=rows, fidelity_mae=mae, fidelity_corr=correlation
            )
            student = {
                "labelled": np.zeros(num_labels, np.int64),
                "pr_auc": np.full(num_labels, np.nan),
                "ece": np.full(num_labels, np.nan),
            }
            for label in range(num_labels):
                scores, labels = s.student_labelled_pairs(label)
                student["labelled"][label] = len(scores)
                if len(scores) >= min_labelled:
                    student["pr_auc"][label] = pr_auc_score(labels, scores)
                    student["ece"][label] = expected_calibration_error(
                        labels, scores, num_bins
                    )
            scores, labels = s.student_labelled_pairs()
            calibration["student: ground truth"] = calibration_bins(
                labels, scores, num_bins
            )
            values["student"] = student
            if classifier.combination is not None:
                values["combination_weights"] = [
                    float(w) for w in classifier.combination.weights
                ]
            values["task_table"] = _task_table(
                _task_layer(classifier).embeddings
            )
            embeddings = _task_vectors(classifier)
            if summarized:
                values["ground_truth_similarity"] = _cosine_to(embeddings, 0)
            else:
                similarity = _cosine(embeddings)
                values["task_similarity"] = similarity
                values["ground_truth_similarity"] = similarity[0]
        report = cls(**values)
        report.notes = summary.notes(report, grouped=summarized)
        report.distributions = report._distributions(shares)
        return report

    def _distributions(self, pair_shares):
        distributions = {}
        for name, key, value_range in summary.DISTRIBUTIONS:
            values = summary.per_teacher(self, key)
            if values is not None:
                distributions[name] = summary.distribution(values, value_range)
        distributions["pair conflict"] = summary.distribution(
            pair_shares, (0.0, 1.0)
        )
        return distributions

    # === Tables ===

    def _columns(self):
        # The per-teacher statistics, in the order the tables show them.
        columns = (
            "scored coverage overlap conflict mean_score labelled_scored "
            "pr_auc ece"
        ).split()
        if self.fidelity_rows is not None:
            # Measured on every row the teacher scored (`scored`).
            columns += ["fidelity_mae", "fidelity_corr"]
        return columns

    def _records(self, per_label):
        records = []
        for k, name in enumerate(self.teachers):
            labels = range(self.num_labels) if per_label else [None]
            for label in labels:
                record = {"teacher": name}
                if per_label:
                    record["label"] = label
                for column in self._columns():
                    record[column] = self._value(column, k, label)
                if self.combination_weights is not None:
                    record["combination_weight"] = self.combination_weights[k]
                records.append(record)
        return records

    def _value(self, column, k, label):
        values = getattr(self, column)[k]
        if label is not None:
            value = values[label]
            return int(value) if column in _COUNTS else float(value)
        # Over all labels: counts add up, shares and scores are means over
        # the labels (macro), n/a only where no label has a value.
        if column in _COUNTS:
            return int(values.sum())
        if column == "mean_score":
            scored = self.scored[k].sum()
            total = np.nansum(self.mean_score[k] * self.scored[k])
            return float(total / scored) if scored else float("nan")
        if column == "fidelity_mae":
            rows = self.fidelity_rows[k].sum()
            total = np.nansum(values * self.fidelity_rows[k])
            return float(total / rows) if rows else float("nan")
        if np.isnan(values).all():
            return float("nan")
        return float(np.nanmean(values))

    def to_frame(self, per_label=True):
        """The per-teacher table as a pandas DataFrame.

        Args:
            per_label: bool. One row per teacher and label (a `label`
                column), or one per teacher: counts summed over labels,
                shares, PR-AUC, ECE and correlations their mean over the
                labels (macro). Defaults to `True`.

        Returns:
            A `pandas.DataFrame`; n/a values are NaN. Columns: `teacher`,
            (`label`), `scored`, `coverage`, `overlap`, `conflict`,
            `mean_score`, `labelled_scored` (the labelled rows it scored),
            `pr_auc`, `ece`; with a classifier `fidelity_mae` and
            `fidelity_corr` (on the `scored` rows), and
            `combination_weight` when it keeps a combination.
        """
        import pandas as pd

        return pd.DataFrame(self._records(per_label))

    def conflict_frame(self, label=None):
        """Teacher-by-teacher conflict: the share of rows both scored where
        their votes differ (over all labels when `label` is `None`)."""
        import pandas as pd

        return pd.DataFrame(
            self.conflict_matrix(label),
            index=list(self.teachers),
            columns=list(self.teachers),
        )

    def conflict_matrix(self, label=None):
        """`(N, N)` conflict shares, NaN where no row was scored by both.

        In a summary it is made from `co_scored` on demand: N x N floats.
        """
        if self.pair_conflict is None:
            return self._conflict_from_pairs(label)
        if label is not None:
            return self.pair_conflict[:, :, label]
        both = self.pair_scored.sum(axis=2)
        disagree = np.nansum(self.pair_conflict * self.pair_scored, axis=2)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(both > 0, disagree / both, np.nan)

    def _conflict_from_pairs(self, label):
        teachers = self.co_scored["teachers"]
        rows = self.co_scored["scored"]
        differ = self.co_scored["differ"]
        if label is None:
            rows, differ = rows.sum(axis=1), differ.sum(axis=1)
        else:
            rows, differ = rows[:, label], differ[:, label]
        size = len(self.teachers)
        matrix = np.full((size, size), np.nan)
        with np.errstate(invalid="ignore", divide="ignore"):
            shares = np.where(rows > 0, differ / rows, np.nan)
        matrix[teachers[:, 0], teachers[:, 1]] = shares
        matrix[teachers[:, 1], teachers[:, 0]] = shares
        scored = (
            self.scored.sum(axis=1) if label is None else self.scored[:, label]
        )
        diagonal = np.arange(size)
        matrix[diagonal, diagonal] = np.where(scored > 0, 0.0, np.nan)
        return matrix

    def skill_frame(self):
        """Each teacher's skill with its counts, highest skill first.

        Returns:
            A `pandas.DataFrame`, a row per teacher: `teacher`, `scored`,
            `labelled`, `correct`, `accuracy` (raw), `accuracy_shrunk`,
            `accuracy_low`, `accuracy_high` (95% Wilson),
            `agreement_rows`, `agreement`, `agreement_rate`,
            `agreement_shrunk`, `agreement_low`, `agreement_high` and
            `skill` (what the order follows: `skill["basis"]`).
        """
        import pandas as pd

        return pd.DataFrame(self._skill_records(self.skill["order"]))

    def _skill_records(self, teachers):
        skill = self.skill
        names = [
            "labelled",
            "correct",
            "accuracy",
            "accuracy_shrunk",
            "accuracy_low",
            "accuracy_high",
            "agreement_rows",
            "agreement",
            "agreement_rate",
            "agreement_shrunk",
            "agreement_low",
            "agreement_high",
            "skill",
        ]
        scored = self.scored.sum(axis=1)
        return [
            {
                "teacher": self.teachers[k],
                "scored": int(scored[k]),
                **{name: skill[name][k].item() for name in names},
            }
            for k in teachers
        ]

    def conflict_pairs_frame(self):
        """Every pair of teachers that scored a row together, labels
        pooled: `teacher_a`, `teacher_b`, `scored` (rows both scored) and
        `conflict` (the share where their votes differ), most
        conflicting first. Sparse: a crowd lists thousands of pairs, not
        N x N."""
        import pandas as pd

        teachers = self.co_scored["teachers"]
        rows = self.co_scored["scored"].sum(axis=1)
        differ = self.co_scored["differ"].sum(axis=1)
        order = np.lexsort((-rows, -differ / np.maximum(rows, 1)))
        names = np.asarray(self.teachers, dtype=object)
        return pd.DataFrame(
            {
                "teacher_a": names[teachers[order, 0]],
                "teacher_b": names[teachers[order, 1]],
                "scored": rows[order],
                "conflict": differ[order] / np.maximum(rows[order], 1),
            }
        )

    def similarity_frame(self):
        """The cosine similarity of the task embeddings, or `None` (no
        classifier, or a summary: see `ground_truth_similarity`)."""
        import pandas as pd

        if self.task_similarity is None:
            return None
        names = list(self.task_names)
        return pd.DataFrame(self.task_similarity, index=names, columns=names)

    def to_markdown(self, per_label=True):
        """The report as Markdown (tables and notes), for a results file.

        Args:
            per_label: bool. As for `to_frame`. Defaults to `True`.
        """
        per_label = per_label and self.num_labels > 1
        labelled = _join(self.labelled)
        positives = _join(self.positives)
        lines = [
            f"**Teachers** ({self.num_rows} rows, {labelled} with ground "
            f"truth, {positives} positive, {self.rows_without_teacher} "
            f"scored by no teacher. Votes: confidence >= {self.threshold:g}. "
            f"PR-AUC and ECE ({self.num_bins} bins) on the labelled rows each "
            f"teacher scored, n/a below {self.min_labelled}.)",
            "",
        ]
        if self.summarized:
            return "\n".join(lines + self._summary_lines()) + "\n"
        records = self._records(per_label)
        columns = list(records[0])
        header = [_LABELS[c] for c in columns]
        lines += _table(header, [[r[c] for c in columns] for r in records])
        if self.student is not None:
            lines += ["", self._student_line()]
        if self.notes:
            lines += [""] + [f"- {note}" for note in self.notes]
        names = list(self.teachers)
        lines += [
            "",
            "**Conflict** (share of the rows both teachers scored where "
            "their votes differ"
            + (", over all labels)" if self.num_labels > 1 else ")"),
            "",
        ]
        matrix = self.conflict_matrix()
        lines += _table(
            ["", *names],
            [
                [name, *("-" if j == k else v for j, v in enumerate(row))]
                for k, (name, row) in enumerate(zip(names, matrix, strict=True))
            ],
        )
        if self.task_similarity is not None:
            tasks = list(self.task_names)
            lines += [
                "",
                "**Task embeddings** (cosine similarity)",
                "",
            ]
            lines += _table(
                ["", *tasks],
                [
                    [name, *self.task_similarity[k]]
                    for k, name in enumerate(tasks)
                ],
            )
        return "\n".join(lines) + "\n"

    def _summary_lines(self):
        count, k = len(self.teachers), self.top_k
        lines = [
            f"{count} teachers, more than summarize_above="
            f"{self.summarize_above}: each statistic as its distribution over "
            "the teachers, labels pooled (`to_frame()` has a row per "
            "teacher, `plot()` draws the histograms); no N x N matrix.",
            "",
            "**Per-teacher statistics** (quantiles over the teachers "
            "measured; n/a: teachers without a value)",
            "",
        ]
        rows = []
        for name, values in self.distributions.items():
            quantiles = values["quantiles"]
            if name in ("scored", "labelled"):  # Counts.
                quantiles = [
                    "n/a" if np.isnan(q) else f"{q:g}" for q in quantiles
                ]
            if name == "pair conflict":
                name = f"pair conflict (pairs, >= {self.min_overlap} rows)"
            rows.append([name, values["measured"], values["missing"]])
            rows[-1] += list(quantiles)
        lines += _table(
            ["statistic", "teachers", "n/a", "min", "10%", "median", "90%"]
            + ["max"],
            rows,
        )
        skill = self.skill
        basis = (
            "the share of its votes on labelled rows that match the ground "
            "truth"
            if skill["basis"] == "ground truth"
            else "the share of its votes that match the other teachers' "
            "majority (no ground truth)"
        )
        lines += [
            "",
            f"**Skill** ({basis}, shrunk towards the pooled rate with "
            f"{self.shrinkage:g} pseudo-rows; 95% Wilson interval on the raw "
            "counts; agreement: votes matching the other teachers' "
            "majority, over the rows where they have one). Highest and "
            f"lowest {k}:",
            "",
        ]
        order = skill["order"]
        shown = list(order[:k]) + list(order[max(k, count - k) :])
        rows = []
        for rank, record in zip(
            [
                *range(1, min(k, count) + 1),
                *range(max(k, count - k) + 1, count + 1),
            ],
            self._skill_records(shown),
            strict=True,
        ):
            interval = "n/a"
            if not np.isnan(record["accuracy_low"]):
                interval = (
                    f"{record['accuracy_low']:.2f}-"
                    f"{record['accuracy_high']:.2f}"
                )
            rows.append(
                [
                    rank,
                    record["teacher"],
                    record["scored"],
                    record["labelled"],
                    record["accuracy"],
                    record["accuracy_shrunk"],
                    interval,
                    record["agreement_rows"],
                    record["agreement_shrunk"],
                ]
            )
        lines += _table(
            ["rank", "teacher", "scored", "labelled", "accuracy", "shrunk"]
            + ["95% interval", "agreement rows", "agreement (shrunk)"],
            rows,
        )
        num_pairs = len(self.co_scored["teachers"])
        ranked = self.distributions["pair conflict"]["measured"]
        lines += [
            "",
            "**Most conflicting pairs** (share of the rows both scored where "
            f"their votes differ; {num_pairs} pairs scored a row together, "
            f"{ranked} of them at least min_overlap={self.min_overlap} rows)",
            "",
        ]
        if self.top_conflicts:
            lines += _table(
                ["teacher", "teacher", "co-scored", "conflict"],
                [
                    [*pair["teachers"], pair["scored"], pair["conflict"]]
                    for pair in self.top_conflicts
                ],
            )
        else:
            lines.append(f"No pair scored {self.min_overlap} rows together.")
        if self.student is not None:
            lines += ["", self._student_line()]
        if self.task_table is not None:
            table = self.task_table
            rows, width = table["shape"]
            lines += [
                "",
                f"**Task table**: {rows} x {width} {table['dtype']}, "
                f"{summary.byte_size(table['bytes'])} "
                f"({table['bytes'] // rows} bytes a task): what the student "
                "holds per teacher, whatever the rows.",
            ]
        if self.notes:
            lines += [""] + [f"- {note}" for note in self.notes]
        return lines

    def _student_line(self):
        student = self.student
        parts = []
        for label in range(self.num_labels):
            where = f"label {label}: " if self.num_labels > 1 else ""
            parts.append(
                f"{where}PR-AUC {_format(student['pr_auc'][label])}, ECE "
                f"{_format(student['ece'][label])} on "
                f"{student['labelled'][label]} labelled rows"
            )
        reading = (
            "learned combination" if self.combination_weights else "task 0"
        )
        return f"**Student** (ground truth read by {reading}): " + "; ".join(
            parts
        )

    def __str__(self):
        return self.to_markdown()

    __repr__ = __str__

    # === Plots ===

    def _pooled_calibration(self):
        """The teachers' reliability bins pooled into one diagram (and the
        student's, kept apart)."""
        pooled = {}
        for name in ("all teachers", "student: ground truth"):
            if name == "all teachers":
                bins = [self.calibration[t] for t in self.teachers]
            elif name in self.calibration:
                bins = [self.calibration[name]]
            else:
                continue
            count = np.sum([b[0] for b in bins], axis=0)
            sums = [
                np.sum([np.nan_to_num(b[i]) * b[0] for b in bins], axis=0)
                for i in (1, 2)
            ]
            with np.errstate(invalid="ignore", divide="ignore"):
                pooled[name] = (count, sums[0] / count, sums[1] / count)
        return pooled

    def plot(self, directory, label=None):
        """Writes the report's pictures as PNG files into `directory`.

        `teacher_reliability.png`: a reliability diagram per teacher (and
        the student's reading, with a classifier), over all labels;
        `teacher_conflict.png`: the teacher-by-teacher conflict heatmap;
        `task_similarity.png` (with a classifier): the cosine similarity
        of the task embeddings. Drawn with matplotlib's Agg renderer,
        without touching pyplot's state.

        A summary (more than `summarize_above` teachers) draws instead:
        `teacher_reliability.png` with the teachers pooled into one
        diagram (and the student's); `teacher_histograms.png`, a
        histogram over the teachers of each per-teacher statistic
        (coverage, PR-AUC, ECE, skill, fidelity, ...) and of the pairs'
        conflict; `teacher_conflict.png`, the `top_k` most conflicting
        pairs with the rows they co-scored.

        Args:
            directory: str. Made if missing.
            label: int or `None`. The label of the conflict heatmap;
                `None` pools all labels (as a summary always does).
                Defaults to `None`.

        Returns:
            A dict `{picture name: path}`.
        """
        os.makedirs(directory, exist_ok=True)
        if self.summarized:
            paths = {
                name: os.path.join(directory, f"teacher_{name}.png")
                for name in ("reliability", "histograms", "conflict")
            }
            plots.reliability(
                self, paths["reliability"], self._pooled_calibration()
            )
            plots.histograms(self, paths["histograms"])
            plots.top_conflicts(self, paths["conflict"])
            return paths
        paths = {
            "reliability": os.path.join(directory, "teacher_reliability.png"),
            "conflict": os.path.join(directory, "teacher_conflict.png"),
        }
        plots.reliability(self, paths["reliability"])
        plots.conflict(self, paths["conflict"], label)
        if self.task_similarity is not None:
            paths["task_similarity"] = os.path.join(
                directory, "task_similarity.png"
            )
            plots.task_similarity(self, paths["task_similarity"])
        return paths


_COUNTS = ("scored", "labelled_scored", "fidelity_rows")


def _format(value):
    if isinstance(value, str):
        return value
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if value is None or np.isnan(value):
        return "n/a"
    return f"{value:.3f}"


def _join(values):
    values = [str(int(v)) for v in values]
    return values[0] if len(values) == 1 else "[" + ", ".join(values) + "]"


def _table(header, rows):
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for row in rows:
        lines.append("| " + " | ".join(_format(v) for v in row) + " |")
    return lines
