import keras
from keras import ops

from keras_t2t import _arguments

_LOSSES = ("mean_squared_error", "binary_crossentropy")
_ALIASES = {"mse": "mean_squared_error", "bce": "binary_crossentropy"}


@keras.saving.register_keras_serializable(package="keras_t2t")
class MaskedMultiTaskLoss(keras.losses.Loss):
    """The Teacher2Task loss: per-entry loss over present targets only.

    Each example's target is either the ground-truth label (primary task) or
    one teacher's confidence (auxiliary task), with one entry per label and
    NaN where that value is missing. Missing entries contribute nothing to
    the loss nor to the gradient, on every backend. With the default
    reduction, the result is the mean over the present entries of the batch;
    `sample_weight` (one weight per example) scales each example's share, so
    the ground-truth task can be weighted above the teachers' tasks.

    The paper trains on confidences with mean squared error, the default;
    binary cross-entropy against the confidence is the option.

    Packed targets `(batch, num_tasks, num_labels)` (one row, every task;
    see `Teacher2TaskBackbone(task_layout="packed")`) can be reduced per
    task: with `normalize="tasks"` each task's present entries are
    averaged on their own and the tasks are then averaged (weighted by
    `task_weights`), so a task with few targets in the batch, such as the
    ground truth on 5% of the rows, still gets its share of the gradient
    instead of the share of its entries.

    Args:
        loss: str. `"mean_squared_error"` (or `"mse"`) or
            `"binary_crossentropy"` (or `"bce"`). Defaults to
            `"mean_squared_error"`.
        epsilon: float. Clipping of predictions for the cross-entropy.
            Defaults to `1e-7`.
        normalize: str. `"entries"`: the mean over all present entries.
            `"tasks"`: the (weighted) mean over tasks of each task's mean
            over its present entries; needs packed targets. Defaults to
            `"entries"`.
        task_weights: list of floats or `None`. With `normalize="tasks"`,
            the weight of each task (ground truth first). Defaults to
            equal weights.
        reduction: The Keras loss reduction. Defaults to
            `"sum_over_batch_size"`, which here is the mean over present
            entries.
        name: str. Defaults to `"masked_multi_task_loss"`.

    Example:
    ```python
    loss = keras_t2t.losses.MaskedMultiTaskLoss()
    y_true = np.array([[1.0, np.nan], [0.2, 0.9]])
    y_pred = np.array([[0.8, 0.5], [0.4, 0.7]])
    loss(y_true, y_pred)  # mean of 0.04, 0.04, 0.04 = 0.04
    ```
    """

    @_arguments.suggests_keywords
    def __init__(
        self,
        loss="mean_squared_error",
        epsilon=1e-7,
        normalize="entries",
        task_weights=None,
        reduction="sum_over_batch_size",
        name="masked_multi_task_loss",
        dtype=None,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        _arguments.choice("normalize", normalize, ("entries", "tasks"))
        if task_weights is not None:
            task_weights = [float(w) for w in task_weights]
            if normalize != "tasks" or min(task_weights) < 0:
                raise ValueError(
                    "`task_weights` (one weight >= 0 per task) apply with "
                    f"normalize='tasks'. Received: task_weights="
                    f"{task_weights}, normalize={normalize!r}"
                )
        self.normalize = normalize
        self.task_weights = task_weights
        loss = _ALIASES.get(loss, loss)
        if loss not in _LOSSES:
            raise ValueError(
                f"`loss` must be one of {list(_LOSSES) + list(_ALIASES)}. "
                f"Received: loss={loss!r}"
            )
        self.loss = loss
        self.epsilon = _arguments.number("epsilon", epsilon, above=0.0)

    def call(self, y_true, y_pred):
        y_pred = ops.convert_to_tensor(y_pred)
        y_true = ops.cast(y_true, y_pred.dtype)
        if len(y_true.shape) == len(y_pred.shape) - 1 and y_pred.shape[-1] == 1:
            y_true = ops.expand_dims(y_true, -1)
        _check_num_labels(y_true.shape, y_pred.shape)

        present = ops.logical_not(ops.isnan(y_true))
        # Replace missing targets before the arithmetic: a NaN behind a
        # `where` still poisons the gradient on JAX and TensorFlow.
        target = ops.where(present, y_true, ops.zeros_like(y_true))
        if self.loss == "mean_squared_error":
            entries = ops.square(target - y_pred)
        else:
            p = ops.clip(y_pred, self.epsilon, 1.0 - self.epsilon)
            entries = -(target * ops.log(p) + (1.0 - target) * ops.log(1.0 - p))
        entries = ops.where(present, entries, ops.zeros_like(entries))
        if self.normalize == "tasks":
            return self._per_task(entries, present)
        entries = ops.reshape(entries, (ops.shape(entries)[0], -1))

        # Keras divides the summed per-example values by the batch size.
        # Scaling each example's sum by batch / present makes that the mean
        # over present entries, while `sample_weight` still applies per
        # example through the standard reduction.
        num_present = _mean_over_replicas(
            ops.sum(ops.cast(present, y_pred.dtype))
        )
        batch_size = ops.cast(ops.shape(entries)[0], y_pred.dtype)
        # With nothing present the sum is 0 whatever the divisor.
        num_present = ops.where(num_present > 0, num_present, 1.0)
        scale = batch_size / num_present
        return ops.sum(entries, axis=-1) * scale

    def _per_task(self, entries, present):
        if len(entries.shape) != 3:
            raise ValueError(
                "normalize='tasks' needs packed targets (batch, num_tasks, "
                f"num_labels). Received shape {tuple(entries.shape)}."
            )
        num_tasks = entries.shape[1]
        weights = self.task_weights or [1.0] * num_tasks
        if len(weights) != num_tasks:
            raise ValueError(
                f"`task_weights` has {len(weights)} weights for targets of "
                f"{num_tasks} tasks."
            )
        dtype = entries.dtype
        counts = _mean_over_replicas(
            ops.sum(ops.cast(present, dtype), axis=(0, 2))
        )
        weights = ops.where(
            counts > 0, ops.convert_to_tensor(weights, dtype), 0.0
        )
        total_weight = ops.sum(weights)
        total_weight = ops.where(total_weight > 0, total_weight, 1.0)
        # Each example's sum, scaled so that Keras's mean over the batch
        # is the weighted mean over tasks of each task's mean entry.
        scale = weights / ops.maximum(counts, 1.0) / total_weight
        batch_size = ops.cast(ops.shape(entries)[0], dtype)
        per_task = ops.sum(entries, axis=2)  # (batch, num_tasks)
        return ops.sum(per_task * scale[None, :], axis=1) * batch_size

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "loss": self.loss,
                "epsilon": self.epsilon,
                "normalize": self.normalize,
                "task_weights": self.task_weights,
            }
        )
        return config


