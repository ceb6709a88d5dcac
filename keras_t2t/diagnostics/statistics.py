"""Streaming statistics of a multi-teacher table, block by block.

`TableStatistics.add` takes one block of canonical rows (targets
`(rows, 1 + N, num_labels)`, source 0 the ground truth, NaN where missing)
and, with a classifier, the student's predictions of every task on those
rows. Each block is turned into its scored entries (row, teacher, label,
score) first, and everything is counted from those: the work and memory
per block follow the scores present, not N. Pairwise statistics are kept
only for the pairs of teachers that scored a row together (a crowd of
1,000 workers, 3-5 per item, co-scores a few thousand pairs, not
500,000). The only values kept are the (score, label) pairs of labelled
entries, which PR-AUC needs exactly and which scarce ground truth keeps
small (5 bytes per labelled teacher score).
"""

import numpy as np

# Pair keys are merged (sorted, summed) once this many wait, so the pairs
# of many blocks never sit in memory unreduced.
_MERGE_PAIRS = 1 << 20


class TableStatistics:
    """Accumulates per-teacher, per-label statistics over blocks of rows.

    Per teacher and label: rows scored, score sum, overlap, conflict,
    votes that match the ground truth (`correct`) and votes that match the
    majority of the other teachers' votes on the row (`agreement`, over
    `agreement_rows`, the rows where the others have a strict majority).
    Per pair of teachers that scored a row together: rows both scored and
    rows where their votes differ, kept sparse (`pair_keys`).

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
        self.correct = np.zeros(shape, np.int64)
        self.agreement_rows = np.zeros(shape, np.int64)
        self.agreement = np.zeros(shape, np.int64)
        self.labelled = np.zeros(num_labels, np.int64)
        self.positives = np.zeros(num_labels, np.int64)
        # Co-scored pairs: key `(j * N + k) * num_labels + label`, j < k,
        # sorted, with the rows both scored and the rows their votes
        # differ on; `_pending` holds blocks' keys not merged yet.
        self.pair_keys = np.zeros(0, np.int64)
        self.pair_rows = np.zeros(0, np.int64)
        self.pair_differ = np.zeros(0, np.int64)
        self._pending = []
        self._pending_size = 0
        # Labelled entries: (teacher * num_labels + label, score, truth).
        self._labelled_blocks = []
        self._labelled_index = None
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
        targets = np.asarray(targets)
        truth = np.asarray(targets[:, 0], np.float64)
        scores = targets[:, 1:]
        # Entries in (row, label, teacher) order: the teachers of one row
        # and label are consecutive, in task order.
        row, label, teacher = np.nonzero(~np.isnan(scores.transpose(0, 2, 1)))
        value = scores[row, teacher, label].astype(np.float64)
        self.rows += len(targets)
        self.rows_without_teacher += len(targets) - len(np.unique(row))
        index = teacher * self.num_labels + label
        size = self.num_teachers * self.num_labels
        shape = (self.num_teachers, self.num_labels)

        def count(weights=None):
            return np.bincount(index, weights, minlength=size).reshape(shape)

        self.scored += count()
        self.score_sum += count(value)
        vote = value >= self.threshold

        # Snorkel's LF analysis, per label: a teacher overlaps on a row it
        # scored where another teacher scored too, and conflicts where
        # another teacher's vote differs from its own.
        group = row * self.num_labels + label
        starts = np.flatnonzero(np.diff(group, prepend=-1))
        sizes = np.diff(np.r_[starts, len(group)])
        others = np.repeat(sizes, sizes) - 1
        positive_votes = (
            np.add.reduceat(vote.astype(np.int64), starts)
            if len(starts)
            else np.zeros(0, np.int64)
        )
        others_positive = np.repeat(positive_votes, sizes) - vote
        others_negative = others - others_positive
        self.overlap += count(others > 0).astype(np.int64)
        conflict = np.where(vote, others_negative > 0, others_positive > 0)
        self.conflict += count(conflict).astype(np.int64)
        # A worker's agreement with the others' majority: a skill measure
        # that needs no ground truth (ties give no majority).
        majority = others_positive != others_negative
        self.agreement_rows += count(majority).astype(np.int64)
        agrees = majority & (vote == (others_positive > others_negative))
        self.agreement += count(agrees).astype(np.int64)
        self._add_pairs(group, starts, sizes, teacher, label, vote)

        known = ~np.isnan(truth)  # (rows, L)
        self.labelled += known.sum(axis=0)
        self.positives += (known & (truth == 1)).sum(axis=0)
        entry_truth = truth[row, label]
        labelled = ~np.isnan(entry_truth)
        if labelled.any():
            self.correct += count(
                np.where(labelled, vote == (entry_truth == 1), False)
            ).astype(np.int64)
            self._labelled_blocks.append(
                (
                    index[labelled],
                    value[labelled].astype(np.float32),
                    entry_truth[labelled].astype(np.uint8),
                )
            )
            self._labelled_index = None
        if predictions is not None:
            predicted = np.asarray(predictions)[:, 1:][row, teacher, label]
            self._add_fidelity(index, predicted.astype(np.float64), value)
        if reading is not None:
            reading = np.asarray(reading, np.float64)
            for index_label in range(self.num_labels):
                rows = known[:, index_label]
                if rows.any():
                    self.student_pairs[index_label].append(
                        (
                            reading[rows, index_label].astype(np.float32),
                            truth[rows, index_label].astype(np.uint8),
                        )
                    )

    def _add_pairs(self, group, starts, sizes, teacher, label, vote):
        """Counts each pair of teachers that scored a row (and label)
        together: the entries of a group are consecutive, so entry i's
        partners are i + 1, i + 2, ... within its group. Each step keeps
        only the entries with a partner that far ahead, so the work is the
        number of co-scored pairs, however large N."""
        position = np.arange(len(group)) - np.repeat(starts, sizes)
        ahead = np.repeat(sizes, sizes) - position - 1
        candidates = np.flatnonzero(ahead > 0)
        num_teachers, num_labels = self.num_teachers, self.num_labels
        distance = 1
        while len(candidates):
            partners = candidates + distance
            keys = (
                teacher[candidates] * num_teachers + teacher[partners]
            ) * num_labels + label[candidates]
            differ = vote[candidates] != vote[partners]
            self._pending.append((keys, differ))
            self._pending_size += len(keys)
            if self._pending_size >= _MERGE_PAIRS:
                self._merge_pairs()
            distance += 1
            candidates = candidates[ahead[candidates] >= distance]

    def _merge_pairs(self):
        if not self._pending:
            return
        keys, differ = zip(*self._pending, strict=True)
        keys = np.concatenate([self.pair_keys, *keys])
        rows = np.concatenate(
            [self.pair_rows, np.ones(len(keys) - len(self.pair_keys), np.int64)]
        )
        differ = np.concatenate([self.pair_differ, *differ])
        self.pair_keys, inverse = np.unique(keys, return_inverse=True)
        self.pair_rows = np.bincount(inverse, rows).astype(np.int64)
        self.pair_differ = np.bincount(inverse, differ).astype(np.int64)
        self._pending = []
        self._pending_size = 0

    def pairs(self):
        """The co-scored pairs: `(teachers, rows, differ)`.

        `teachers` is `(P, 2)` (j < k), `rows` and `differ` are
        `(P, num_labels)`: the rows both scored, and those where their
        votes differ, per label. Only pairs that scored some row together
        are listed.
        """
        self._merge_pairs()
        num_labels = self.num_labels
        pair, inverse = np.unique(
            self.pair_keys // num_labels, return_inverse=True
        )
        label = self.pair_keys % num_labels
        rows = np.zeros((len(pair), num_labels), np.int64)
        differ = np.zeros((len(pair), num_labels), np.int64)
        rows[inverse, label] = self.pair_rows
        differ[inverse, label] = self.pair_differ
        teachers = np.stack(
            [pair // self.num_teachers, pair % self.num_teachers], axis=1
        )
        return teachers, rows, differ

    @property
    def pair_scored(self):
        """`(N, N, num_labels)` rows both teachers scored (the diagonal:
        rows each scored). Dense: for a few teachers only."""
        return self._dense_pairs(self.scored, lambda rows, differ: rows)

    @property
    def pair_disagree(self):
        """`(N, N, num_labels)` rows where the two teachers' votes differ.
        Dense: for a few teachers only."""
        return self._dense_pairs(
            np.zeros_like(self.scored), lambda rows, differ: differ
        )

    def _dense_pairs(self, diagonal, pick):
        teachers, rows, differ = self.pairs()
        n = self.num_teachers
        matrix = np.zeros((n, n, self.num_labels), np.int64)
        values = pick(rows, differ)
        matrix[teachers[:, 0], teachers[:, 1]] = values
        matrix[teachers[:, 1], teachers[:, 0]] = values
        matrix[np.arange(n), np.arange(n)] = diagonal
        return matrix

    def _add_fidelity(self, index, predicted, scores):
        if self.fidelity is None:
            shape = (self.num_teachers, self.num_labels)
            self.fidelity = {
                name: np.zeros(shape, np.float64)
                for name in ("n", "abs", "x", "y", "xx", "yy", "xy")
            }
        size = self.num_teachers * self.num_labels
        shape = self.fidelity["n"].shape
        x, y = predicted, scores
        for name, weights in (
            ("n", None),
            ("abs", np.abs(x - y)),
            ("x", x),
            ("y", y),
            ("xx", x * x),
            ("yy", y * y),
            ("xy", x * y),
        ):
            self.fidelity[name] += np.bincount(
                index, weights, minlength=size
            ).reshape(shape)

    def labelled_pairs(self, teacher, label=None):
        """`(scores, labels)` of a teacher's labelled entries (all labels
        pooled when `label` is `None`), in row order."""
        index, scores, labels, bounds = self._labelled()
        first = teacher * self.num_labels
        if label is None:
            start, stop = bounds[first], bounds[first + self.num_labels]
            return scores[start:stop], labels[start:stop]
        start, stop = bounds[first + label], bounds[first + label + 1]
        return scores[start:stop], labels[start:stop]

    def _labelled(self):
        """The labelled entries sorted by (teacher, label), row order kept
        within each, with each (teacher, label)'s bounds."""
        if self._labelled_index is None:
            if self._labelled_blocks:
                index, scores, labels = (
                    np.concatenate(parts)
                    for parts in zip(*self._labelled_blocks, strict=True)
                )
            else:
                index = np.zeros(0, np.int64)
                scores = np.zeros(0, np.float32)
                labels = np.zeros(0, np.uint8)
            order = np.argsort(index, kind="stable")
            index, scores, labels = index[order], scores[order], labels[order]
            size = self.num_teachers * self.num_labels
            bounds = np.searchsorted(index, np.arange(size + 1))
            self._labelled_blocks = [(index, scores, labels)]
            self._labelled_index = (index, scores, labels, bounds)
        return self._labelled_index

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


