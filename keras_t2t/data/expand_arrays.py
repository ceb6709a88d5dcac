import keras
import numpy as np

from keras_t2t import _arguments
from keras_t2t.data.expand import expand
from keras_t2t.teacher_vocabulary import TeacherVocabulary

# The ground-truth column of the table built from the arrays.
_GROUND_TRUTH = "__ground_truth__"


@_arguments.suggests_keywords
def expand_arrays(
    inputs,
    labels,
    teacher_scores,
    ground_truth_weight=1.0,
    task_layout="sparse",
):
    """Expands an in-memory multi-teacher table into Teacher2Task examples.

    Each row holds model inputs, ground-truth labels (NaN where unknown)
    and each teacher's confidences (NaN where the teacher did not score).
    The arrays go through `keras_t2t.data.expand` with the `task_layout`
    of the model, so they are checked the same way (labels 0/1, confidences in
    `[0, 1]`, NaN where missing) and expanded the same way: sparse (the
    default), one example per row with `task_ids` (the ground truth, then
    the teachers that scored the row, padded with -1 to the row with the
    most sources); packed, one example per row with a target per task;
    per-example, one example per (row, source) with a present value,
    ground-truth examples with teacher id 0 and teacher k's with id k.
    Rows where no source has a value give no example.

    Args:
        inputs: dict of arrays with a leading row dimension, e.g.
            `{"features": ..., "padding_mask": ...}`.
        labels: float array `(rows, num_labels)`, NaN where missing.
        teacher_scores: float array `(rows, num_teachers, num_labels)` of
            confidences in `[0, 1]`, NaN where missing.
        ground_truth_weight: float. The sample weight of ground-truth
            examples, per-example layout; teacher examples get 1. Defaults
            to `1.0`.
        task_layout: str. `"sparse"`, `"packed"` or `"per_example"`, the
            model's `task_layout`. Defaults to `"sparse"`.

    Returns:
        A tuple `(x, y, sample_weight)`. Sparse: `x` is `inputs` of the
        rows with a value plus `task_ids` `(rows, slots)`, `y` is `(rows,
        slots, num_labels)`. Packed: `x` is `inputs`, `y` is `(rows,
        num_teachers + 1, num_labels)`. Per-example: `x` is `inputs`
        repeated per example plus `teacher_id`, `y` is `(examples,
        num_labels)`.

    Example:
    ```python
    x, y, w = keras_t2t.data.expand_arrays(
        {"features": features}, labels, teacher_scores
    )
    classifier.fit(x, y, sample_weight=w)
    ```
    """
    labels = np.asarray(labels, dtype="float32")
    teacher_scores = np.asarray(teacher_scores, dtype="float32")
    if labels.ndim == 1:
        labels = labels[:, None]
    num_rows, num_labels = labels.shape
    if teacher_scores.ndim == 2:
        teacher_scores = teacher_scores[..., None]
    if (
        teacher_scores.ndim != 3
        or teacher_scores.shape[0] != num_rows
        or (teacher_scores.shape[2] != num_labels)
    ):
        raise ValueError(
            "`teacher_scores` must have shape (rows, num_teachers, "
            f"num_labels) = ({num_rows}, N, {num_labels}) to match `labels`."
            f" Received shape {teacher_scores.shape}."
        )
    for name, array in inputs.items():
        if len(array) != num_rows:
            raise ValueError(
                f"Input '{name}' has {len(array)} rows; `labels` has "
                f"{num_rows}."
            )
    # One expansion for every path: the arrays become a table for
    # `expand`, which checks the values and expands them.
    names = [f"teacher_{k}" for k in range(1, teacher_scores.shape[1] + 1)]
    table = dict(inputs, **{_GROUND_TRUTH: labels})
    for k, name in enumerate(names):
        table[name] = teacher_scores[:, k]
    dataset = expand(
        table,
        TeacherVocabulary(names),
        inputs=list(inputs),
        ground_truth=_GROUND_TRUTH,
        num_labels=num_labels,
        ground_truth_weight=ground_truth_weight,
        task_layout=task_layout,
        batch_size=max(1, len(labels) * (1 + len(names))),
    )
    x, y, sample_weight = keras.tree.map_structure(
        lambda t: t.numpy(), dataset.get_single_element()
    )
    return x, y, sample_weight