def _mean_over_replicas(value):
    """Averages a count over `tf.distribute` replicas (TensorFlow only).

    Keras scales each replica's loss by 1 / replicas and sums the
    gradients. Dividing by the mean count instead of the replica's own
    makes that sum the mean over the present entries of the global batch,
    as on one device, however the present entries fall across replicas.
    (On JAX, `keras.distribution` computes the loss on the global batch.)
    """
    if keras.backend.backend() != "tensorflow":
        return value
    import tensorflow as tf

    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return value
    total = context.all_reduce(tf.distribute.ReduceOp.SUM, value)
    return total / context.num_replicas_in_sync


def _check_num_labels(true_shape, pred_shape):
    true_labels = true_shape[-1] if len(true_shape) > 1 else None
    pred_labels = pred_shape[-1] if len(pred_shape) > 1 else None
    if len(true_shape) != len(pred_shape) or (
        true_labels is not None
        and pred_labels is not None
        and true_labels != pred_labels
    ):
        raise ValueError(
            f"Targets of shape {tuple(true_shape)} do not match predictions "
            f"of shape {tuple(pred_shape)}: the model predicts {pred_labels} "
            f"label(s) per example (`num_labels={pred_labels}`), the targets "
            f"hold {true_labels}. Give one target per label, NaN where "
            "missing."
        )
