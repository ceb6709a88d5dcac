"""Several processes on this machine stand in for several hosts.

`launcher.launch` starts 2 workers of `train_multi_process.py` on the
loopback address, on JAX each with 2 CPU devices (4 global devices, gloo
collectives); a one-process, one-device run of the same script is the
reference. On TensorFlow, `MultiWorkerMirroredStrategy` fails inside Keras's
`fit` (pinned below). One launch serves several tests (each worker
process costs seconds to import TensorFlow and JAX).

Tolerances: as in `test_distributed_training.py`, a split batch sums its
gradient in another order, and training amplifies the round-off. Measured
after the 10 steps (Adam): JAX `DataParallel` 1.0e-6 in weights, 2x2
`ModelParallel` 3.7e-7, per-host rows 1.0e-6, the two processes' weights
identical. The bounds are the one-host tests' (5e-6 in
weights on JAX, 1e-3 on TensorFlow); a lost, repeated or mis-weighted
example moves weights by ~1e-2.
"""

import json
import os
import subprocess
import sys
import time
import unittest

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_t2t
from tests.distribution import launcher
from tests.test_case import TestCase

SCRIPT = os.path.join(os.path.dirname(__file__), "train_multi_process.py")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
BACKEND = keras.backend.backend()
# Minutes of several processes importing TensorFlow and JAX: `large`.
pytestmark = pytest.mark.large
# Bounds every launch; a stuck worker fails the test, never hangs CI.
# The waits below are a quiet machine's, stretched by the load measured
# once when this module loads (`launcher.slowdown`), which the workers
# also read.
SLOWDOWN = launcher.slowdown()
TIMEOUT = float(os.environ.get("KERAS_T2T_LAUNCH_TIMEOUT", "480")) * SLOWDOWN
# 2 epochs of 5 steps, a backup every 3 steps.
STEPS = 10
BACKUPS = 3


def environment(**extra):
    env = dict(os.environ, KERAS_BACKEND=BACKEND, PYTHONPATH=ROOT, **extra)
    env[launcher.SLOWDOWN_VARIABLE] = str(SLOWDOWN)
    for name in ("XLA_FLAGS", "TF_CONFIG", "KERAS_DISTRIBUTION_NUM_PROCESSES"):
        env.pop(name, None)
    return env


def cluster(rank, ports):
    if BACKEND == "jax":
        return launcher.jax_environment(rank, 2, ports[0])
    return launcher.tf_environment(rank, ports)


def run_workers(directory, tasks, extra=None, **kwargs):
    """Launches 2 workers; returns their logs by rank."""
    os.makedirs(directory, exist_ok=True)
    return launcher.launch(
        [sys.executable, SCRIPT, directory, ",".join(tasks)],
        num_processes=2,
        env=lambda rank, ports: dict(
            environment(**(extra or {})), **cluster(rank, ports)
        ),
        timeout=TIMEOUT,
        num_ports=2,
        log_dir=directory,
        **kwargs,
    )


def load(directory, task, rank):
    return dict(np.load(os.path.join(directory, f"{task}-{rank}.npz")))


def rebuild(result):
    """The trained model, in this process, with the run's weights."""
    classifier = keras.saving.deserialize_keras_object(
        json.loads(str(result["config"]))
    )
    flat, weights = result["weights"], []
    for shape in json.loads(str(result["shapes"])):
        size = int(np.prod(shape))
        weights.append(flat[:size].reshape(shape))
        flat = flat[size:]
    classifier.set_weights(weights)
    return classifier


def probe():
    data = keras_t2t.datasets.make_synthetic_teachers(
        num_rows=12, num_teachers=3, feature_dim=4, seed=9
    )
    return {"features": data["inputs"]["features"]}


