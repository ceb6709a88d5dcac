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
        # What identifies the training stream (set by
        # `Teacher2TaskClassifier.fit`, saved with every backup); `None`
        # when used with another model's `fit` (Keras's behaviour).
        self.stream = None
        # Random states read from a backup, set when training starts.
        self._seed_states = None
        self._torch_random_state = None

    # Found by `Teacher2TaskClassifier.fit`, which then calls `restore`
    # and sets `stream` (see `keras_t2t.models._resume`).
    resumes_mid_epoch = True

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

    # --- Callback hooks ---

    def on_train_begin(self, logs=None):
        if self.stream is None:
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
        if self.stream is None:
            return super().on_train_end(logs)
        # Training is done: the backups are deleted (by the one process
        # that writes them).
        self.stream = None
        if (
            self.delete_checkpoint
            and _writes_backups(self.model)
            and tf.io.gfile.exists(self.backup_dir)
        ):
            tf.io.gfile.rmtree(self.backup_dir)

    def _save_model(self):
        if self.stream is None:
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
            self.stream,
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
