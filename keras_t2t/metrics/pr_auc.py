import keras
import numpy as np
from keras import ops

from keras_t2t import _arguments


@_arguments.suggests_keywords
def pr_auc_score(labels, scores, average="macro"):
    """PR-AUC (average precision) of NumPy arrays, exactly.

    The reference the streamed `PRAUC` metric approximates, and the one
    function the diagnostics and the recipes score with. Per label, the
    precision at each distinct score weighted by the recall gained there,
    `sum_n (R_n - R_{n-1}) P_n`, tied scores sharing one threshold: the
    value of scikit-learn's `average_precision_score`.

    As in `PRAUC`, a label >= 0.5 is positive, and a row whose label or
    score is NaN is left out of that label (a missing label, or a teacher
    that did not score the row).

    Args:
        labels: array `(rows,)` or `(rows, num_labels)`.
        scores: array of the same shape.
        average: `"macro"` (the mean over labels that have a positive; NaN
            when none has) or `None` (one value per label, NaN for a label
            without a positive).

    Returns:
        A float (`"macro"`) or a float array `(num_labels,)`.

    Example:
    ```python
    keras_t2t.metrics.pr_auc_score([1, 0, 1, 0], [0.8, 0.7, 0.3, 0.1])
    # 0.8333: precision 1 at recall 1/2, then 2/3 at recall 1
    ```
    """
    _arguments.choice("average", average, ("macro", None))
    labels = np.asarray(labels, np.float64)
    scores = np.asarray(scores, np.float64)
    if labels.shape != scores.shape:
        raise ValueError(
            "`labels` and `scores` must have the same shape. Received: "
            f"labels.shape={labels.shape}, scores.shape={scores.shape}"
        )
    _check_scores(labels, scores, "`scores`", probabilities=False)
    if labels.ndim == 1:
        labels, scores = labels[:, None], scores[:, None]
    per_label = np.array(
        [
            _average_precision(labels[:, k], scores[:, k])
            for k in range(labels.shape[1])
        ]
    )
    if average is None:
        return per_label
    defined = ~np.isnan(per_label)
    return float(per_label[defined].mean()) if defined.any() else np.nan


def _check_scores(labels, scores, name, probabilities):
    """Where a label is known: no infinite score (NaN is an unscored row,
    skipped); for the binned metric, probabilities in [0, 1], NaN
    included (a model's prediction is never missing)."""
    if labels.shape != scores.shape and labels.size == scores.size:
        labels = labels.reshape(scores.shape)
    known = ~np.isnan(labels) if labels.shape == scores.shape else True
    if probabilities:
        # A NaN fails both comparisons: refused with the out-of-range.
        with np.errstate(invalid="ignore"):
            bad = known & ~((scores >= 0) & (scores <= 1))
        rule = "probabilities in [0, 1]"
    else:
        bad = known & np.isinf(scores)
        rule = "finite (NaN where unscored)"
    if np.any(bad):
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"{name} must be {rule} where a label is known; {name} at "
            f"{index if len(index) > 1 else index[0]} is "
            f"{scores[index]}."
        )


