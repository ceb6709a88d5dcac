import numpy as np

from keras_t2t.teacher_vocabulary import TeacherVocabulary


def expand_arrays(inputs, labels, teacher_scores, ground_truth_weight=1.0):
    """Expands an in-memory multi-teacher table into Teacher2Task examples.

    Each row holds model inputs, ground-truth labels (NaN where unknown)
    and each teacher's confidences (NaN where the teacher did not score).
    The result has one example per (row, source) with at least one present
    value: ground-truth examples get teacher id 0, teacher k's examples id
    k. Rows where a source has no value give no example for that source.

    Args:
        inputs: dict of arrays with a leading row dimension, e.g.
            `{"features": ..., "padding_mask": ...}`.
        labels: float array `(rows, num_labels)`, NaN where missing.
        teacher_scores: float array `(rows, num_teachers, num_labels)` of
            confidences in `[0, 1]`, NaN where missing.
        ground_truth_weight: float. The sample weight of ground-truth
            examples; teacher examples get 1. Defaults to `1.0`.

    Returns:
        A tuple `(x, y, sample_weight)`: `x` is `inputs` repeated per
        example plus `teacher_id`, `y` is `(examples, num_labels)`.

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
    # (rows, 1 + N, num_labels): source 0 is the ground truth.
    targets = np.concatenate([labels[:, None, :], teacher_scores], axis=1)
    present = ~np.isnan(targets).all(axis=-1)
    rows, sources = np.nonzero(present)
    x = {name: np.asarray(array)[rows] for name, array in inputs.items()}
    x["teacher_id"] = sources.astype("int32")
    y = targets[rows, sources]
    sample_weight = np.where(
        sources == TeacherVocabulary.GROUND_TRUTH_ID, ground_truth_weight, 1.0
    ).astype("float32")
    return x, y, sample_weight
