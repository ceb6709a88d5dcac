"""`BackupAndRestore` under faults: interrupted writes, a failing disk, two
trainings on one folder. (Processes killed at random points, and a real
full disk, are in tests/test_fault_injection.py, a `large` test.)"""

import errno
import json
import os
import re
import socket
import subprocess

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_t2t
from tests.test_case import SMALLEST
from tests.test_case import TestCase
from tests.test_case import tiny_backbone
from tests.test_case import tiny_classifier


def dataset():
    x = {
        "features": np.random.default_rng(0).random((40, 3, 2), "float32"),
        "teacher_id": np.zeros((40,), "int32"),
    }
    y = np.random.default_rng(1).random((40, 1), "float32")
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(8)  # 5 batches.


def fit(backup_dir, epochs=1, callbacks=(), **options):
    """Fits a small classifier with a backup every 2 batches; its step."""
    keras.utils.set_random_seed(0)
    backbone = tiny_backbone(num_teachers=1, feature_dim=2, **SMALLEST)
    classifier = tiny_classifier(backbone)
    classifier.compile()
    backup = keras_t2t.callbacks.BackupAndRestore(
        backup_dir, save_freq=2, **options
    )
    classifier.fit(
        dataset(),
        epochs=epochs,
        callbacks=[backup, *callbacks],
        verbose=0,
    )
    return int(keras.ops.convert_to_numpy(classifier.optimizer.iterations))


def metadata(backup_dir):
    with open(os.path.join(backup_dir, "training_metadata.json")) as f:
        return json.load(f)


class Fail(keras.callbacks.Callback):
    """Raises after `step`, as a crash would end training."""

    def __init__(self, step):
        super().__init__()
        self.step = step

    def on_train_batch_end(self, batch, logs=None):
        step = keras.ops.convert_to_numpy(self.model.optimizer.iterations)
        if step == self.step:
            raise KeyboardInterrupt


