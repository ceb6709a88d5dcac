"""Equal shares of every batch for every device, and the rows to keep.

With several devices (`tf.distribute` replicas, or the data-parallel axis
of a `keras.distribution` mesh), every batch must split evenly. A short
last batch is padded: in training with examples that have no target (NaN)
and weight 0, which change neither loss nor metrics; in `predict` with
rows whose mask, carried in the target's place under `REAL_ROWS`, drops
them from the result.
"""

import keras
import tensorflow as tf

# The key under which padded `predict` batches carry their real-row mask.
REAL_ROWS = "_keras_t2t_real_rows"


def batch_shards(model):
    """The number of equal parts a batch is split into across devices.

    `tf.distribute` replicas on TensorFlow; the data-parallel part of the
    `keras.distribution` device mesh held by this process on JAX.
    """
    shards = 1
    if keras.backend.backend() == "tensorflow":
        shards = model.distribute_strategy.num_replicas_in_sync
    distribution = keras.distribution.distribution()
    if distribution is not None:
        mesh = distribution.device_mesh
        axes = dict(zip(mesh.axis_names, mesh.shape, strict=True))
        size = axes.get(distribution.batch_dim_name, 1)
        shards = max(shards, size // max(distribution.num_processes, 1))
    return max(int(shards), 1)


def pad_batch(x, y, sample_weight, multiple, pad_value=float("nan")):
    """Pads a batch to a multiple of `multiple` examples.

    Inputs are padded with zeros (teacher id 0, no real positions), targets
    with `pad_value` (NaN: missing) and sample weights with 0.
    """
    size = tf.shape(keras.tree.flatten(x)[0])[0]
    extra = (multiple - size % multiple) % multiple

    def pad(tensor, value=0):
        paddings = [[0, extra]] + [[0, 0]] * (len(tensor.shape) - 1)
        return tf.pad(
            tensor, paddings, constant_values=tf.cast(value, tensor.dtype)
        )

    x = {name: pad(value) for name, value in x.items()}
    if sample_weight is None:
        sample_weight = tf.ones((size,), "float32")
    sample_weight = pad(tf.convert_to_tensor(sample_weight))
    y = keras.tree.map_structure(lambda t: pad(t, pad_value), y)
    return x, y, sample_weight


def pad_for_devices(model, x, y, sample_weight):
    """A training batch padded to split evenly across `model`'s devices.

    Every device gets an equal share of each batch: a short last batch is
    padded with examples that have no target (NaN) and weight 0, which
    change neither loss nor metrics. On one device the batch is unchanged.
    """
    shards = batch_shards(model)
    if shards == 1:
        return x, y, sample_weight
    return pad_batch(x, y, sample_weight, shards)


def pad_for_predict(dataset, preprocess, shards):
    """Maps `preprocess` over batches and pads each; marks the real rows."""

    def pad(*data):
        x, _, _ = keras.utils.unpack_x_y_sample_weight(preprocess(*data))
        real = tf.ones(tf.shape(keras.tree.flatten(x)[0])[:1], "bool")
        x, real, _ = pad_batch(x, real, None, shards, pad_value=False)
        return x, {REAL_ROWS: real}

    return dataset.map(pad, num_parallel_calls=tf.data.AUTOTUNE)


def with_real_rows(step_outputs, y):
    """A `predict_step`'s outputs, with the real-row mask where padded."""
    if not (isinstance(y, dict) and REAL_ROWS in y):
        return step_outputs
    real = y[REAL_ROWS]
    if keras.backend.backend() == "jax":
        outputs, non_trainable_variables = step_outputs
        return (outputs, real), non_trainable_variables
    return step_outputs, real


def predict_padded(model, x, shards, batch_size=None, **kwargs):
    """`keras.Model.predict` on batches padded to split into `shards`.

    `x` (arrays, batched by `batch_size`, or a batched dataset) goes
    through `model.preprocess_samples`; each batch is padded and the padded
    rows are dropped from the result.
    """
    if not isinstance(x, tf.data.Dataset):
        x = tf.data.Dataset.from_tensor_slices(x).batch(batch_size or 32)
    x = pad_for_predict(x, model.preprocess_samples, shards)
    outputs, real = keras.Model.predict(
        model, x.prefetch(tf.data.AUTOTUNE), **kwargs
    )
    return keras.tree.map_structure(lambda out: out[real], outputs)
