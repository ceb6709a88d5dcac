"""The input checks of `Teacher2TaskClassifier.fit`, `evaluate`, `predict`.

One place for every kind of model input: the inputs dict (keys, shapes,
teacher ids, token ids, feature values), the targets and the sample
weights. Each check has a numpy form, run on in-memory arrays before they
are batched, so that a bad value is a `ValueError` naming its example, and
a `tf` form, run on every batch inside the input pipeline of a dataset,
which stops the pipeline with the same message (and the position within
the batch). Calling the model directly does no checks.

TensorFlow escapes quotes in assertion messages, so the `tf` messages name
inputs without them.
"""

import numpy as np
import tensorflow as tf

from keras_t2t import _arguments


def check_arrays(model, x, y=None, sample_weight=None, needs_targets=False):
    """Checks in-memory inputs whole, before they are batched.

    `x` a dict of arrays (not tensors) of a model without a preprocessor:
    completed and checked with `y` and `sample_weight` (any of them
    returned converted to numpy); anything else is returned unchanged, to
    be checked batch by batch in the input pipeline (`check_batch`).
    """
    if (
        model.preprocessor is None
        and isinstance(x, dict)
        and not any(isinstance(value, tf.Tensor) for value in x.values())
    ):
        x = {name: np.asarray(value) for name, value in x.items()}
        x = complete_and_check_inputs(model.backbone, x)
        if y is None and needs_targets:
            raise ValueError(
                "`y` is None: training and evaluating on arrays need "
                "targets, (examples, num_labels) (NaN where a value is "
                "unknown). Received: y=None"
            )
        if y is not None and not isinstance(y, tf.Tensor):
            y = check_targets(np.asarray(y), *_target_spec(model))
            _check_slots(model.backbone, x, y)
        if sample_weight is not None:
            sample_weight = check_sample_weight(sample_weight)
        check_lengths(x, y, sample_weight)
    return x, y, sample_weight


def check_batch(model, x, y=None, sample_weight=None):
    """Completes and checks one batch inside the input pipeline."""
    x = complete_and_check_inputs(model.backbone, x)
    if sample_weight is not None:
        sample_weight = check_sample_weight(sample_weight)
    if y is not None:
        y = check_targets(y, *_target_spec(model))
        _check_slots(model.backbone, x, y)
    return x, y, sample_weight


def _check_slots(backbone, x, y):
    """A sparse model's targets have one entry per slot of `task_ids`."""
    if not backbone.sparse:
        return
    slots, target_slots = x["task_ids"].shape[1], y.shape[1]
    if None not in (slots, target_slots) and slots != target_slots:
        raise ValueError(
            f"'task_ids' has {slots} slots per row but the targets have "
            f"{target_slots}: a sparse model's targets are (batch, slots, "
            "num_labels), the target of slot s for the task in "
            "task_ids[:, s] (NaN for an empty slot, id -1)."
        )


def check_every_task_inputs(x):
    """Checks the inputs of `predict(..., all_tasks=...)` on a per-example
    or sparse model: arrays, the tasks not named in them."""
    if not (
        isinstance(x, dict)
        and all(isinstance(value, np.ndarray) for value in x.values())
    ) or ({"teacher_id", "task_ids"} & set(x)):
        received = (
            f"a {sorted({'teacher_id', 'task_ids'} & set(x))[0]!r} input"
            if isinstance(x, dict)
            else type(x).__name__
        )
        raise ValueError(
            "`predict(..., all_tasks=...)` on a per-example or sparse model "
            "takes a dict of arrays without 'teacher_id' or 'task_ids' (the "
            f"tasks come from `all_tasks`). Received: {received}"
        )


def _target_spec(model):
    names = None
    if model.teacher_vocabulary is not None:
        names = model.teacher_vocabulary.names
    return model.num_labels, model.backbone, names