def shrunk_rate(successes, trials, prior_strength):
    """Rates shrunk towards the pooled rate: `(s + m p0) / (n + m)`.

    `p0` is the pooled rate `sum s / sum n` and `m` is `prior_strength`,
    the pseudo-trials of the pooled rate each count gets (a Beta prior):
    a worker with 3 of 3 right reads near the pool, one with 90 of 100 near
    0.9. NaN everywhere when nothing was tried.
    """
    successes = np.asarray(successes, np.float64)
    trials = np.asarray(trials, np.float64)
    total = trials.sum()
    if total == 0:
        return np.full(trials.shape, np.nan)
    pooled = successes.sum() / total
    with np.errstate(invalid="ignore", divide="ignore"):
        return (successes + prior_strength * pooled) / (trials + prior_strength)


def wilson_interval(successes, trials, z=1.96):
    """The Wilson score interval of a binomial rate (95% at `z=1.96`):
    `(low, high)` arrays, NaN where nothing was tried. Unlike the normal
    interval it stays inside [0, 1] and is wide for small counts."""
    successes = np.asarray(successes, np.float64)
    trials = np.asarray(trials, np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = successes / trials
        scale = 1 + z**2 / trials
        centre = (rate + z**2 / (2 * trials)) / scale
        half = (
            z
            * np.sqrt(rate * (1 - rate) / trials + z**2 / (4 * trials**2))
            / scale
        )
    low = np.where(trials > 0, centre - half, np.nan)
    high = np.where(trials > 0, centre + half, np.nan)
    return low, high
