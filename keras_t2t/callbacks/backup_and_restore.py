import hashlib
import json
import os
import tempfile

import keras
import numpy as np
import tensorflow as tf


@keras.saving.register_keras_serializable(package="keras_t2t")
class BackupAndRestore(keras.callbacks.BackupAndRestore):
    """Backs training up and resumes it exactly where it stopped.

    Keras's `BackupAndRestore` restarts an interrupted epoch from its first
    batch, so the batches trained on since the epoch began are trained on
    twice. With `Teacher2TaskClassifier.fit`, this callback resumes at the
    batch after the last backup: with fixed seeds, a run that is killed and
    restarted reaches the same weights as one that was not, and no example
    is skipped or repeated.

    How: `fit` reads the training data as one stream of batches (the
    dataset repeated epoch after epoch; arrays are shuffled with a seed kept
    in the backup), and each backup stores the weights, the optimizer state
    (its step count included), the random state of dropout and the
    position in the stream. On restart,
    `fit` restores them, skips the batches already trained on, finishes the
    interrupted epoch and goes on. Skipping re-reads those batches through
    the input pipeline without training on them, which costs a fraction of
    the training time they took.

    A restarted run must see the same stream: a dataset with a fixed seed
    whose order does not depend on how often it was iterated before, such
    as `keras_t2t.data.expand(..., seed=0, repeat=True)`. (One reshuffled at
    each pass draws its seeds in the order its iterators are made, which
    Keras changes after a restart on JAX and torch.) `fit` compares the
    first batch with the one recorded before the interruption and refuses
    to resume on different data. A dataset of unknown size (or endless)
    needs `steps_per_epoch`.

    Args:
        backup_dir: str. Where backups are written; used again on restart.
            Created if needed, and checked to be writable here, so that a
            bad folder fails before training rather than at the first
            backup.
        save_freq: `"epoch"` or int. Back up at each epoch end, or every
            `save_freq` batches. Defaults to `"epoch"`.
        double_checkpoint: bool. Keep the previous backup too, used if the
            latest cannot be read. Defaults to `False`.
        delete_checkpoint: bool. Delete the backups once training finished.
            Defaults to `True`.

    Example:
    ```python
    stream = keras_t2t.data.expand(
        "table.csv", vocabulary, inputs="text", batch_size=64,
        shuffle_buffer=10_000, seed=0, repeat=True,
    )
    classifier.fit(
        stream,
        epochs=10,
        steps_per_epoch=1_000,
        callbacks=[keras_t2t.callbacks.BackupAndRestore("/tmp/backup", 500)],
    )
    ```
    """

    def __init__(
        self,
        backup_dir,
        save_freq="epoch",
        double_checkpoint=False,
        delete_checkpoint=True,
    ):
        super().__init__(
            backup_dir,
            save_freq=save_freq,
            double_checkpoint=double_checkpoint,
            delete_checkpoint=delete_checkpoint,
        )
        _check_writable(self.backup_dir)
        # The training stream, set by `Teacher2TaskClassifier.fit`; `None`
        # when used with another model's `fit` (Keras's behaviour).
        self._stream = None
        # Random states read from a backup, set when training starts.
        self._seed_states = None
        self._torch_random_state = None

    # --- Used by `Teacher2TaskClassifier.fit` ---

    @staticmethod
    def among(callbacks):
        """The first `BackupAndRestore` in `callbacks`, or `None`."""
        return next(
            (c for c in callbacks or () if isinstance(c, BackupAndRestore)),
            None,
        )

    def fit(
        self,
        model,
        fit,
        x,
        y=None,
        shuffle=True,
        epochs=1,
        initial_epoch=0,
        steps_per_epoch=None,
        batch_size=None,
        **kwargs,
    ):
        """Runs `fit` (the model's Keras `fit`) so that a restart resumes.

        The one entry point for `Teacher2TaskClassifier.fit`: restores the
        latest backup, turns `x` into one endless stream of batches (a
        tuple of arrays, shuffled per epoch from a seed kept in the backup,
        or a batched `tf.data.Dataset`, repeated), checks that it is the
        stream the interrupted run trained on, skips what was trained and
        ends the interrupted epoch where it would have ended. `kwargs` go
        to `fit` unchanged.
        """
        if y is not None:
            raise ValueError(
                "`BackupAndRestore` resumes training on arrays or on a "
                "batched `tf.data.Dataset` of (x, y) batches; `y` goes "
                f"inside the dataset. Received x: {type(x).__name__}"
            )
        metadata = self.restore(model)
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
        self.start_stream(
            next(iter(stream.take(1))),
            shuffle_seed=seed,
            start_step=start_step,
            metadata=metadata,
        )
        # Batches of the stream trained on so far, in this `fit`.
        position = step - start_step
        epoch = initial_epoch + position // steps_per_epoch
        history = keras.callbacks.History()  # Nothing left to train.
        history.set_model(model)
        history.on_train_begin()
        if epoch < epochs:
            done = position % steps_per_epoch
            if done:
                # Placed first, it ends the interrupted epoch where it
                # would have ended.
                kwargs["callbacks"] = [
                    _EndFirstEpochEarly(steps_per_epoch - done)
                ] + list(kwargs["callbacks"])
            history = fit(
                stream.skip(position),
                initial_epoch=epoch,
                epochs=epochs,
                steps_per_epoch=steps_per_epoch,
                **kwargs,
            )
        self.finish()
        return history

    def restore(self, model):
        """Restores weights and optimizer from the latest backup.

        Returns the backup's metadata (stream position, seeds), `{}` when
        there is no backup.
        """
        self.set_model(model)
        if not tf.io.gfile.exists(self._weights_path):
            return {}
        try:
            self._load_checked()
        except OSError:
            # An unreadable backup: fall back on the previous one, if kept.
            if not tf.io.gfile.exists(self._prev_weights_path):
                raise
            for previous, path in (
                (self._prev_weights_path, self._weights_path),
                (
                    self._prev_training_metadata_path,
                    self._training_metadata_path,
                ),
            ):
                tf.io.gfile.copy(previous, path, overwrite=True)
            self._load_checked()
        # `fit` works out the epoch from the stream position itself.
        model._initial_epoch = None
        with tf.io.gfile.GFile(self._training_metadata_path, "r") as f:
            metadata = json.loads(f.read())
        # Random states (dropout's) are not weights; they resume too, set
        # when training starts since `fit` may draw while building.
        self._seed_states = metadata.get("random_states")
        self._torch_random_state = metadata.get("torch_random_state")
        return metadata

    def _load_checked(self):
        """Loads the latest backup; one of another architecture is refused.

        Backups record the shapes of the model's weights; where they differ
        from this model's (or Keras cannot load the weights), the backup was
        written by another model: a `ValueError` names the folder and the
        fix. (Keras would load a backup of a deeper model into a shallower
        one without a word, and say of most others only that "objects could
        not be loaded".)
        """
        saved = None
        if tf.io.gfile.exists(self._training_metadata_path):
            with tf.io.gfile.GFile(self._training_metadata_path, "r") as f:
                saved = json.loads(f.read()).get("weight_shapes")
        shapes = _weight_shapes(self.model)
        if saved is not None and saved != shapes:
            if len(saved) != len(shapes):
                detail = (
                    f"it holds {len(saved)} weights, this model has "
                    f"{len(shapes)}"
                )
            else:
                index = next(
                    i for i in range(len(saved)) if saved[i] != shapes[i]
                )
                detail = (
                    f"weight {self.model.weights[index].path!r} is "
                    f"{tuple(saved[index])} there, {tuple(shapes[index])} "
                    "in this model"
                )
            raise ValueError(self._stale_message(detail))
        try:
            self._load_model()
        except ValueError as error:
            detail = str(error).strip().splitlines()[0]
            raise ValueError(self._stale_message(f"Keras: {detail}")) from error

    def _stale_message(self, detail):
        return (
            f"Cannot resume from the backup in {self.backup_dir!r}: it was "
            f"written by a model of another architecture ({detail}). Delete "
            "that folder to train this model from the start, or pass "
            "another `backup_dir`."
        )

    def start_stream(self, first_batch, shuffle_seed, start_step, metadata):
        """Records the stream; checks it against the backed-up one."""
        fingerprint = _fingerprint(first_batch)
        if metadata and metadata.get("data_fingerprint") != fingerprint:
            raise ValueError(
                f"Cannot resume from the backup in {self.backup_dir!r}: the "
                "training data is not the stream the interrupted run trained "
                "on (its first batch differs). Fix the dataset's shuffle seed "
                "(e.g. `keras_t2t.data.expand(..., seed=0)`) so a restart "
                "sees the same batches, or delete the backup to start over."
            )
        self._stream = {
            "data_fingerprint": fingerprint,
            "shuffle_seed": shuffle_seed,
            "start_step": int(start_step),
        }

    def finish(self):
        """Called once the whole `fit` is done: deletes the backups."""
        self._stream = None
        if (
            self.delete_checkpoint
            and _writes_backups(self.model)
            and tf.io.gfile.exists(self.backup_dir)
        ):
            tf.io.gfile.rmtree(self.backup_dir)

    # --- Callback hooks ---

    def on_train_begin(self, logs=None):
        if self._stream is None:
            return super().on_train_begin(logs)
        if self._seed_states is not None:
            for variable, state in zip(
                _random_states(self.model), self._seed_states, strict=True
            ):
                variable.assign(np.asarray(state, variable.dtype))
            self._seed_states = None

    def on_train_batch_begin(self, batch, logs=None):
        # Torch's generator is set just before the first step: Keras draws
        # from it between `on_train_begin` and the first batch.
        if self._torch_random_state is not None:
            import torch

            state = torch.tensor(self._torch_random_state, dtype=torch.uint8)
            torch.set_rng_state(state)
            self._torch_random_state = None

    def on_train_end(self, logs=None):
        # `fit` calls `finish()` instead: it also runs when nothing was
        # left to train, and no `fit` of Keras's ran.
        if self._stream is None:
            super().on_train_end(logs)

    def _save_model(self):
        if self._stream is None:
            return super()._save_model()
        if not _writes_backups(self.model):
            # Several processes train one model (a multi-host run) and one
            # writes the shared folder. The others save too, into a scratch
            # folder dropped at once: on JAX, reading the weights may take
            # every process (one saving alone waited for the others).
            with tempfile.TemporaryDirectory() as scratch:
                self._write_backup(scratch)
            return
        self._write_backup(self.backup_dir)

    def _write_backup(self, directory):
        weights_path = os.path.join(directory, "latest.weights.h5")
        metadata_path = os.path.join(directory, "training_metadata.json")
        tf.io.gfile.makedirs(directory)
        for path in (weights_path, metadata_path):
            # Keras's names for the previous backup: `<name>.bkp`.
            if self.double_checkpoint and tf.io.gfile.exists(path):
                tf.io.gfile.copy(path, f"{path}.bkp", overwrite=True)
        # Written aside then renamed, so a kill while saving leaves the
        # previous backup whole.
        step = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
        partial = os.path.join(directory, "partial.weights.h5")
        self.model.save_weights(partial, overwrite=True)
        metadata = dict(
            self._stream,
            epoch=self._current_epoch,
            batch=self._last_batch_seen,
            step=step,
            weight_shapes=_weight_shapes(self.model),
            random_states=[
                np.asarray(variable).tolist()
                for variable in _random_states(self.model)
            ],
            torch_random_state=_torch_random_state(),
        )
        partial_metadata = metadata_path + ".partial"
        with tf.io.gfile.GFile(partial_metadata, "w") as f:
            f.write(json.dumps(metadata))
        tf.io.gfile.rename(partial, weights_path, overwrite=True)
        tf.io.gfile.rename(partial_metadata, metadata_path, overwrite=True)

    def get_config(self):
        return {
            "backup_dir": self.backup_dir,
            "save_freq": self.save_freq,
            "double_checkpoint": self.double_checkpoint,
            "delete_checkpoint": self.delete_checkpoint,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _writes_backups(model):
    """Whether this process writes backups: one process per cluster.

    The chief of a `tf.distribute` multi-worker strategy; process 0 of a
    multi-process JAX run; otherwise the one process.
    """
    if keras.backend.backend() == "tensorflow":
        return bool(model.distribute_strategy.extended.should_checkpoint)
    if keras.backend.backend() == "jax":
        import jax

        return jax.process_index() == 0
    return True


def _weight_shapes(model):
    return [[int(size) for size in weight.shape] for weight in model.weights]


def _random_states(model):
    """The states of the model's seed generators (e.g. dropout's)."""
    return [
        variable
        for variable in model.variables
        if variable.path.endswith("seed_generator_state")
    ]


def _torch_random_state():
    # On torch, Keras's unseeded dropout draws from torch's global generator.
    if keras.backend.backend() != "torch":
        return None
    import torch

    return torch.get_rng_state().tolist()


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


def _check_writable(backup_dir):
    """Raises unless a file can be written in `backup_dir` (made if needed)."""
    probe = os.path.join(backup_dir, f".write_probe_{os.getpid()}")
    try:
        tf.io.gfile.makedirs(backup_dir)
        with tf.io.gfile.GFile(probe, "w") as file:
            file.write("")
        tf.io.gfile.remove(probe)
    except (OSError, tf.errors.OpError) as error:
        raise ValueError(
            f"`backup_dir` {backup_dir!r} is not a folder this process can "
            f"write ({type(error).__name__}: {error}); backups would fail "
            "at the first save, after training started. Pass a writable "
            "folder."
        ) from None