def complete_and_check_inputs(backbone, x):
    """Checks the inputs dict; fills `teacher_id` and a feature mask."""
    sequence_name = backbone.sequence_input_name
    _arguments.require(
        isinstance(x, dict),
        "Teacher2TaskClassifier takes a dict of inputs with keys "
        f"'teacher_id' (optional), '{sequence_name}' and 'padding_mask'. "
        f"Received: {type(x).__name__}",
    )
    expected = {"teacher_id", sequence_name, "padding_mask"}
    if backbone.packed:
        expected.remove("teacher_id")
        if backbone.sparse:
            expected.add("task_ids")
        if "teacher_id" in x:
            tasks = (
                "names the tasks of each row in 'task_ids' (batch, slots)"
                if backbone.sparse
                else "reads every task in one pass"
            )
            raise ValueError(
                f"This model (task_layout={backbone.task_layout!r}) {tasks} "
                "and takes no 'teacher_id': its targets are (batch, "
                "tasks, num_labels), and `predict(..., all_tasks=...)` "
                "returns the tasks asked for."
            )
    unexpected = sorted(set(x) - expected)
    if unexpected:
        raise ValueError(
            f"Unexpected input(s) {unexpected}: this "
            f"{backbone.input_mode} model takes {sorted(expected)}."
        )
    if sequence_name not in x:
        raise ValueError(
            f"Missing input '{sequence_name}': this {backbone.input_mode}"
            f" model takes {sorted(expected)}. Received keys: {sorted(x)}"
        )
    x = dict(x)
    backend = tf if isinstance(x[sequence_name], tf.Tensor) else np
    sequence = x[sequence_name]
    if backbone.input_mode == "features":
        shape = tuple(sequence.shape)
        if len(shape) != 3 or shape[-1] not in (None, backbone.feature_dim):
            raise ValueError(
                f"Input 'features' must have shape (batch, seq, "
                f"{backbone.feature_dim}) for this model "
                f"(feature_dim={backbone.feature_dim}). Received shape "
                f"{shape}."
            )
        x["features"] = _check_finite_features(sequence, backend)
    else:
        if len(sequence.shape) != 2:
            raise ValueError(
                "Input 'token_ids' must have shape (batch, seq). Received "
                f"shape {tuple(sequence.shape)}."
            )
        x["token_ids"] = _check_token_ids(
            sequence, backbone.vocabulary_size, backend
        )
    limit = backbone.max_sequence_length
    length = sequence.shape[1]
    if limit is not None and length is not None and length > limit:
        raise ValueError(
            f"Input '{sequence_name}' has {length} positions; this model "
            f"embeds at most max_sequence_length={limit}. Shorten the "
            "input or build the backbone with a larger "
            "`max_sequence_length`."
        )
    if "padding_mask" not in x:
        if backbone.input_mode == "text":
            raise ValueError(
                "Missing input 'padding_mask' (1 for real tokens, 0 for "
                "padding), needed with 'token_ids'."
            )
        x["padding_mask"] = backend.ones(
            backend.shape(sequence)[:2], dtype="int32"
        )
    elif backend is np:
        x["padding_mask"] = _check_padding_mask(
            np.asarray(x["padding_mask"]), sequence, sequence_name
        )
    if backbone.sparse:
        if "task_ids" not in x:
            # Inference asks for the primary task: the ground truth, id 0.
            rows = backend.shape(sequence)[0]
            x["task_ids"] = backend.zeros(
                backend.stack([rows, 1]), dtype="int32"
            )
        x["task_ids"] = _check_task_ids(
            x["task_ids"], backbone.num_teachers, backend
        )
        return x
    if backbone.packed:
        return x
    if "teacher_id" not in x:
        # Inference asks for the primary task: the ground truth, id 0.
        x["teacher_id"] = backend.zeros(
            backend.shape(sequence)[:1], dtype="int32"
        )
    x["teacher_id"] = _check_teacher_ids(
        x["teacher_id"], backbone.num_teachers, backend
    )
    return x


def _check_padding_mask(mask, sequence, sequence_name):
    """An array mask: (batch, seq) as the sequence, 0/1 values."""
    # Another number of examples is `check_lengths`' to name.
    if mask.ndim != 2 or mask.shape[1] != sequence.shape[1]:
        raise ValueError(
            "Input 'padding_mask' must be (batch, seq) with the "
            f"{sequence.shape[1]} positions of '{sequence_name}'. Received "
            f"shape {tuple(mask.shape)}."
        )
    if not (np.issubdtype(mask.dtype, np.number) or mask.dtype == bool):
        raise ValueError(
            "Input 'padding_mask' must hold 0 (padding) and 1 (real "
            f"positions). Received dtype {mask.dtype}."
        )
    bad = (mask != 0) & (mask != 1)
    if bad.any():
        row, position = np.argwhere(bad)[0]
        raise ValueError(
            "Input 'padding_mask' must hold 0 (padding) and 1 (real "
            f"positions). Received {mask[row, position].item()!r} at "
            f"example {row}, position {position}."
        )
    return mask


