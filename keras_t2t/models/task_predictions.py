"""`Teacher2TaskClassifier.predict`: the ground truth, or every task.

A packed model reads every task in one pass; a per-example model runs
once per task, its `teacher_id` set to each in turn. The ground truth is
task 0, or the classifier's `combination` of the teacher tasks. No rows
give an empty result without running Keras's `predict` (which fails on no
batches, and on JAX leaves the model unable to predict again); on several
devices the batches are padded to split evenly (`device_padding`).
"""

import numpy as np
from keras import ops

from keras_t2t.models import array_inputs
from keras_t2t.models import device_padding
from keras_t2t.models import input_checks


def predict(model, keras_predict, x, batch_size=None, all_tasks=False, **kw):
    """`model`'s predictions through `keras_predict` (Keras's `predict`)."""
    if model.combination is not None and not all_tasks:
        outputs = predict(
            model, keras_predict, x, batch_size, all_tasks=True, **kw
        )
        return ops.convert_to_numpy(model.combination(outputs))
    if model.backbone.packed:
        outputs = _predict(model, keras_predict, x, batch_size, **kw)
        return outputs if all_tasks else outputs[:, 0]
    if not all_tasks:
        return _predict(model, keras_predict, x, batch_size, **kw)
    if isinstance(x, dict):
        x = {name: np.asarray(value) for name, value in x.items()}
    input_checks.check_every_task_inputs(x)
    size = array_inputs.num_rows(x)
    return np.stack(
        [
            _predict(
                model,
                keras_predict,
                dict(x, teacher_id=np.full(size, task, "int32")),
                batch_size,
                **kw,
            )
            for task in range(model.backbone.num_teachers + 1)
        ],
        axis=1,
    )


def _predict(model, keras_predict, x, batch_size, **kwargs):
    x, _, _ = input_checks.check_arrays(model, x)
    if array_inputs.no_rows(x):
        shape = (0, model.num_labels)
        if model.backbone.packed:
            shape = (0, model.backbone.num_teachers + 1, model.num_labels)
        return ops.convert_to_numpy(ops.zeros(shape, model.output.dtype))
    shards = device_padding.batch_shards(model)
    if shards == 1:
        return keras_predict(x, batch_size=batch_size, **kwargs)
    # On several devices, a short last batch is padded so that it splits
    # evenly; the padded rows are dropped from the result.
    return device_padding.predict(model, x, shards, batch_size, **kwargs)
