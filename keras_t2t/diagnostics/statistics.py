"""Streaming statistics of a multi-teacher table, block by block.

`TableStatistics.add` takes one block of canonical rows (targets
`(rows, 1 + N, num_labels)`, source 0 the ground truth, NaN where missing)
and, with a classifier, the student's predictions of every task on those
rows. Counts and sums are kept per block; the only values kept are the
(score, label) pairs of labelled entries, which PR-AUC needs exactly and
which scarce ground truth keeps small (5 bytes per labelled teacher score).
"""

import numpy as np


class TableStatistics:
    """Accumulates per-teacher, per-label statistics over blocks of rows.

    Args:
        num_teachers: int. N.
        num_labels: int.
        threshold: float. A confidence at or above it is a positive vote.
    """

    def __init__(self, num_teachers, num_labels, threshold):
        shape = (num_teachers, num_labels)
        self.num_teachers = num_teachers
        self.num_labels = num_labels
        self.threshold = threshold
        self.rows = 0
        self.rows_without_teacher = 0
        self.scored = np.zeros(shape, np.int64)
        self.score_sum = np.zeros(shape, np.float64)
        self.overlap = np.zeros(shape, np.int64)
        self.conflict = np.zeros(shape, np.int64)
        self.pair_scored = np.zeros((num_teachers, *shape), np.int64)
        self.pair_disagree = np.zeros((num_teachers, *shape), np.int64)
        self.labelled = np.zeros(num_labels, np.int64)
        self.positives = np.zeros(num_labels, np.int64)
        self.pairs = [
            [[] for _ in range(num_labels)] for _ in range(num_teachers)
        ]
        # With a classifier: the student against each teacher, and its
        # reading of the ground truth on the labelled entries.
        self.fidelity = None
        self.student_pairs = [[] for _ in range(num_labels)]

    def add(self, targets, predictions=None, reading=None):
        """Adds a block.

        Args:
            targets: float array `(rows, 1 + N, num_labels)`.
            predictions: float array `(rows, 1 + N, num_labels)` or `None`,
                the student's every task on these rows.
            reading: float array `(rows, num_labels)` or `None`, the
                student's ground truth as `predict` reads it.
        """
        targets = np.asarray(targets, np.float64)
        truth, scores = targets[:, 0], targets[:, 1:]
        present = ~np.isnan(scores)  # (rows, N, L)
        with np.errstate(invalid="ignore"):
            positive = present & (scores >= self.threshold)
        negative = present & ~positive
        self.rows += len(targets)
        self.rows_without_teacher += int((~present.any(axis=(1, 2))).sum())
        self.scored += present.sum(axis=0)
        self.score_sum += np.where(present, scores, 0.0).sum(axis=0)

        # Snorkel's LF analysis, per label: a teacher overlaps on a row it
        # scored where another teacher scored too, and conflicts where
        # another teacher's vote differs from its own.
        others = present.sum(axis=1, keepdims=True) - present
        others_positive = positive.sum(axis=1, keepdims=True) - positive
        others_negative = negative.sum(axis=1, keepdims=True) - negative
        self.overlap += (present & (others > 0)).sum(axis=0)
        conflict = (positive & (others_negative > 0)) | (
            negative & (others_positive > 0)
        )
        self.conflict += conflict.sum(axis=0)
        present_i, positive_i, negative_i = (
            a.astype(np.int64) for a in (present, positive, negative)
        )
        self.pair_scored += np.einsum("rjl,rkl->jkl", present_i, present_i)
        self.pair_disagree += np.einsum(
            "rjl,rkl->jkl", positive_i, negative_i
        ) + np.einsum("rjl,rkl->jkl", negative_i, positive_i)

        known = ~np.isnan(truth)  # (rows, L)
        self.labelled += known.sum(axis=0)
        self.positives += (known & (truth == 1)).sum(axis=0)
        for k in range(self.num_teachers):
            for label in range(self.num_labels):
                rows = known[:, label] & present[:, k, label]
                if rows.any():
                    self.pairs[k][label].append(
                        (
                            scores[rows, k, label].astype(np.float32),
                            truth[rows, label].astype(np.uint8),
                        )
                    )
        if predictions is not None:
            self._add_fidelity(np.asarray(predictions)[:, 1:], scores, present)
        if reading is not None:
            reading = np.asarray(reading, np.float64)
            for label in range(self.num_labels):
                rows = known[:, label]
                if rows.any():
                    self.student_pairs[label].append(
                        (
                            reading[rows, label].astype(np.float32),
                            truth[rows, label].astype(np.uint8),
                        )
                    )

    def _add_fidelity(self, predicted, scores, present):
        if self.fidelity is None:
            shape = (self.num_teachers, self.num_labels)
            self.fidelity = {
                name: np.zeros(shape, np.float64)
                for name in ("n", "abs", "x", "y", "xx", "yy", "xy")
            }
        x = np.where(present, np.asarray(predicted, np.float64), 0.0)
        y = np.where(present, scores, 0.0)
        sums = self.fidelity
        sums["n"] += present.sum(axis=0)
        sums["abs"] += np.abs(x - y).sum(axis=0)
        sums["x"] += x.sum(axis=0)
        sums["y"] += y.sum(axis=0)
        sums["xx"] += (x * x).sum(axis=0)
        sums["yy"] += (y * y).sum(axis=0)
        sums["xy"] += (x * y).sum(axis=0)

    def labelled_pairs(self, teacher, label=None):
        """`(scores, labels)` of a teacher's labelled entries (all labels
        pooled when `label` is `None`)."""
        return _concatenate(self._pair_lists(self.pairs[teacher], label))

    def student_labelled_pairs(self, label=None):
        return _concatenate(self._pair_lists(self.student_pairs, label))

    def _pair_lists(self, by_label, label):
        if label is None:
            return [pair for pairs in by_label for pair in pairs]
        return by_label[label]

    def fidelity_values(self):
        """`(rows, mean absolute error, correlation)`, each `(N, L)`."""
        if self.fidelity is None:
            return None
        s = self.fidelity
        n = s["n"]
        with np.errstate(invalid="ignore", divide="ignore"):
            mae = np.where(n > 0, s["abs"] / n, np.nan)
            covariance = n * s["xy"] - s["x"] * s["y"]
            spread = (n * s["xx"] - s["x"] ** 2) * (n * s["yy"] - s["y"] ** 2)
            correlation = np.where(
                (n > 1) & (spread > 0), covariance / np.sqrt(spread), np.nan
            )
        return n.astype(np.int64), mae, correlation


