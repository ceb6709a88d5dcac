import keras
import numpy as np
from keras import ops

from keras_t2t import _arguments
from keras_t2t.metrics.pr_auc import PRAUC

# Confidences are clipped before their logits are taken.
_EPSILON = 1e-4


@keras.saving.register_keras_serializable(package="keras_t2t")
class TaskCombination:
    """The ground truth read from the student's teacher tasks, learned.

    A Teacher2Task student predicts every teacher's confidence on any
    input (its auxiliary tasks). This combination reads the ground truth
    from those predictions:

        confidence = sigmoid(sum_k w_k * logit(p_k) + b_label)

    with the weights `w` (one per teacher) and biases `b` (one per label)
    fitted by L2-regularised logistic regression on labelled rows. The
    weights are shrunk towards `1 / N`, the teachers' mean logit, so with a
    handful of labels the combination stays near an even reading of the
    teachers and with more it learns whom to trust. The teacher tasks'
    targets are the teachers' scores, never the labels, so the labelled
    training rows can fit it without the overfitting of stacking a model
    on its own training targets. Fit it with
    `Teacher2TaskClassifier.fit_combination`.

    With many teachers, a combination can read a subset (`task_ids`, e.g.
    the teachers that scored the labelled rows): the others get weight 0
    and are never predicted.

    Args:
        weights: list of floats, one per teacher task read (N, or
            `len(task_ids)`).
        bias: list of `num_labels` floats.
        task_ids: list of ints or `None`. The teacher tasks read, in the
            order of `weights`. Defaults to `None`: every teacher, 1..N.

    Example:
    ```python
    combination = keras_t2t.models.TaskCombination.fit(task_scores, labels)
    combination(task_scores)  # (rows, num_labels)
    ```
    """

    @_arguments.suggests_keywords
    def __init__(self, weights, bias, task_ids=None):
        self.weights = [float(w) for w in weights]
        self.bias = [float(b) for b in bias]
        self.task_ids = None
        if task_ids is not None:
            self.task_ids = [int(k) for k in task_ids]
            if (
                len(self.task_ids) != len(self.weights)
                or min(self.task_ids) < 1
            ):
                raise ValueError(
                    "`task_ids` must name one teacher task (>= 1) per "
                    f"weight. Received task_ids={self.task_ids} for "
                    f"{len(self.weights)} weights."
                )

    def tasks(self, num_teachers):
        """The task ids whose predictions `__call__` takes, in order."""
        if self.task_ids is None:
            return np.arange(num_teachers + 1, dtype="int32")
        return np.asarray(self.task_ids, "int32")

    @classmethod
    def fit(cls, task_scores, labels, l2=1.0, iterations=50, task_ids=None):
        """Fits the combination on labelled rows.

        Args:
            task_scores: float array `(rows, N + 1, num_labels)`, every
                task's confidences (`predict(..., all_tasks=True)`); task
                0 is not used. With `task_ids`, `(rows, len(task_ids),
                num_labels)`, those tasks' confidences.
            labels: float array `(rows, num_labels)`, 0/1, NaN where
                unknown.
            l2: float. Strength of the pull towards the teachers' mean
                logit, in labelled entries: `l2=1` weighs like one
                labelled entry. Defaults to `1.0`.
            iterations: int. Newton steps. Defaults to 50.
            task_ids: list of ints or `None`. The teacher tasks of
                `task_scores`. Defaults to every teacher.
        """
        task_scores = np.asarray(task_scores, "float64")
        if task_ids is not None:
            # The subset's scores, behind a ground-truth column not read.
            task_scores = np.concatenate(
                [np.zeros_like(task_scores[:, :1]), task_scores], axis=1
            )
        labels = np.asarray(labels, "float64").reshape(len(task_scores), -1)
        if task_scores.ndim != 3 or task_scores.shape[2] != labels.shape[1]:
            raise ValueError(
                "`task_scores` must be (rows, num_teachers + 1, num_labels) "
                f"and `labels` (rows, num_labels). Received shapes "
                f"{task_scores.shape} and {labels.shape}."
            )
        num_teachers, num_labels = task_scores.shape[1] - 1, labels.shape[1]
        rows, label_index = np.nonzero(~np.isnan(labels))
        if len(rows) == 0 or len(np.unique(labels[rows, label_index])) < 2:
            raise ValueError(
                "Fitting a task combination needs labelled rows with both "
                "positive and negative labels. Received "
                f"{len(rows)} labelled entries."
            )
        logits = _logit(task_scores[rows, 1:, label_index])
        design = np.concatenate(
            [logits, np.eye(num_labels)[label_index]], axis=1
        )
        target = labels[rows, label_index]
        prior = np.concatenate(
            [np.full(num_teachers, 1.0 / num_teachers), np.zeros(num_labels)]
        )
        theta = prior.copy()
        for _ in range(iterations):
            p = 1.0 / (1.0 + np.exp(-(design @ theta)))
            gradient = design.T @ (p - target) + l2 * (theta - prior)
            hessian = (design * (p * (1 - p))[:, None]).T @ design
            hessian += l2 * np.eye(len(theta))
            step = np.linalg.solve(hessian, gradient)
            theta -= step
            if np.abs(step).max() < 1e-8:
                break
        return cls(theta[:num_teachers], theta[num_teachers:], task_ids)

    def __call__(self, task_scores):
        """Combined confidences `(rows, num_labels)` from the tasks'
        confidences, `(rows, len(tasks(N)), num_labels)`."""
        task_scores = ops.convert_to_tensor(task_scores)
        dtype = task_scores.dtype
        if self.task_ids is None:
            task_scores = task_scores[:, 1:]
        logits = _logit(task_scores, ops)
        weights = ops.convert_to_tensor(self.weights, dtype)
        mixed = ops.einsum("btl,t->bl", logits, weights)
        return ops.sigmoid(mixed + ops.convert_to_tensor(self.bias, dtype))

    def get_config(self):
        return {
            "weights": self.weights,
            "bias": self.bias,
            "task_ids": self.task_ids,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        weights = ", ".join(f"{w:.3f}" for w in self.weights)
        return f"TaskCombination(weights=[{weights}])"


def fit_combination(
    classifier, x, y, validation_data=None, l2="auto", task_ids=None
):
    """Learns to read the ground truth from the teacher tasks.

    `Teacher2TaskClassifier.fit_combination(x, y, ...)`: fits a
    `TaskCombination` on the classifier's teacher-task predictions for the
    labelled rows `x`, `y` (the ground-truth labels, NaN where unknown; the
    labelled training rows serve: the teacher tasks never trained on their
    labels) and sets it as `classifier.combination`. With
    `validation_data=(x_val, y_val)`, the pull towards the teachers' mean
    (`l2="auto"`) is chosen there, and the combination is kept only if its
    validation PR-AUC is at least the ground-truth task's; otherwise
    `predict` keeps reading task 0.

    Args:
        classifier: the `Teacher2TaskClassifier` (`self` as a method).
        x: dict of input arrays (no `teacher_id`).
        y: float array `(rows, num_labels)`.
        validation_data: tuple `(x_val, y_val)` or `None`.
        l2: float or `"auto"`. The pull towards the teachers' mean (see
            `TaskCombination.fit`). `"auto"` picks one of
            `(1, 10, 100, 1000)` on the validation data, or 10 without.
            Defaults to `"auto"`.
        task_ids: list of ints or `None`. The teacher tasks to combine.
            With many teachers, e.g. the ones that scored the labelled
            rows: only they are predicted, on the labelled and validation
            rows, and the others get weight 0. Defaults to every teacher.

    Returns:
        A dict: `combination` (the fitted one), `l2`, `kept` (bool) and,
        with validation data, the validation PR-AUC of `task_0` and of
        `combined`.

    Example:
    ```python
    report = classifier.fit_combination(
        x_labelled, y_labelled, validation_data=(x_val, y_val)
    )
    report["kept"], classifier.combination
    ```
    """
    classifier.combination = None
    read = True if task_ids is None else [0, *task_ids]
    scores = classifier.predict(x, all_tasks=read, verbose=0)
    # Task 0 leads `scores`, for the comparison with the ground truth.
    fit_scores = scores if task_ids is None else scores[:, 1:]
    labels = _labels(y, classifier.num_labels)
    candidates = [l2]
    if l2 == "auto":
        candidates = [1.0, 10.0, 100.0, 1000.0]
        if validation_data is None:
            candidates = [10.0]
    report = {"kept": True}
    if validation_data is None:
        report["l2"] = candidates[0]
        report["combination"] = TaskCombination.fit(
            fit_scores, labels, l2=candidates[0], task_ids=task_ids
        )
    else:
        x_val, y_val = validation_data
        y_val = _labels(y_val, classifier.num_labels)
        val_scores = classifier.predict(x_val, all_tasks=read, verbose=0)
        report["task_0"] = _pr_auc(y_val, val_scores[:, 0])
        if np.isnan(report["task_0"]):
            raise ValueError(
                "`validation_data` labels have no positive (every label "
                "missing or 0), so PR-AUC cannot choose the combination. "
                "Validate on labelled rows that include positives."
            )
        report["combined"] = -1.0
        for strength in candidates:
            combination = TaskCombination.fit(
                fit_scores, labels, l2=strength, task_ids=task_ids
            )
            combined = combination(
                val_scores if task_ids is None else val_scores[:, 1:]
            )
            value = _pr_auc(y_val, ops.convert_to_numpy(combined))
            if value > report["combined"]:
                report.update(
                    combined=value, combination=combination, l2=strength
                )
        report["kept"] = report["combined"] >= report["task_0"]
    if report["kept"]:
        classifier.combination = report["combination"]
    return report


def _labels(y, num_labels):
    """Ground-truth labels as `(rows, num_labels)`, checked."""
    y = np.asarray(y, "float32")
    if y.ndim == 1 and num_labels == 1:
        y = y[:, None]
    if y.ndim != 2 or y.shape[1] != num_labels:
        raise ValueError(
            f"Ground-truth labels must have shape (rows, {num_labels}), NaN "
            f"where unknown. Received shape {y.shape}."
        )
    return y


def _pr_auc(labels, scores):
    metric = PRAUC(num_labels=labels.shape[-1])
    metric.update_state(labels, scores)
    return float(ops.convert_to_numpy(metric.result()))


def _logit(p, backend=np):
    p = backend.clip(p, _EPSILON, 1.0 - _EPSILON)
    return backend.log(p) - backend.log(1.0 - p)