def check_targets(y, num_labels, backbone, task_names=None):
    """Checks the targets' shape and values: NaN (missing) or in [0, 1]."""
    shape = tuple(y.shape)
    expected = (num_labels,)
    if backbone.sparse:
        expected = (None, num_labels)
    elif backbone.packed:
        expected = (backbone.num_teachers + 1, num_labels)
    if len(shape) == len(expected) and num_labels == 1:
        y = y[..., None]
        shape = tuple(y.shape)
    if len(shape) != len(expected) + 1 or any(
        size not in (None, want) and want is not None
        for size, want in zip(shape[1:], expected, strict=True)
    ):
        layout = "one example per (input, task)"
        if backbone.sparse:
            layout = (
                "sparse, one row per input and a target per slot of "
                "'task_ids' (NaN for an empty slot)"
            )
        elif backbone.packed:
            layout = (
                "packed, one row per input and a target per task (NaN "
                "where a source did not score)"
            )
        sizes = ", ".join("slots" if n is None else str(n) for n in expected)
        raise ValueError(
            f"Targets must have shape (batch, {sizes}) for this model "
            f"(num_labels={num_labels}; {layout}), NaN where a "
            f"value is missing. Received shape {shape}."
        )
    rule = (
        "targets must be confidences in [0, 1], NaN where a value is "
        "missing (a value of another range: rescale it, as "
        "`keras_t2t.data.expand(..., rescale=...)` does)"
    )
    if isinstance(y, tf.Tensor):
        if not y.dtype.is_floating:
            y = tf.cast(y, "float32")
        bad = ~tf.math.is_nan(y) & ((y < 0.0) | (y > 1.0))
        return _assert_none(bad, y, f"Bad target: {rule}.", "(example, ...)")
    with np.errstate(invalid="ignore"):
        bad = ~np.isnan(y) & ((y < 0) | (y > 1))
    if bad.any():
        index = np.unravel_index(np.flatnonzero(bad)[0], bad.shape)
        if backbone.sparse:
            where = f"example {index[0]}, slot {index[1]}, label {index[2]}"
        elif backbone.packed:
            task = int(index[1])
            name = f" ({task_names[task]!r})" if task_names else ""
            where = f"example {index[0]}, task {task}{name}, label {index[2]}"
        else:
            where = f"example {index[0]}, label {index[1]}"
        raise ValueError(f"The target at {where} is {y[index]}; {rule}.")
    return y


def check_sample_weight(sample_weight):
    """Checks that sample weights are finite and >= 0."""
    rule = (
        "sample weights must be finite and >= 0 (0 leaves an example out "
        "of the loss)"
    )
    if isinstance(sample_weight, tf.Tensor):
        bad = ~tf.math.is_finite(sample_weight) | (sample_weight < 0)
        return _assert_none(
            bad, sample_weight, f"Bad sample_weight: {rule}.", "(example,)"
        )
    sample_weight = np.asarray(sample_weight)
    if sample_weight.ndim != 1:
        raise ValueError(
            "`sample_weight` must be one weight per example, shape "
            f"(examples,). Received shape {sample_weight.shape}."
        )
    if not np.issubdtype(sample_weight.dtype, np.number):
        raise ValueError(
            f"`sample_weight` must be numeric; {rule}. Received dtype "
            f"{sample_weight.dtype}."
        )
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(sample_weight) | (sample_weight < 0)
    if bad.any():
        index = int(np.flatnonzero(bad.reshape(-1))[0])
        raise ValueError(
            f"`sample_weight` at example {index} is "
            f"{sample_weight.reshape(-1)[index]}; {rule}."
        )
    return sample_weight


def check_lengths(x, y=None, sample_weight=None):
    """Checks that in-memory inputs, targets and weights have one length."""
    arrays = dict(x)
    if y is not None:
        arrays["y"] = y
    if sample_weight is not None:
        arrays["sample_weight"] = sample_weight
    lengths = {
        name: len(value) if np.ndim(value) else None
        for name, value in arrays.items()
    }
    first = next(iter(x), None)
    for name, length in lengths.items():
        if length != lengths[first]:
            kind = "input " if name in x else ""
            raise ValueError(
                f"{kind}{name!r} has {length} examples but input "
                f"{first!r} has {lengths[first]}: inputs, targets `y` and "
                "`sample_weight` need one row per example."
            )


def _check_teacher_ids(teacher_id, num_teachers, backend):
    message = (
        f"'teacher_id' must be in [0, {num_teachers}]: 0 is the ground truth "
        f"and 1..{num_teachers} the model's {num_teachers} teachers."
    )
    return _check_ids(
        teacher_id,
        0,
        num_teachers,
        message,
        lambda value, index: f"teacher_id={value} at example {index[0]}.",
        backend,
    )


