import json
import os
import secrets
import socket
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf

from keras_t2t import _arguments
from keras_t2t.models.model_file import process_is_alive


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

    A backup is whole or absent: a process killed while backing up (or a
    full disk) leaves the previous backup, which the next run resumes
    from. The weights are written aside, then the metadata, which names
    them, is renamed into place, then the weights; a run killed between
    the two renames is finished by the next start. One training at a time
    uses a folder: a second one is refused, naming the process that holds
    `backup.lock` there (taken when training starts, released when it
    ends; a lock whose process died on this host is taken over).

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

    @_arguments.suggests_keywords
    def __init__(
        self,
        backup_dir,
        save_freq="epoch",
        double_checkpoint=False,
        delete_checkpoint=True,
    ):
        if save_freq != "epoch":
            _arguments.integer("save_freq", save_freq, 1)
        _arguments.boolean("double_checkpoint", double_checkpoint)
        _arguments.boolean("delete_checkpoint", delete_checkpoint)
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
        # Whether this callback holds `backup.lock` in `backup_dir`.
        self._holds_lock = False

    # Found by `Teacher2TaskClassifier.fit`, which then calls `restore`
    # and sets `stream` (see `keras_t2t.models._resume`).
    resumes_mid_epoch = True

    def restore(self, model):
        """Restores weights and optimizer from the latest backup.

        Returns the backup's metadata (stream position, seeds), `{}` when
        there is no backup.
        """
        self.set_model(model)
        self._lock()
        try:
            return self._restore()
        except BaseException:
            self._unlock()
            raise

    def _restore(self):
        self._recover()
        if not tf.io.gfile.exists(self._weights_path):
            return {}
        try:
            self._load_checked()
        except OSError:
            # An unreadable backup: fall back on the previous one, if kept.
            if not tf.io.gfile.exists(self._prev_weights_path):
                raise
            previous = _read_json(self._prev_training_metadata_path)
            previous["weights_token"] = secrets.token_hex(8)
            pending = _pending_path(self.backup_dir, previous)
            tf.io.gfile.copy(self._prev_weights_path, pending, overwrite=True)
            _commit(
                self._weights_path,
                self._training_metadata_path,
                pending,
                previous,
            )
            self._load_checked()
        # `fit` works out the epoch from the stream position itself.
        self.model._initial_epoch = None
        metadata = _read_json(self._training_metadata_path)
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
            # Keras's own resume (any model's `fit`), on whole backups.
            self._lock()
            try:
                self._recover()
                return super().on_train_begin(logs)
            except BaseException:
                self._unlock()
                raise
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
            super().on_train_end(logs)
            self._unlock()
            return
        # Training is done: the backups are deleted (by the one process
        # that writes them).
        self.stream = None
        if (
            self.delete_checkpoint
            and _writes_backups(self.model)
            and tf.io.gfile.exists(self.backup_dir)
        ):
            tf.io.gfile.rmtree(self.backup_dir)
        self._unlock()

    def _save_model(self):
        if self.stream is None:
            # Keras's metadata, written as whole as ours.
            metadata = {
                "epoch": self._current_epoch,
                "batch": self._last_batch_seen,
            }
            return self._write_backup(self.backup_dir, metadata)
        if not _writes_backups(self.model):
            # Several processes train one model (a multi-host run) and one
            # writes the shared folder. The others save too, into a scratch
            # folder dropped at once: on JAX, reading the weights may take
            # every process (one saving alone waited for the others).
            with tempfile.TemporaryDirectory() as scratch:
                self._write_backup(scratch)
            return
        self._write_backup(self.backup_dir)

    def _write_backup(self, directory, metadata=None):
        """Writes a backup in `directory`, whole or not at all.

        `metadata` is Keras's (epoch, batch) for another model's `fit`;
        `None` records the stream position and random states.
        """
        weights_path = os.path.join(directory, "latest.weights.h5")
        metadata_path = os.path.join(directory, "training_metadata.json")
        try:
            tf.io.gfile.makedirs(directory)
            if metadata is None:
                metadata = self._stream_metadata()
            metadata["weights_token"] = secrets.token_hex(8)
            pending = _pending_path(directory, metadata)
            self.model.save_weights(pending, overwrite=True)
            if self.double_checkpoint and tf.io.gfile.exists(metadata_path):
                # The previous backup is kept whole the same way, under
                # Keras's names for it (`<name>.bkp`).
                previous = _read_json(metadata_path)
                previous["weights_token"] = secrets.token_hex(8)
                pending_previous = _pending_path(directory, previous)
                tf.io.gfile.copy(weights_path, pending_previous, overwrite=True)
                _commit(
                    f"{weights_path}.bkp",
                    f"{metadata_path}.bkp",
                    pending_previous,
                    previous,
                )
            _commit(weights_path, metadata_path, pending, metadata)
        except (OSError, RuntimeError, tf.errors.OpError) as error:
            _remove_leftovers(directory)
            # The error ends training: another may use the folder.
            self._unlock()
            if isinstance(error, OSError) and error.errno:
                # h5py's messages run to several lines of buffers.
                detail = f"[Errno {error.errno}] {os.strerror(error.errno)}"
            else:
                detail = " ".join(str(error).split())
            raise OSError(
                f"Could not write a backup in {directory!r} "
                f"({type(error).__name__}: {detail}); the previous backup "
                "there is kept. Make room in that folder (or pass another "
                "`backup_dir`) and run again to resume from it."
            ) from error
        _remove_leftovers(directory)

    def _stream_metadata(self):
        step = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
        return dict(
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

    def _recover(self):
        """Finishes the backups a kill interrupted between two renames."""
        for weights_path, metadata_path in (
            (self._weights_path, self._training_metadata_path),
            (self._prev_weights_path, self._prev_training_metadata_path),
        ):
            _finish_commit(weights_path, metadata_path)

    def _lock(self):
        """Takes the folder's lock, in the one process writing backups."""
        if self._holds_lock or not _writes_backups(self.model):
            return
        if "://" not in self.backup_dir:  # Local folders only.
            _take_lock(self.backup_dir)
        self._holds_lock = True

    def _unlock(self):
        if self._holds_lock:
            _release_lock(self.backup_dir)
            self._holds_lock = False

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


# === Whole backups ===


def _pending_path(directory, metadata):
    """Where the weights named by `metadata` wait to be renamed."""
    return os.path.join(
        directory, f"pending-{metadata['weights_token']}.weights.h5"
    )


def _commit(weights_path, metadata_path, pending, metadata):
    """Makes `pending` (whole weights) and `metadata` the backup there.

    The metadata, which names `pending` by its token, is written aside and
    renamed over the previous one: the backup is then committed. The
    weights are renamed after it; a kill between the two renames leaves
    `pending` for `_finish_commit`.
    """
    partial = f"{metadata_path}.partial"
    with tf.io.gfile.GFile(partial, "w") as f:
        f.write(json.dumps(metadata))
    tf.io.gfile.rename(partial, metadata_path, overwrite=True)
    tf.io.gfile.rename(pending, weights_path, overwrite=True)


def _finish_commit(weights_path, metadata_path):
    """Renames the weights a committed backup names, if still pending."""
    try:
        metadata = _read_json(metadata_path)
    except (OSError, ValueError, tf.errors.OpError):
        return  # None yet, or unreadable: reported when loaded.
    if not isinstance(metadata, dict) or "weights_token" not in metadata:
        return  # Written by Keras, or by an earlier version.
    pending = _pending_path(os.path.dirname(weights_path), metadata)
    try:
        tf.io.gfile.rename(pending, weights_path, overwrite=True)
    except tf.errors.NotFoundError:
        pass  # Renamed already.


def _remove_leftovers(directory):
    """Removes what interrupted writes left: weights no backup names."""
    named = set()
    for name in ("training_metadata.json", "training_metadata.json.bkp"):
        try:
            metadata = _read_json(os.path.join(directory, name))
            named.add(_pending_path(directory, metadata))
        except (OSError, ValueError, KeyError, TypeError, tf.errors.OpError):
            pass
    try:
        names = tf.io.gfile.listdir(directory)
    except tf.errors.OpError:
        return
    for name in names:
        path = os.path.join(directory, name)
        pending = name.startswith("pending-") and path not in named
        if pending or name.endswith(".partial"):
            try:
                tf.io.gfile.remove(path)
            except tf.errors.OpError:
                pass


def _read_json(path):
    with tf.io.gfile.GFile(path, "r") as f:
        return json.loads(f.read())


# === One training per folder ===

_LOCK = "backup.lock"


def _take_lock(backup_dir):
    """Creates `backup_dir/backup.lock` naming this process, or raises.

    The lock file appears whole (a hard link to a written file). One held
    by this process is kept; one whose process is gone from this host (or
    whose pid now belongs to a newer process) is taken over.
    """
    path = os.path.join(backup_dir, _LOCK)
    mine = _owner()
    os.makedirs(backup_dir, exist_ok=True)
    claim = f"{path}.{os.getpid()}.{secrets.token_hex(4)}"
    with open(claim, "w") as f:
        json.dump(mine, f)
    try:
        for _ in range(10):
            if _link(claim, path):
                return
            owner = _read_owner(path)
            if owner is None:
                continue  # Released meanwhile.
            if all(owner.get(k) == mine[k] for k in ("pid", "host", "started")):
                return  # This process's, from a `fit` that failed.
            if not _is_stale(owner):
                raise ValueError(
                    f"The backup folder {backup_dir!r} is in use: process "
                    f"{owner.get('pid')} on host {owner.get('host')!r} "
                    f"trains with it (since {owner.get('since')}; lock "
                    f"file {path!r}). Two trainings on one folder would "
                    "overwrite each other's backups: pass another "
                    "`backup_dir`, or wait until that training ends (delete "
                    "the lock file only if that process is gone)."
                )
            # Stale: moved aside (one process can), then checked to be the
            # stale lock read above, not one taken meanwhile.
            aside = f"{path}.stale.{os.getpid()}.{secrets.token_hex(4)}"
            try:
                os.rename(path, aside)
            except FileNotFoundError:
                continue
            if _read_owner(aside) != owner:
                _link(aside, path)
            os.remove(aside)
        raise ValueError(
            f"Could not take the lock {path!r}: other processes keep "
            "taking it. Pass another `backup_dir`."
        )
    finally:
        os.remove(claim)


def _release_lock(backup_dir):
    path = os.path.join(backup_dir, _LOCK)
    owner = _read_owner(path)
    if owner is not None and owner.get("pid") == os.getpid():
        if owner.get("host") == socket.gethostname():
            try:
                os.remove(path)
            except FileNotFoundError:
                pass


def _link(source, path):
    """Creates `path` as `source`'s content, unless it exists."""
    try:
        os.link(source, path)
        return True
    except FileExistsError:
        return False
    except OSError:
        pass  # No hard links on this file system.
    try:
        descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return False
    with open(source, "rb") as f, os.fdopen(descriptor, "wb") as lock:
        lock.write(f.read())
    return True


def _owner():
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": _process_start(os.getpid()),
        "since": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def _read_owner(path):
    """The lock's owner; `{}` if unreadable, `None` if there is none."""
    try:
        with open(path) as f:
            owner = json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}
    return owner if isinstance(owner, dict) else {}


def _is_stale(owner):
    """Whether the process named by a lock is gone (known on its host)."""
    if not isinstance(owner.get("pid"), int):
        return True  # Unreadable.
    if owner.get("host") != socket.gethostname():
        return False
    if not process_is_alive(owner["pid"]):
        return True
    # A pid reused by a newer process.
    started = _process_start(owner["pid"])
    return None not in (started, owner.get("started")) and (
        started != owner["started"]
    )


def _process_start(pid):
    """When process `pid` started (Linux clock ticks), `None` elsewhere."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


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
