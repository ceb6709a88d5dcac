"""Checks of column names and of the values of a table's sources: with numpy
for in-memory rows, with `tf.debugging.Assert` inside streamed pipelines."""

import numpy as np
import tensorflow as tf


def rescale_scores(values, rule):
    """Maps a teacher's raw scores onto `[0, 1]` (numpy or tf)."""
    if rule == "sigmoid":
        return (
            1.0 / (1.0 + np.exp(-values))
            if _is_numpy(values)
            else (tf.sigmoid(values))
        )
    low, high = rule
    return (values - low) / (high - low)


def _is_numpy(values):
    return isinstance(values, np.ndarray)


def _check_targets(targets, spec, row_ids, row_word):
    """Rescales teachers in place, then checks every present value."""
    for k, name in enumerate(spec.vocabulary.teachers, start=1):
        if name in spec.rescale:
            targets[:, k] = rescale_scores(targets[:, k], spec.rescale[name])
    with np.errstate(invalid="ignore"):
        bad_truth = (
            ~np.isnan(targets[:, 0])
            & (targets[:, 0] != 0)
            & (targets[:, 0] != 1)
        )
        bad_score = (targets[:, 1:] < 0) | (targets[:, 1:] > 1)
    if bad_truth.any():
        row, label = np.argwhere(bad_truth)[0]
        raise ValueError(
            f"{row_word.capitalize()} {_display(row_ids[row])}: ground truth "
            f"{_where(spec, 0, label)} is {_number(targets[row, 0, label])}; "
            "ground-truth labels must be 0 or 1 (NaN where unknown)."
        )
    if bad_score.any():
        row, teacher, label = np.argwhere(bad_score)[0]
        name = spec.vocabulary.teachers[teacher]
        where = f"{row_word.capitalize()} {_display(row_ids[row])}"
        column = _where(spec, teacher + 1, label)
        raise ValueError(
            f"{where}: teacher {name!r} {column} scored "
            f"{_number(targets[row, teacher + 1, label])}, outside [0, 1]. "
            "Teachers "
            "give confidences; for logits or other ranges pass "
            f'`rescale={{{name!r}: "sigmoid"}}` or `(low, high)`.'
        )


def _number(value):
    """A table value as its file wrote it: the shortest digits that read
    back as the same float32 (1.7 or 2.0, not 1.7000000476837158)."""
    return np.format_float_positional(np.float32(value), trim="0")


def _display(row_id):
    row_id = row_id.item() if isinstance(row_id, np.generic) else row_id
    return repr(row_id)


def _where(spec, source_id, label):
    if spec.layout == "long":
        place = f"(column {spec.score_column!r}"
    elif source_id == 0:
        place = f"(column {spec.ground_truth!r}"
    else:
        place = f"(column {spec.teacher_columns[source_id - 1]!r}"
    return place + (f", label {label})" if label else ")")


def _role(spec, source_id):
    if source_id == 0:
        return "the ground truth"
    return f"teacher {spec.source_names[source_id]!r}"


def _assert_valid(value, index, spec, source_id):
    """Stops the pipeline at the first row of a block with a bad value."""
    present = ~tf.math.is_nan(value)
    # No quotes in these messages: TensorFlow escapes them.
    if source_id == 0:
        bad = present & (value != 0.0) & (value != 1.0)
        message = (
            f"ground truth (column {spec.ground_truth}) must be 0 or 1 "
            "(NaN where unknown)"
        )
    else:
        name = spec.source_names[source_id]
        column = spec.teacher_columns[source_id - 1]
        bad = present & ((value < 0.0) | (value > 1.0))
        message = (
            f"teacher {name} (column {column}) must score in [0, 1]; for "
            "logits or other ranges pass `rescale`"
        )
    bad_rows = tf.reduce_any(bad, axis=-1)
    check = tf.debugging.Assert(
        ~tf.reduce_any(bad_rows),
        [
            "Row",
            tf.boolean_mask(index, bad_rows)[:1],
            ":",
            message,
            "; got",
            tf.boolean_mask(value, bad_rows)[:1],
        ],
    )
    with tf.control_dependencies([check]):
        return tf.identity(value)


def _check_unique(names, what):
    seen = {}
    for index, name in enumerate(names):
        if name in seen:
            raise ValueError(
                f"{what} names column {name!r} twice (columns {seen[name]} "
                f"and {index}); pandas would keep the second as "
                f"'{name}.1' and its values would be lost. Give each column "
                "its own name."
            )
        seen[name] = index
