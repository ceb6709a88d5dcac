import json
import os
import re
import signal
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_t2t
from tests.test_case import SMALLEST
from tests.test_case import TestCase
from tests.test_case import tiny_backbone
from tests.test_case import tiny_classifier

SCRIPT = os.path.join(os.path.dirname(__file__), "train_until_killed.py")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))


def start(backup_dir, output, kill_at_step=0, source="arrays"):
    """Starts `train_until_killed.py`; `finish` waits for it."""
    env = dict(os.environ, PYTHONPATH=ROOT, SOURCE=source)
    return subprocess.Popen(
        [sys.executable, SCRIPT, backup_dir, output, str(kill_at_step)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process):
    stdout, stderr = process.communicate(timeout=600)
    return subprocess.CompletedProcess(
        process.args, process.returncode, stdout, stderr
    )


def small_classifier(num_teachers=1, **architecture):
    config = {**SMALLEST, **architecture}
    backbone = tiny_backbone(num_teachers=num_teachers, feature_dim=2, **config)
    classifier = tiny_classifier(backbone)
    classifier.compile()
    return classifier


class BackupAndRestoreTest(TestCase):
    def test_killed_run_resumes_to_the_same_weights(self):
        self.run_kill_and_resume("arrays")

    @pytest.mark.skipif(
        keras.config.backend() != "tensorflow",
        reason="once, on TensorFlow: the sparse run below resumes an "
        "`expand` stream on every backend",
    )
    def test_killed_run_on_an_expand_stream_resumes_to_the_same_weights(self):
        # `expand(..., repeat=True)` reshuffles every pass from its seed.
        self.run_kill_and_resume("expand")

    def test_killed_sparse_run_resumes_to_the_same_weights(self):
        # A sparse model (the default) on a sparse `expand` stream: each
        # batch padded to its row with the most sources.
        self.run_kill_and_resume("sparse")

    def run_kill_and_resume(self, source):
        directory = self.get_temp_dir()
        backup_dir = os.path.join(directory, "backup")
        unused = os.path.join(directory, "unused")
        # The uninterrupted run and the one killed mid-way are independent:
        # they run side by side.
        full = start(unused, f"{directory}/full.npz", 0, source)
        killed = start(backup_dir, f"{directory}/killed.npz", 17, source)
        full, killed = finish(full), finish(killed)
        self.assertEqual(full.returncode, 0, full.stderr[-3000:])
        full = np.load(f"{directory}/full.npz")
        # 3 epochs of 11 batches, uninterrupted.
        self.assertEqual(full["steps"].tolist(), list(range(1, 34)))

        # Killed after step 17, mid-way through the second epoch; the last
        # backup was taken after step 15.
        self.assertEqual(killed.returncode, -signal.SIGKILL, killed.stderr)
        with open(os.path.join(backup_dir, "training_metadata.json")) as f:
            self.assertEqual(json.load(f)["step"], 15)

        resumed = finish(
            start(backup_dir, f"{directory}/resumed.npz", 0, source)
        )
        self.assertEqual(resumed.returncode, 0, resumed.stderr[-3000:])
        resumed = np.load(f"{directory}/resumed.npz")
        # Steps 16-17 are trained again (they were after the last backup),
        # nothing before is repeated and nothing after is skipped; the
        # interrupted epoch (1) ends where it would have.
        self.assertEqual(resumed["steps"].tolist(), list(range(16, 34)))
        self.assertEqual(resumed["epochs"].tolist(), [1, 2])
        self.assertAllClose(resumed["weights"], full["weights"], atol=1e-6)
        self.assertFalse(bool(resumed["backup_left"]))

    def test_resuming_on_different_data_is_an_error(self):
        x = {
            "features": np.random.rand(40, 3, 2).astype("float32"),
            "teacher_id": np.zeros((40,), "int32"),
        }
        y = np.random.rand(40, 1).astype("float32")
        backup_dir = os.path.join(self.get_temp_dir(), "backup")

        def fit(data, epochs, delete=False):
            keras.utils.set_random_seed(0)
            classifier = small_classifier()
            callback = keras_t2t.callbacks.BackupAndRestore(
                backup_dir, save_freq=2, delete_checkpoint=delete
            )
            history = classifier.fit(
                data, epochs=epochs, callbacks=[callback], verbose=0
            )
            steps = keras.ops.convert_to_numpy(classifier.optimizer.iterations)
            return history, int(steps)

        dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
        history, steps = fit(dataset, epochs=1)  # 5 batches, backups at 2, 4.
        self.assertEqual((history.epoch, steps), ([0], 5))
        # Another stream: the first batch differs.
        with self.assertRaisesRegex(ValueError, "first batch differs"):
            fit(dataset.skip(1), epochs=2)
        # The same stream resumes after step 4: the last batch of epoch 0,
        # then epoch 1.
        history, steps = fit(dataset, epochs=2, delete=True)
        self.assertEqual((history.epoch, steps), ([0, 1], 10))
        self.assertFalse(os.path.exists(backup_dir))

    def test_a_backup_of_another_architecture_is_refused(self):
        x = {"features": np.random.rand(16, 3, 2).astype("float32")}
        dataset = tf.data.Dataset.from_tensor_slices(
            (x, np.random.rand(16, 1).astype("float32"))
        ).batch(4)
        directory = self.get_temp_dir()

        def fit(backup_dir, **architecture):
            classifier = small_classifier(**architecture)
            callback = keras_t2t.callbacks.BackupAndRestore(
                backup_dir, save_freq=2, delete_checkpoint=False
            )
            classifier.fit(dataset, epochs=1, callbacks=[callback], verbose=0)

        def refused(backup_dir, detail, **architecture):
            with self.assertRaisesRegex(
                ValueError,
                rf"Cannot resume from the backup in "
                rf"{re.escape(repr(backup_dir))}: it was written by a model "
                rf"of another architecture \({detail}\)\. Delete that "
                r"folder .* or pass another `backup_dir`",
            ):
                fit(backup_dir, **architecture)
            self.assertIn("latest.weights.h5", os.listdir(backup_dir))

        deep = os.path.join(directory, "deep")
        fit(deep, num_layers=2)
        # Keras itself loads this one into the shallower model silently.
        refused(deep, r"it holds \d+ weights, this model has \d+")
        two = os.path.join(directory, "two_teachers")
        fit(two, num_teachers=2)
        refused(
            two,
            r"weight '.*teacher_embedding.*' is \(3, 4\) there, \(2, 4\) "
            "in this model",
        )
        # A backup without the recorded shapes: Keras's error, named.
        metadata_file = os.path.join(two, "training_metadata.json")
        with open(metadata_file) as file:
            metadata = json.load(file)
        del metadata["weight_shapes"]
        with open(metadata_file, "w") as file:
            json.dump(metadata, file)
        refused(two, "Keras: .*", hidden_dim=8)
        # The model it was written by resumes from it.
        fit(two, num_teachers=2)

    def test_unknown_dataset_size_needs_steps_per_epoch(self):
        classifier = small_classifier()
        x = {"features": np.random.rand(8, 3, 2).astype("float32")}
        dataset = (
            tf.data.Dataset.from_tensor_slices((x, np.ones((8, 1))))
            .filter(lambda x, y: True)
            .batch(4)
        )
        callback = keras_t2t.callbacks.BackupAndRestore(self.get_temp_dir())
        with self.assertRaisesRegex(ValueError, "pass `steps_per_epoch`"):
            classifier.fit(dataset, callbacks=[callback], verbose=0)

    def test_other_inputs_are_an_error(self):
        classifier = small_classifier()

        def batches():
            x = {"features": np.random.rand(4, 3, 2).astype("float32")}
            yield x, np.ones((4, 1), "float32")

        callback = keras_t2t.callbacks.BackupAndRestore(self.get_temp_dir())
        with self.assertRaisesRegex(ValueError, "arrays or on a batched"):
            classifier.fit(batches(), callbacks=[callback], verbose=0)

    def test_config(self):
        callback = keras_t2t.callbacks.BackupAndRestore("/tmp/b", save_freq=3)
        revived = self.run_serialization_test(callback)
        self.assertEqual(revived.save_freq, 3)


class BackupDirTest(TestCase):
    def test_an_unwritable_backup_dir_fails_at_construction(self):
        blocker = os.path.join(self.get_temp_dir(), "a_file")
        with open(blocker, "w") as file:
            file.write("not a folder")
        backup_dir = os.path.join(blocker, "backup")
        with self.assertRaisesRegex(
            ValueError,
            rf"`backup_dir` {re.escape(repr(backup_dir))} is not a folder "
            "this process can write",
        ):
            keras_t2t.callbacks.BackupAndRestore(backup_dir)

    def test_a_read_only_backup_dir_fails_at_construction(self):
        if os.geteuid() == 0:
            self.skipTest("root writes into read-only folders")
        backup_dir = self.get_temp_dir()
        os.chmod(backup_dir, 0o500)
        self.addCleanup(os.chmod, backup_dir, 0o700)
        with self.assertRaisesRegex(ValueError, "not a folder this process"):
            keras_t2t.callbacks.BackupAndRestore(backup_dir)

    def test_a_new_folder_is_made_and_left_empty(self):
        backup_dir = os.path.join(self.get_temp_dir(), "new", "backup")
        keras_t2t.callbacks.BackupAndRestore(backup_dir)
        self.assertEqual(os.listdir(backup_dir), [])