class BackupFaultsTest(TestCase):
    def setUp(self):
        super().setUp()
        self.backup_dir = os.path.join(self.get_temp_dir(), "backup")

    def test_a_write_stopped_between_its_two_renames_is_finished(self):
        # Stopped (KeyboardInterrupt) after step 3: the backup of step 2.
        with pytest.raises(KeyboardInterrupt):
            fit(self.backup_dir, callbacks=[Fail(3)])
        # The next backup (step 4) stops after its first rename (of the
        # metadata), before its weights are renamed, as a process killed
        # there would.
        rename = tf.io.gfile.rename

        def rename_or_stop(source, target, overwrite=False):
            weights = target.endswith("latest.weights.h5")
            if weights and tf.io.gfile.exists(source):
                raise KeyboardInterrupt
            return rename(source, target, overwrite=overwrite)

        tf.io.gfile.rename = rename_or_stop
        try:
            with pytest.raises(KeyboardInterrupt):
                fit(self.backup_dir)
        finally:
            tf.io.gfile.rename = rename
        self.assertEqual(metadata(self.backup_dir)["step"], 4)
        # Its weights are whole, beside the older ones: the next start
        # renames them into place and resumes at step 4 (restored steps
        # of weights and metadata alike), then trains the 5th.
        steps = []

        class Restored(keras.callbacks.Callback):
            def on_train_begin(self, logs=None):
                step = self.model.optimizer.iterations
                steps.append(int(keras.ops.convert_to_numpy(step)))

        step = fit(
            self.backup_dir, callbacks=[Restored()], delete_checkpoint=False
        )
        self.assertEqual((steps, step), ([4], 5))
        self.assertEqual(
            sorted(os.listdir(self.backup_dir)),
            ["latest.weights.h5", "training_metadata.json"],
        )

    def test_a_failed_write_names_the_folder_and_keeps_the_last_backup(self):
        original = keras.Model.save_weights
        written = []

        def save_weights(model, filepath, *args, **kwargs):
            written.append(filepath)
            if len(written) == 2:
                raise OSError(errno.ENOSPC, "No space left on device")
            return original(model, filepath, *args, **kwargs)

        keras.Model.save_weights = save_weights
        try:
            with pytest.raises(
                OSError,
                match=rf"^Could not write a backup in "
                rf"{re.escape(repr(self.backup_dir))} \(OSError: \[Errno "
                rf"{errno.ENOSPC}\] No space left on device\); the previous "
                r"backup there is kept\. Make room in that folder \(or pass "
                r"another `backup_dir`\) and run again to resume from it\.$",
            ):
                fit(self.backup_dir)
        finally:
            keras.Model.save_weights = original
        # The backup of step 2, and no lock: training can resume.
        self.assertEqual(metadata(self.backup_dir)["step"], 2)
        self.assertEqual(
            sorted(os.listdir(self.backup_dir)),
            ["latest.weights.h5", "training_metadata.json"],
        )
        self.assertEqual(fit(self.backup_dir), 5)

    def test_a_folder_in_use_by_a_live_process_is_refused(self):
        # Another training's lock: a live process of this host.
        other = subprocess.Popen(["sleep", "600"])
        self.addCleanup(other.wait)
        self.addCleanup(other.kill)
        os.makedirs(self.backup_dir)
        lock = os.path.join(self.backup_dir, "backup.lock")
        host = socket.gethostname()
        with open(lock, "w") as f:
            json.dump({"pid": other.pid, "host": host, "since": "now"}, f)
        with pytest.raises(
            ValueError,
            match=rf"^The backup folder {re.escape(repr(self.backup_dir))} "
            rf"is in use: process {other.pid} on host {re.escape(repr(host))} "
            r"trains with it \(since now; lock file .*backup\.lock'\)\. "
            r"Two trainings on one folder would overwrite each other's "
            r"backups: pass another `backup_dir`, or wait until that "
            r"training ends \(delete the lock file only if that process is "
            r"gone\)\.$",
        ):
            fit(self.backup_dir)
        self.assertEqual(os.listdir(self.backup_dir), ["backup.lock"])
        # Gone, it leaves a stale lock: taken over.
        other.kill()
        other.wait()
        self.assertEqual(fit(self.backup_dir, delete_checkpoint=False), 5)
        # Released when training ends.
        self.assertNotIn("backup.lock", os.listdir(self.backup_dir))

    def test_a_lock_on_another_host_is_refused(self):
        os.makedirs(self.backup_dir)
        with open(os.path.join(self.backup_dir, "backup.lock"), "w") as f:
            json.dump({"pid": 1, "host": "elsewhere", "since": "now"}, f)
        with pytest.raises(ValueError, match="process 1 on host 'elsewhere'"):
            fit(self.backup_dir)

    def test_the_lock_is_held_while_training_and_kept_after_a_crash(self):
        lock = os.path.join(self.backup_dir, "backup.lock")
        owners = []

        class Owner(keras.callbacks.Callback):
            def on_train_batch_end(self, batch, logs=None):
                with open(lock) as f:
                    owners.append(json.load(f)["pid"])

        with pytest.raises(KeyboardInterrupt):
            fit(self.backup_dir, callbacks=[Owner(), Fail(3)])
        self.assertEqual(owners, [os.getpid()] * 3)
        # A `fit` that crashed leaves its lock to this process, which
        # resumes (a process that died leaves it stale).
        self.assertTrue(os.path.exists(lock))
        self.assertEqual(fit(self.backup_dir), 5)
        self.assertFalse(os.path.exists(self.backup_dir))

    def test_keras_fit_backs_up_and_locks_too(self):
        # Another model's `fit`: Keras's resume (epochs), whole backups.
        def keras_fit(epochs, fail=False):
            keras.utils.set_random_seed(0)
            model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
            model.compile(optimizer="sgd", loss="mse")
            callbacks = [
                keras_t2t.callbacks.BackupAndRestore(
                    self.backup_dir, delete_checkpoint=False
                )
            ]
            if fail:
                callbacks.append(Fail(4))
            x = np.random.default_rng(0).random((8, 2), "float32")
            return model.fit(
                x,
                x[:, :1],
                batch_size=4,
                epochs=epochs,
                callbacks=callbacks,
                verbose=0,
            )

        with pytest.raises(KeyboardInterrupt):
            keras_fit(3, fail=True)  # Backed up after epoch 0 (of 0, 1).
        self.assertEqual(metadata(self.backup_dir)["epoch"], 1)
        history = keras_fit(3)
        self.assertEqual(history.epoch, [1, 2])
        self.assertEqual(
            sorted(os.listdir(self.backup_dir)),
            ["latest.weights.h5", "training_metadata.json"],
        )
