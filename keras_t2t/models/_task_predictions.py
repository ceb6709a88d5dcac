"""`Teacher2TaskClassifier.predict`: the ground truth, or chosen tasks.

A packed model reads every task in one pass; a sparse model reads the
tasks asked for (in groups of `_SLOTS_PER_PASS`, so that a thousand
teachers never make a thousand-token row); a per-example model runs once
per task, its `teacher_id` set to each in turn. The ground truth is task
0, or the classifier's `combination` of teacher tasks. No rows give an
empty result without running Keras's `predict` (which fails on no
batches, and on JAX leaves the model unable to predict again); on several
devices the batches are padded to split evenly (`device_padding`).
"""

import numpy as np
import tensorflow as tf
from keras import ops

from keras_t2t.models import _array_inputs
from keras_t2t.models import _device_padding
from keras_t2t.models import _input_checks

# The most task slots a sparse model reads in one pass of `predict`.
_SLOTS_PER_PASS = 64


def predict(model, keras_predict, x, batch_size=None, all_tasks=False, **kw):
    """`model`'s predictions through `keras_predict` (Keras's `predict`)."""
    task_ids = wanted_tasks(model.backbone.num_teachers, all_tasks)
    if model.combination is not None and task_ids is None:
        tasks = model.combination.tasks(model.backbone.num_teachers)
        outputs = predict(model, keras_predict, x, batch_size, tasks, **kw)
        return ops.convert_to_numpy(model.combination(outputs))
    backbone = model.backbone
    if backbone.sparse and task_ids is not None:
        # The tasks asked for, a group of slots per pass.
        groups = np.array_split(task_ids, -(-len(task_ids) // _SLOTS_PER_PASS))
        passes = _per_pass(
            model,
            keras_predict,
            x,
            batch_size,
            lambda rows: ({"task_ids": np.tile(g, (rows, 1))} for g in groups),
            **kw,
        )
        return np.concatenate(passes, axis=1)
    if backbone.sparse:
        outputs = _predict(model, keras_predict, x, batch_size, **kw)
        return outputs if _names_tasks(x) else outputs[:, 0]
    if backbone.packed:
        outputs = _predict(model, keras_predict, x, batch_size, **kw)
        return outputs[:, 0] if task_ids is None else outputs[:, task_ids]
    if task_ids is None:
        return _predict(model, keras_predict, x, batch_size, **kw)
    # A per-example model reads one task per pass.
    passes = _per_pass(
        model,
        keras_predict,
        x,
        batch_size,
        lambda rows: (
            {"teacher_id": np.full(rows, task, "int32")} for task in task_ids
        ),
        **kw,
    )
    return np.stack(passes, axis=1)


def _per_pass(model, keras_predict, x, batch_size, inputs, **kwargs):
    """One `predict` per dict of `inputs(rows)`, each set in `x` in turn."""
    x = _arrays(x)
    rows = _array_inputs.num_rows(x)
    return [
        _predict(model, keras_predict, dict(x, **task), batch_size, **kwargs)
        for task in inputs(rows)
    ]


def wanted_tasks(num_teachers, all_tasks):
    """`all_tasks` as an int array of task ids, or `None` (the default)."""
    if all_tasks is False or all_tasks is None:
        return None
    if all_tasks is True:
        return np.arange(num_teachers + 1, dtype="int32")
    ids = np.asarray(all_tasks)
    if (
        ids.ndim != 1
        or len(ids) == 0
        or not np.issubdtype(ids.dtype, np.integer)
    ):
        raise ValueError(
            "`all_tasks` must be True (every task) or a non-empty list of "
            f"task ids in [0, {num_teachers}]. Received: {all_tasks!r}"
        )
    bad = (ids < 0) | (ids > num_teachers)
    if bad.any():
        raise ValueError(
            f"`all_tasks` names task {ids[bad][0]}; task ids are in [0, "
            f"{num_teachers}] (0 the ground truth, 1..{num_teachers} the "
            "teachers)."
        )
    return ids.astype("int32")


def _names_tasks(x):
    """Whether inputs (a dict, or a dataset of them) carry `task_ids`."""
    if isinstance(x, tf.data.Dataset):
        x = x.element_spec
        x = x[0] if isinstance(x, tuple) else x
    return isinstance(x, dict) and "task_ids" in x


def _arrays(x):
    """`x` as a new dict of numpy arrays, checked for `all_tasks`."""
    if isinstance(x, dict):
        x = {name: np.asarray(value) for name, value in x.items()}
    _input_checks.check_every_task_inputs(x)
    return x


def _predict(model, keras_predict, x, batch_size, **kwargs):
    x, _, _ = _input_checks.check_arrays(model, x)
    if _array_inputs.no_rows(x):
        shape = (0, model.num_labels)
        if model.backbone.sparse:
            slots = x["task_ids"].shape[1] if "task_ids" in x else 1
            shape = (0, slots, model.num_labels)
        elif model.backbone.packed:
            shape = (0, model.backbone.num_teachers + 1, model.num_labels)
        return ops.convert_to_numpy(ops.zeros(shape, model.output.dtype))
    shards = _device_padding.batch_shards(model)
    if shards == 1:
        return keras_predict(x, batch_size=batch_size, **kwargs)
    # On several devices, a short last batch is padded so that it splits
    # evenly; the padded rows are dropped from the result.
    return _device_padding.predict_padded(
        model, x, shards, batch_size, **kwargs
    )