class MultiProcessTest(TestCase):
    """The shared launch: workers and the reference, at once."""

    TASKS = ()
    REFERENCE_TASKS = ()
    WEIGHTS_ATOL = None

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        import tempfile

        cls.directory = tempfile.mkdtemp(prefix="multi-process-")
        reference_dir = os.path.join(cls.directory, "reference")
        os.makedirs(reference_dir)
        start = time.monotonic()
        reference = subprocess.Popen(
            [
                sys.executable,
                SCRIPT,
                reference_dir,
                ",".join(cls.REFERENCE_TASKS),
            ],
            env=environment(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            cls.logs = run_workers(
                os.path.join(cls.directory, "workers"), cls.TASKS
            )
            log, _ = reference.communicate(timeout=TIMEOUT)
        finally:
            launcher._kill(reference)
        assert reference.returncode == 0, f"reference failed:\n{log[-4000:]}"
        cls.seconds = time.monotonic() - start
        cls.workers = os.path.join(cls.directory, "workers")
        cls.reference = reference_dir

    @classmethod
    def tearDownClass(cls):
        import shutil

        shutil.rmtree(cls.directory, ignore_errors=True)
        super().tearDownClass()

    def assertMatchesReference(self, task, reference_task, weights_atol):
        single = load(self.reference, reference_task, 0)
        first = load(self.workers, task, 0)
        second = load(self.workers, task, 1)
        self.assertEqual(int(first["steps"]), STEPS)
        self.assertLess(first["loss"][-1], first["loss"][0])
        # Both processes hold one model.
        self.assertAllEqual(first["weights"], second["weights"])
        self.assertAllClose(
            first["weights"], single["weights"], atol=weights_atol
        )
        self.assertGreater(
            np.abs(first["weights"] - single["weights"]).max(), 0
        )
        x = probe()
        self.assertAllClose(
            rebuild(first).predict(x, verbose=0),
            rebuild(single).predict(x, verbose=0),
            atol=10 * weights_atol,
        )
        return first

    def check_only_process_zero_writes_backups(self):
        first = load(self.workers, "data_parallel", 0)
        second = load(self.workers, "data_parallel", 1)
        self.assertEqual(int(first["saves"]), BACKUPS)
        self.assertEqual(int(second["saves"]), 0)
        # Deleted by process 0 once training finished.
        self.assertFalse(bool(first["backup_left"]))

    def check_killed_worker_stops_the_other_and_rerun_resumes(self):
        directory = os.path.join(self.directory, "faults")
        # Worker 1 dies (SIGKILL) after step 7, backups at steps 3 and 6;
        # worker 0 is left to notice by itself.
        logs = run_workers(
            directory,
            ["data_parallel"],
            extra={"KILL_RANK": "1", "KILL_AT_STEP": "7"},
            kill_on_failure=False,
        )
        self.assertEqual(logs[1]["returncode"], -9)
        self.assertNotEqual(logs[0]["returncode"], 0)
        waited = logs[0]["seconds"] - logs[1]["seconds"]
        print(f"worker 0 stopped {waited:.1f}s after worker 1 died")
        self.assertLess(waited, self.FAULT_SECONDS)
        print(launcher._tail(logs[0]["log"], 12))
        self.assertRegex(logs[0]["log"], self.FAULT_ERROR)
        with open(
            os.path.join(directory, "backup", "training_metadata.json")
        ) as f:
            self.assertEqual(json.load(f)["step"], 6)
        # Both workers again, the same command: they resume from step 6.
        run_workers(directory, ["data_parallel"])
        resumed = load(directory, "data_parallel", 0)
        uninterrupted = load(self.workers, "data_parallel", 0)
        self.assertEqual(int(resumed["steps"]), STEPS)
        self.assertEqual(int(resumed["saves"]), 1)  # At step 9.
        self.assertEqual(int(load(directory, "data_parallel", 1)["saves"]), 0)
        self.assertAllEqual(resumed["weights"], uninterrupted["weights"])

    def check_export_after_distributed_training(self):
        # On a cluster: gather the weights, then export from one process.
        x = probe()
        distributed = rebuild(load(self.workers, "data_parallel", 0))
        single = rebuild(load(self.reference, "data_parallel", 0))
        path = keras_t2t.export.export_saved_model(
            distributed, os.path.join(self.get_temp_dir(), "serving")
        )
        serve = tf.saved_model.load(path).signatures["serving_default"]
        served = serve(features=tf.constant(x["features"]))["confidences"]
        self.assertAllClose(served, distributed.predict(x, verbose=0))
        self.assertAllClose(
            served, single.predict(x, verbose=0), atol=10 * self.WEIGHTS_ATOL
        )


@unittest.skipIf(
    BACKEND != "jax",
    "keras.distribution runs on JAX (Keras has none for torch: no "
    "multi-process training on the torch backend)",
)
class JaxMultiProcessTest(MultiProcessTest):
    TASKS = ("data_parallel", "model_parallel", "per_host", "short_batch")
    REFERENCE_TASKS = ("data_parallel", "per_host")
    # The one-host JAX tests' bound (measured here: 1.0e-6).
    WEIGHTS_ATOL = 5e-6
    # What the survivor says, and how soon (heartbeat timeout 10 s).
    FAULT_ERROR = "detected fatal errors|another task died|[Cc]onnection"
    FAULT_SECONDS = 60 * SLOWDOWN

    def test_data_and_model_parallel_match_one_process(self):
        data_parallel = self.assertMatchesReference(
            "data_parallel", "data_parallel", self.WEIGHTS_ATOL
        )
        # 4 global devices, 2 per process: each process splits its share.
        self.assertEqual(int(data_parallel["shards"]), 2)
        model_parallel = self.assertMatchesReference(
            "model_parallel", "data_parallel", self.WEIGHTS_ATOL
        )
        self.assertEqual(int(model_parallel["shards"]), 1)

    def test_per_host_rows_match_one_process(self):
        self.assertMatchesReference("per_host", "per_host", self.WEIGHTS_ATOL)

    def test_short_last_batch_fails_clearly(self):
        for rank in (0, 1):
            error = str(load(self.workers, "short_batch", rank)["error"])
            self.assertIn("batch size of the input dataset is unknown", error)

    def test_only_process_zero_writes_backups(self):
        self.check_only_process_zero_writes_backups()

    def test_export_after_distributed_training(self):
        self.check_export_after_distributed_training()

    def test_killed_worker_stops_the_other_and_rerun_resumes(self):
        self.check_killed_worker_stops_the_other_and_rerun_resumes()


@unittest.skipIf(
    BACKEND != "tensorflow", "tf.distribute is TensorFlow's engine"
)
class TensorFlowMultiWorkerTest(TestCase):
    def test_multi_worker_fit_fails_in_keras(self):
        # Keras 3's `fit` does not take `MultiWorkerMirroredStrategy`'s
        # distributed batches (keras-team/keras#20585, #20329): the two
        # workers form the cluster and each gets its 8 of the 16 examples
        # of a batch, then `fit` tries to convert the dict of `PerReplica`
        # values to a tensor. Pinned here: once Keras takes them, this
        # fails, and the JAX tests above are the ones to mirror.
        directory = self.get_temp_dir()
        with self.assertRaises(launcher.WorkerError) as failure:
            run_workers(directory, ["data_parallel"])
        message = str(failure.exception)
        self.assertIn("PerReplica", message)
        self.assertIn("with an unsupported type (<class 'dict'>)", message)
