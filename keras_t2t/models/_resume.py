"""Training that resumes at the batch after the last backup.

Keras's `BackupAndRestore` restarts an interrupted epoch from its first
batch. Here `fit` reads the training data as one stream of batches (a
dataset repeated epoch after epoch, or arrays shuffled per epoch from a
seed kept in the backup), restores the backup, skips the batches already
trained on and ends the interrupted epoch where it would have ended.

The backup itself is written and read by a passive callback
(`keras_t2t.callbacks.BackupAndRestore`), found among `fit`'s callbacks by
what it offers, not by its class (`models/` imports nothing from
`callbacks/`):

- `resumes_mid_epoch = True`, the marker;
- `restore(model)`: loads the latest backup into `model` and returns its
  metadata (`{}` when there is none);
- `backup_dir`, named in errors;
- `stream`: set here to what identifies the stream (its first batch's
  fingerprint, the shuffle seed, the optimizer step it started at), saved
  with every backup and cleared when training ends.
"""

import hashlib

import keras
import numpy as np
import tensorflow as tf


def resuming_callback(callbacks):
    """The first callback in `callbacks` that resumes mid-epoch, or `None`."""
    return next(
        (c for c in callbacks or () if getattr(c, "resumes_mid_epoch", 0)),
        None,
    )


def fit(
    model,
    keras_fit,
    backup,
    x,
    y=None,
    shuffle=True,
    epochs=1,
    initial_epoch=0,
    steps_per_epoch=None,
    batch_size=None,
    **kwargs,
):
    """Runs `keras_fit` on one endless stream, from `backup`'s position.

    `x` is a tuple of arrays `(x, y, sample_weight)` or a batched
    `tf.data.Dataset`; `kwargs` go to `keras_fit` unchanged.
    """
    if y is not None:
        raise ValueError(
            "`BackupAndRestore` resumes training on arrays or on a "
            "batched `tf.data.Dataset` of (x, y) batches; `y` goes "
            f"inside the dataset. Received x: {type(x).__name__}"
        )
    metadata = backup.restore(model)
    seed = metadata.get("shuffle_seed")
    if seed is None:
        seed = int(np.random.randint(2**31 - 1))
    if isinstance(x, tuple):
        batch_size = batch_size or 32
        size = len(keras.tree.flatten(x)[0])
        steps_per_epoch = steps_per_epoch or -(-size // batch_size)
        x = _array_stream(x, batch_size, shuffle, seed)
    elif not isinstance(x, tf.data.Dataset):
        raise ValueError(
            "`BackupAndRestore` resumes training on arrays or on a "
            f"batched `tf.data.Dataset`. Received: {type(x).__name__}"
        )
    size = int(x.cardinality())
    if size == tf.data.INFINITE_CARDINALITY:
        stream = x
    else:
        stream = x.repeat()
        steps_per_epoch = steps_per_epoch or (size if size > 0 else None)
    if not steps_per_epoch:
        raise ValueError(
            "`BackupAndRestore` needs the number of batches per epoch: "
            "this dataset's size is unknown (or empty), so pass "
            "`steps_per_epoch`."
        )
    step = int(keras.ops.convert_to_numpy(model.optimizer.iterations))
    start_step = metadata.get("start_step", step)
    fingerprint = _fingerprint(next(iter(stream.take(1))))
    if metadata and metadata.get("data_fingerprint") != fingerprint:
        raise ValueError(
            f"Cannot resume from the backup in {backup.backup_dir!r}: the "
            "training data is not the stream the interrupted run trained "
            "on (its first batch differs). Fix the dataset's shuffle seed "
            "(e.g. `keras_t2t.data.expand(..., seed=0)`) so a restart "
            "sees the same batches, or delete the backup to start over."
        )
    backup.stream = {
        "data_fingerprint": fingerprint,
        "shuffle_seed": seed,
        "start_step": int(start_step),
    }
    # Batches of the stream trained on so far, in this `fit`.
    position = step - start_step
    epoch = min(initial_epoch + position // steps_per_epoch, epochs)
    done = position % steps_per_epoch if epoch < epochs else 0
    if done:
        # Placed first, it ends the interrupted epoch where it would have
        # ended.
        kwargs["callbacks"] = [
            _EndFirstEpochEarly(steps_per_epoch - done)
        ] + list(kwargs["callbacks"] or ())
    # With nothing left to train (`epoch == epochs`) Keras runs no epoch,
    # and the callbacks still see training begin and end.
    return keras_fit(
        stream.skip(position),
        initial_epoch=epoch,
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        **kwargs,
    )


def _fingerprint(batch):
    digest = hashlib.sha256()
    for value in tf.nest.flatten(batch):
        value = np.asarray(value)
        digest.update(str((value.dtype, value.shape)).encode())
        if value.dtype == object:  # Strings.
            digest.update(b"\0".join(map(bytes, value.ravel())))
        else:
            digest.update(np.ascontiguousarray(value).tobytes())
    return digest.hexdigest()


class _EndFirstEpochEarly(keras.callbacks.Callback):
    """Ends the first epoch after `steps` batches; later ones run in full."""

    def __init__(self, steps):
        super().__init__()
        self.steps = steps
        self.first_epoch = True
        self.stopped = False

    def on_train_batch_end(self, batch, logs=None):
        if self.first_epoch and batch + 1 == self.steps:
            if not self.model.stop_training:
                self.model.stop_training = self.stopped = True

    def on_epoch_end(self, epoch, logs=None):
        # Runs before the other callbacks' `on_epoch_end` (it is placed
        # first), so an early stop they ask for still stops training.
        if self.stopped:
            self.model.stop_training = False
        self.first_epoch = self.stopped = False


def _array_stream(data, batch_size, shuffle, seed):
    """Batches of arrays, epoch after epoch, endlessly.

    Epoch k's order is a function of `(seed, k)` only, so the stream is the
    same in any process, however often it was iterated before.
    """
    size = len(keras.tree.flatten(data)[0])
    data = keras.tree.map_structure(tf.convert_to_tensor, data)

    def epoch(k):
        order = tf.range(size, dtype="int64")
        if shuffle:
            order = tf.random.experimental.stateless_shuffle(
                order, seed=tf.stack([tf.constant(seed, "int64"), k])
            )
        return tf.data.Dataset.from_tensor_slices(order).batch(batch_size)

    def gather(indices):
        return keras.tree.map_structure(
            lambda value: tf.gather(value, indices), data
        )

    return (
        tf.data.Dataset.counter()
        .flat_map(epoch)
        .map(gather, num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )
