"""The teacher transition's share of the loss (see `TeacherTransition`).

Each teacher target of a row is compared with what the row's ground-truth
output, through that teacher's transition, says the teacher would answer;
the ground-truth output thus learns from every teacher label.
"""

from keras import ops

from keras_t2t.losses.masked_multi_task_loss import MaskedMultiTaskLoss


def transition_loss(classifier, x, y, y_pred, sample_weight):
    """The masked loss of the transition's predictions on teacher slots.

    `y` and `y_pred` are `(batch, slots, num_labels)` (sparse, slot s for
    task `x["task_ids"][:, s]`) or `(batch, N + 1, num_labels)` (packed).
    A row whose slots hold no task 0 has no ground-truth output to map
    and adds nothing.
    """
    y_pred = ops.convert_to_tensor(y_pred)
    y = ops.cast(y, y_pred.dtype)
    if len(y.shape) == len(y_pred.shape) - 1:
        y = ops.expand_dims(y, -1)
    batch, slots = ops.shape(y_pred)[0], ops.shape(y_pred)[1]
    if classifier.backbone.sparse:
        task_ids = ops.cast(x["task_ids"], "int32")
    else:
        task_ids = ops.broadcast_to(
            ops.arange(slots, dtype="int32")[None], (batch, slots)
        )
    is_truth = ops.cast(ops.equal(task_ids, 0), y_pred.dtype)
    count = ops.sum(is_truth, axis=1)
    ground_truth = ops.sum(is_truth[..., None] * y_pred, axis=1)
    ground_truth = ground_truth / ops.maximum(count, 1.0)[:, None]
    said = classifier.teacher_transition(ground_truth, task_ids)
    # Only teacher slots of rows with a ground-truth output are compared.
    compared = ops.logical_and(ops.greater(task_ids, 0), count[:, None] > 0)
    target = ops.where(compared[..., None], y, float("nan"))
    return _loss_like(classifier.loss)(target, said, sample_weight)


def _loss_like(compiled):
    """The masked loss of the compiled kind (mean squared error unless the
    compiled loss is a `MaskedMultiTaskLoss` of another kind)."""
    if isinstance(compiled, MaskedMultiTaskLoss):
        return MaskedMultiTaskLoss(loss=compiled.loss, epsilon=compiled.epsilon)
    return MaskedMultiTaskLoss()
