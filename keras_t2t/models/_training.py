"""The training runtime of `Teacher2TaskClassifier`, behind one seam.

The classifier holds the network and its configuration; its `fit`,
`evaluate` and `predict` hand their arguments to the functions here, with
Keras's own method to call at the end. A call walks, in this package:

- `fit`: the inputs, targets and weights checked (`_input_checks`) →
  arrays packed, split for `validation_split` and batched
  (`_array_inputs`) → with a callback that resumes mid-epoch, one endless
  stream that restarts at the batch after the last backup (`_resume`) →
  Keras's `fit`. Each batch then passes the classifier's
  `preprocess_samples` (checked and padded for the devices,
  `_device_padding`).
- `evaluate`: checked → Keras's `evaluate`.
- `predict`: the tasks asked for read in groups, or once per task
  (`_task_predictions`) → Keras's `predict`, padded for the devices.

Each call leaves the model as it was when it raises (`_state`).
"""

import contextlib

import tensorflow as tf

from keras_t2t import _arguments
from keras_t2t.models import _array_inputs
from keras_t2t.models import _input_checks
from keras_t2t.models import _resume
from keras_t2t.models import _state
from keras_t2t.models import _task_predictions


def fit(
    model,
    keras_fit,
    x,
    y,
    sample_weight,
    *,
    shuffle,
    validation_split,
    validation_data,
    batch_size,
    callbacks,
    **kwargs,
):
    """Trains `model` through `keras_fit` (Keras's `fit`)."""
    _check_batching(batch_size, steps_per_epoch=kwargs.get("steps_per_epoch"))
    _arguments.integer("epochs", kwargs.get("epochs", 1), 1)
    if validation_split is not None:
        _arguments.number("validation_split", validation_split, 0.0, below=1.0)
    _arguments.boolean("shuffle", shuffle)
    x, y, sample_weight = _input_checks.check_arrays(
        model, x, y, sample_weight, needs_targets=True
    )
    _check_not_empty(x, "train on")
    if _array_inputs.in_memory(x):
        x, validation_data = _array_inputs.for_fit(
            x, y, sample_weight, validation_split, validation_data
        )
        y = sample_weight = validation_split = None
    kwargs.update(
        sample_weight=sample_weight,
        validation_split=validation_split,
        validation_data=validation_data,
        callbacks=callbacks,
    )
    backup = _resume.resuming_callback(callbacks)
    with _state.restored_on_error(model):
        if backup is not None:
            # Arrays (a tuple of them) or a dataset, made resumable there.
            return _resume.fit(
                model,
                keras_fit,
                backup,
                x,
                y,
                shuffle=shuffle,
                batch_size=batch_size,
                **kwargs,
            )
        if isinstance(x, tuple):
            x = _array_inputs.batches(x, batch_size, shuffle)
            batch_size = None
        # Datasets come shuffled (or not) by their maker.
        with _nothing_is_an_error("train on", x):
            history = keras_fit(
                x, y, batch_size=batch_size, shuffle=False, **kwargs
            )
    asked = kwargs.get("initial_epoch", 0) < kwargs.get("epochs", 1)
    if asked and not history.history:
        raise ValueError(_NOTHING.format(what="train on"))
    return history


def evaluate(model, keras_evaluate, x, y, sample_weight, **kwargs):
    """Evaluates `model` through `keras_evaluate` (Keras's `evaluate`)."""
    _check_batching(kwargs.get("batch_size"), steps=kwargs.get("steps"))
    x, y, sample_weight = _input_checks.check_arrays(
        model, x, y, sample_weight, needs_targets=True
    )
    _check_not_empty(x, "evaluate")
    if sample_weight is not None:
        kwargs["sample_weight"] = sample_weight
    with _state.restored_on_error(model), _nothing_is_an_error("evaluate", x):
        results = keras_evaluate(x, y, **kwargs)
    if not results:
        raise ValueError(_NOTHING.format(what="evaluate"))
    return results


def predict(model, keras_predict, x, batch_size, all_tasks, **kwargs):
    """Predicts through `keras_predict` (Keras's `predict`)."""
    _check_batching(batch_size, steps=kwargs.get("steps"))
    with _state.restored_on_error(model):
        return _task_predictions.predict(
            model, keras_predict, x, batch_size, all_tasks, **kwargs
        )


def _check_batching(batch_size, **steps):
    """`batch_size` and the number of steps (by its name): integers >= 1
    or `None`."""
    _arguments.integer("batch_size", batch_size, 1, allow_none=True)
    for name, value in steps.items():
        _arguments.integer(name, value, 1, allow_none=True)


_NOTHING = (
    "The data yielded no batch: nothing to {what}. Check that the dataset "
    "is not empty (a filter that keeps no row, a file of headers only) and "
    "that `steps` or `steps_per_epoch` fit in it."
)


@contextlib.contextmanager
def _nothing_is_an_error(what, x):
    """Data that yields no batch is an error of ours, on every backend.

    Keras's JAX trainer reads the first batch to build the model and
    raises `StopIteration` where there is none; its torch trainer builds
    on `None` and the model refuses that input. On a failure, a dataset is
    read again (once, only then) to tell which happened.
    """
    try:
        yield
    except StopIteration:
        raise ValueError(_NOTHING.format(what=what)) from None
    except Exception:
        if isinstance(x, tf.data.Dataset) and _yields_nothing(x):
            raise ValueError(_NOTHING.format(what=what)) from None
        raise


def _yields_nothing(dataset):
    return next(iter(dataset.take(1)), None) is None


def _check_not_empty(x, what):
    """Inputs of 0 rows, or a dataset known to be empty, are refused."""
    if _array_inputs.no_rows(x):
        raise ValueError(
            f"The inputs hold no examples (0 rows): nothing to {what}."
        )
