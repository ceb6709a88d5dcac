import keras
import numpy as np
from keras import ops

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

    Args:
        weights: list of N floats, one per teacher task.
        bias: list of `num_labels` floats.

    Example:
    ```python
    combination = keras_t2t.models.TaskCombination.fit(task_scores, labels)
    combination(task_scores)  # (rows, num_labels)
    ```
    """

    def __init__(self, weights, bias):
        self.weights = [float(w) for w in weights]
        self.bias = [float(b) for b in bias]

    @classmethod
    def fit(cls, task_scores, labels, l2=1.0, iterations=50):
        """Fits the combination on labelled rows.

        Args:
            task_scores: float array `(rows, N + 1, num_labels)`, every
                task's confidences (`predict(..., all_tasks=True)`); task
                0 is not used.
            labels: float array `(rows, num_labels)`, 0/1, NaN where
                unknown.
            l2: float. Strength of the pull towards the teachers' mean
                logit, in labelled entries: `l2=1` weighs like one
                labelled entry. Defaults to `1.0`.
            iterations: int. Newton steps. Defaults to 50.
        """
        task_scores = np.asarray(task_scores, "float64")
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
        return cls(theta[:num_teachers], theta[num_teachers:])

    def __call__(self, task_scores):
        """Combined confidences `(rows, num_labels)` from every task's."""
        task_scores = ops.convert_to_tensor(task_scores)
        dtype = task_scores.dtype
        logits = _logit(task_scores[:, 1:], ops)
        weights = ops.convert_to_tensor(self.weights, dtype)
        mixed = ops.einsum("btl,t->bl", logits, weights)
        return ops.sigmoid(mixed + ops.convert_to_tensor(self.bias, dtype))

    def get_config(self):
        return {"weights": self.weights, "bias": self.bias}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        weights = ", ".join(f"{w:.3f}" for w in self.weights)
        return f"TaskCombination(weights=[{weights}])"


def _logit(p, backend=np):
    p = backend.clip(p, _EPSILON, 1.0 - _EPSILON)
    return backend.log(p) - backend.log(1.0 - p)