def _check_task_ids(task_ids, num_teachers, backend):
    message = (
        f"'task_ids' must be in [-1, {num_teachers}] with shape (batch, "
        f"slots): 0 is the ground truth, 1..{num_teachers} the model's "
        f"{num_teachers} teachers and -1 an empty slot."
    )
    if len(task_ids.shape) != 2:
        raise ValueError(f"{message} Received shape {tuple(task_ids.shape)}.")
    return _check_ids(
        task_ids,
        -1,
        num_teachers,
        message,
        lambda value, index: (
            f"task id {value} at example {index[0]}, slot {index[1]}."
        ),
        backend,
    )


def _check_ids(ids, low, high, message, received, backend):
    """Integer ids within `[low, high]`, as int32; `received(value, index)`
    says which one is not, in arrays."""
    if backend is np:
        ids = np.asarray(ids)
        if not np.issubdtype(ids.dtype, np.integer):
            raise ValueError(f"{message} Received dtype {ids.dtype}.")
        bad = (ids < low) | (ids > high)
        if bad.any():
            index = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ValueError(
                f"{message} Received {received(ids[index], index)}"
            )
        return ids.astype("int32")
    if not ids.dtype.is_integer:
        raise ValueError(f"{message} Received dtype {ids.dtype.name}.")
    ids = tf.cast(ids, "int32")
    checks = [
        tf.debugging.assert_greater_equal(ids, low, message=message),
        tf.debugging.assert_less_equal(ids, high, message=message),
    ]
    with tf.control_dependencies(checks):
        return tf.identity(ids)


def _check_token_ids(token_ids, vocabulary_size, backend):
    # An id outside the embedding table is an error on TF and torch, deep
    # inside the gather; on JAX it reads NaN (or wraps, when negative) and
    # one step makes every weight NaN. So every id is checked here.
    rule = (
        f"token ids must be in [0, {vocabulary_size - 1}] for this model "
        f"(vocabulary_size={vocabulary_size}): tokenize with the tokenizer "
        "the backbone was built for, or build it with a larger "
        "`vocabulary_size`"
    )
    _check_dtype(token_ids, "token_ids", "integers", backend, f"; {rule}")
    if backend is tf:
        bad = (token_ids < 0) | (token_ids >= vocabulary_size)
        return _assert_none(
            bad,
            token_ids,
            f"Input token_ids out of range: {rule}.",
            "(example, position)",
        )
    token_ids = np.asarray(token_ids)
    bad = (token_ids < 0) | (token_ids >= vocabulary_size)
    if bad.any():
        row, position = np.argwhere(bad)[0]
        raise ValueError(
            f"Input 'token_ids' at example {row}, position {position} is "
            f"{token_ids[row, position]}; {rule}."
        )
    return token_ids


def _check_dtype(values, name, kind, backend, rule=""):
    """Raises unless `values` are `"integers"` or `"numeric"`."""
    if backend is tf:
        dtype = values.dtype
        ok = dtype.is_integer or (kind == "numeric" and dtype.is_floating)
        shown = dtype.name
    else:
        dtype = np.asarray(values).dtype
        ok = np.issubdtype(
            dtype, np.integer if kind == "integers" else np.number
        )
        shown = dtype
    if not ok:
        raise ValueError(
            f"Input '{name}' must be {kind}{rule}. Received dtype {shown}."
        )


def _check_finite_features(features, backend):
    rule = (
        "features must be finite: replace NaN and inf (e.g. with 0, and "
        "set `padding_mask` to 0 at positions that hold no data)"
    )
    _check_dtype(features, "features", "numeric", backend)
    if backend is tf:
        if features.dtype.is_integer:
            return features
        return _assert_none(
            ~tf.math.is_finite(features),
            features,
            f"Non-finite input features: {rule}.",
            "(example, position, feature)",
        )
    features = np.asarray(features)
    bad = ~np.isfinite(features)
    if bad.any():
        row, position, feature = np.argwhere(bad)[0]
        raise ValueError(
            f"Input 'features' at example {row}, position {position}, "
            f"feature {feature} is {features[row, position, feature]}; "
            f"{rule}."
        )
    return features


def _assert_none(bad, values, message, index_names):
    """Stops the pipeline at the first `bad` entry of a batch, naming it."""
    check = tf.debugging.Assert(
        ~tf.reduce_any(bad),
        [
            message,
            "Received",
            tf.boolean_mask(values, bad)[:1],
            f"at batch index {index_names}",
            tf.where(bad)[:1],
        ],
    )
    with tf.control_dependencies([check]):
        return tf.identity(values)