def _average_precision(labels, scores):
    """One label's average precision; NaN without a positive."""
    present = ~(np.isnan(labels) | np.isnan(scores))
    labels, scores = labels[present] >= 0.5, scores[present]
    if not labels.any():
        return float("nan")
    order = np.argsort(-scores, kind="mergesort")
    scores, labels = scores[order], labels[order]
    last = np.r_[np.flatnonzero(np.diff(scores)), len(scores) - 1]
    true_positives = np.cumsum(labels)[last]
    precision = true_positives / (last + 1)
    recall = true_positives / true_positives[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


@keras.saving.register_keras_serializable(package="keras_t2t")
class PRAUC(keras.metrics.Metric):
    """Area under the precision-recall curve (average precision), streamed.

    Computes average precision as scikit-learn's `average_precision_score`
    does (a step sum of precision over recall increments, tied scores
    sharing a threshold), from per-label histograms of the scores of
    positive and negative examples over `num_thresholds` equal bins of
    `[0, 1]`. Scores that share a bin are treated as tied, which is the only
    difference to the exact value.

    Labels are binary: a target >= 0.5 is positive. A NaN target is a
    missing label and is ignored (weight 0), never counted as positive or
    negative. When compiled on a `Teacher2TaskClassifier`, only the
    ground-truth task (teacher id 0) reaches the metric.

    Args:
        num_labels: int. The number of labels per example. Defaults to 1.
        num_thresholds: int. The number of score bins: scores closer than
            `1 / num_thresholds` may share a bin and count as tied, which
            matters when predictions crowd together (an untrained model).
            Defaults to 10000.
        average: `"macro"` or `None`. `"macro"` gives the mean over labels
            that have at least one positive, NaN when none has (no
            labelled example, e.g. an `evaluate` without ground-truth
            examples); `None` gives the per-label values (NaN for a label
            without positives). Defaults to `"macro"`.
        name: str. Defaults to `"pr_auc"`.

    Example:
    ```python
    metric = keras_t2t.metrics.PRAUC()
    metric.update_state([1.0, 0.0, np.nan, 1.0], [0.9, 0.4, 0.8, 0.3])
    metric.result()  # 0.8333, as sklearn on the three present labels
    ```

    The exact value of arrays in memory: `keras_t2t.metrics.pr_auc_score`.
    """

    @_arguments.suggests_keywords
    def __init__(
        self,
        num_labels=1,
        num_thresholds=10000,
        average="macro",
        name="pr_auc",
        dtype=None,
    ):
        super().__init__(name=name, dtype=dtype)
        self.num_labels = _arguments.integer("num_labels", num_labels, 1)
        self.num_thresholds = _arguments.integer(
            "num_thresholds", num_thresholds, 2
        )
        self.average = _arguments.choice("average", average, ("macro", None))
        shape = (num_labels, num_thresholds)
        self.positives = self.add_variable(
            shape=shape, initializer="zeros", name="positives"
        )
        self.negatives = self.add_variable(
            shape=shape, initializer="zeros", name="negatives"
        )

    def update_state(self, y_true, y_pred, sample_weight=None):
        if isinstance(y_pred, (np.ndarray, list, tuple)):
            # Arrays from the caller, not the trainer's tensors: checked
            # here (inside a compiled step no value can be checked on
            # JAX, and a sigmoid's outputs are probabilities).
            _check_scores(
                np.asarray(y_true, "float64"),
                np.asarray(y_pred, "float64"),
                "`y_pred`",
                probabilities=True,
            )
        y_pred = ops.cast(y_pred, self.dtype)
        y_true = ops.cast(y_true, self.dtype)
        if len(y_pred.shape) > 1 and y_pred.shape[-1] not in (
            None,
            self.num_labels,
        ):
            raise ValueError(
                f"PRAUC(num_labels={self.num_labels}) received predictions "
                f"of shape {tuple(y_pred.shape)}: one score per label is "
                f"{self.num_labels} on the last axis."
            )
        y_pred = ops.reshape(y_pred, (-1, self.num_labels))
        if y_true.shape[-1] not in (None, self.num_labels) and (
            len(y_true.shape) > 1
        ):
            raise ValueError(
                f"PRAUC(num_labels={self.num_labels}) received targets of "
                f"shape {tuple(y_true.shape)}."
            )
        y_true = ops.reshape(y_true, (-1, self.num_labels))

        present = ops.logical_not(ops.isnan(y_true))
        weight = ops.cast(present, self.dtype)
        if sample_weight is not None:
            sample_weight = ops.cast(sample_weight, self.dtype)
            weight = weight * ops.reshape(sample_weight, (-1, 1))
        positive = ops.cast(
            ops.where(present, y_true, ops.zeros_like(y_true)) >= 0.5,
            self.dtype,
        )

        bins = ops.floor(ops.clip(y_pred, 0.0, 1.0) * self.num_thresholds)
        bins = ops.minimum(ops.cast(bins, "int32"), self.num_thresholds - 1)
        label_offset = ops.arange(self.num_labels, dtype="int32")
        segments = ops.reshape(bins + label_offset * self.num_thresholds, (-1,))
        num_segments = self.num_labels * self.num_thresholds

        def histogram(values):
            counts = ops.segment_sum(
                ops.reshape(values, (-1,)), segments, num_segments
            )
            return ops.reshape(counts, (self.num_labels, self.num_thresholds))

        self.positives.assign_add(histogram(weight * positive))
        self.negatives.assign_add(histogram(weight * (1.0 - positive)))

    def per_label_result(self):
        """Average precision per label, NaN where no positive was seen."""
        # Walk thresholds from the highest bin down, as sklearn walks
        # distinct scores in decreasing order.
        positives = ops.flip(ops.convert_to_tensor(self.positives), axis=1)
        negatives = ops.flip(ops.convert_to_tensor(self.negatives), axis=1)
        true_positives = ops.cumsum(positives, axis=1)
        false_positives = ops.cumsum(negatives, axis=1)
        total_positives = true_positives[:, -1:]
        precision = ops.divide_no_nan(
            true_positives, true_positives + false_positives
        )
        # Recall grows by this bin's positives over all positives.
        recall_steps = ops.divide_no_nan(positives, total_positives)
        average_precision = ops.sum(recall_steps * precision, axis=1)
        has_positives = total_positives[:, 0] > 0
        nan = ops.full_like(average_precision, float("nan"))
        return ops.where(has_positives, average_precision, nan)

    def result(self):
        per_label = self.per_label_result()
        if self.average is None:
            return per_label
        defined = ops.logical_not(ops.isnan(per_label))
        total = ops.sum(ops.where(defined, per_label, 0.0))
        count = ops.sum(ops.cast(defined, self.dtype))
        # No label with a positive (no labelled example at all, or only
        # negatives): undefined, NaN. A 0.0 would read as a terrible model.
        nan = ops.full_like(total, float("nan"))
        return ops.where(count > 0, ops.divide_no_nan(total, count), nan)

    def reset_state(self):
        for variable in (self.positives, self.negatives):
            variable.assign(ops.zeros(variable.shape, variable.dtype))

    def get_config(self):
        return {
            **super().get_config(),
            "num_labels": self.num_labels,
            "num_thresholds": self.num_thresholds,
            "average": self.average,
        }