def _concatenate(pairs):
    if not pairs:
        return np.zeros(0, np.float32), np.zeros(0, np.uint8)
    scores, labels = zip(*pairs, strict=True)
    return np.concatenate(scores), np.concatenate(labels)


def average_precision(labels, scores):
    """PR-AUC as scikit-learn's `average_precision_score`; NaN without a
    positive label.

    The precision at each distinct score, weighted by the recall gained
    there: `sum_n (R_n - R_{n-1}) P_n`, ties counted at one threshold.
    """
    labels = np.asarray(labels, np.float64)
    scores = np.asarray(scores, np.float64)
    if not (labels == 1).any():
        return float("nan")
    order = np.argsort(-scores, kind="mergesort")
    scores, labels = scores[order], labels[order]
    last = np.r_[np.flatnonzero(np.diff(scores)), len(scores) - 1]
    true_positives = np.cumsum(labels)[last]
    precision = true_positives / (last + 1)
    recall = true_positives / true_positives[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def calibration_bins(labels, scores, num_bins):
    """Per equal-width bin of `[0, 1]`: count, mean score, positive rate."""
    scores = np.asarray(scores, np.float64)
    labels = np.asarray(labels, np.float64)
    bins = np.clip((scores * num_bins).astype(np.int64), 0, num_bins - 1)
    count = np.bincount(bins, minlength=num_bins)
    score_sum = np.bincount(bins, scores, minlength=num_bins)
    label_sum = np.bincount(bins, labels, minlength=num_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        return count, score_sum / count, label_sum / count


def expected_calibration_error(labels, scores, num_bins):
    """`sum_b (n_b / n) |mean score_b - positive rate_b|`; NaN when empty."""
    scores = np.asarray(scores, np.float64)
    if len(scores) == 0:
        return float("nan")
    labels = np.asarray(labels, np.float64)
    bins = np.clip((scores * num_bins).astype(np.int64), 0, num_bins - 1)
    gap = np.bincount(bins, scores - labels, minlength=num_bins)
    return float(np.abs(gap).sum() / len(scores))
