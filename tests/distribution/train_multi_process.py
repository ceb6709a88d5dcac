"""One worker of a multi-process training run (or the one-process reference).

Started by `launcher.launch` (see `test_multi_process.py`):
`python train_multi_process.py OUTPUT_DIR TASKS`, with the cluster in the
environment: `KERAS_DISTRIBUTION_*` on JAX (2 CPU devices per process,
gloo collectives), `TF_CONFIG` on TensorFlow (`MultiWorkerMirroredStrategy`,
one CPU device per worker); neither for the reference run (one process,
one device). `WORKER_RANK` is this worker's rank. TASKS, comma-separated,
run in order, each saving `OUTPUT_DIR/TASK-RANK.npz`:

- `data_parallel`: `DataParallel` (JAX) or the strategy (TensorFlow) on an
  `expand` stream with the global batch, each process reading its share
  (`auto_shard_dataset`), backed up to `OUTPUT_DIR/backup` by
  `BackupAndRestore`; `KILL_RANK` and `KILL_AT_STEP` make that worker
  SIGKILL itself after that step.
- `model_parallel` (JAX): a 2x2 `ModelParallel` mesh, same stream.
- `per_host`: each process its own rows (its own files on a cluster),
  `auto_shard_dataset=False` and the per-host batch. The reference trains
  on the global batches those make: host 0's examples, then host 1's.
- `short_batch`: the stream without `drop_remainder`; saves the error.
"""

import os
import signal
import sys
import time

START = time.monotonic()
BACKEND = os.environ["KERAS_BACKEND"]
RANK = int(os.environ.get("WORKER_RANK", "0"))
DISTRIBUTED = (
    "KERAS_DISTRIBUTION_NUM_PROCESSES" in os.environ
    or "TF_CONFIG" in os.environ
)
STRATEGY = None
# The launcher's slowdown (`launcher.slowdown`): the waits below are
# bounds on a quiet machine, stretched by it.
SLOWDOWN = float(os.environ.get("KERAS_T2T_SLOWDOWN", "1"))
if BACKEND == "jax" and DISTRIBUTED:
    import jax

    jax.config.update("jax_num_cpu_devices", 2)
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    # As `keras.distribution.initialize()` does, with bounded waits: a
    # missing peer fails this process after seconds, not minutes.
    jax.distributed.initialize(
        coordinator_address=os.environ["KERAS_DISTRIBUTION_JOB_ADDRESSES"],
        num_processes=int(os.environ["KERAS_DISTRIBUTION_NUM_PROCESSES"]),
        process_id=int(os.environ["KERAS_DISTRIBUTION_PROCESS_ID"]),
        initialization_timeout=int(120 * SLOWDOWN),
        heartbeat_timeout_seconds=int(10 * SLOWDOWN),
    )
if BACKEND == "tensorflow" and DISTRIBUTED:
    import tensorflow as tf

    # Before any other TensorFlow op: it starts the cluster's server.
    STRATEGY = tf.distribute.MultiWorkerMirroredStrategy(
        communication_options=tf.distribute.experimental.CommunicationOptions(
            timeout_seconds=int(60 * SLOWDOWN)
        )
    )

import contextlib  # noqa: E402
import json  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_t2t  # noqa: E402
from keras_t2t.models import _device_padding  # noqa: E402
from tests.test_case import tiny_backbone  # noqa: E402
from tests.test_case import tiny_classifier  # noqa: E402

OUTPUT_DIR = sys.argv[1]
TASKS = sys.argv[2].split(",")
NUM_PROCESSES = 2
GLOBAL_BATCH = 16
STEPS_PER_EPOCH = 5
EPOCHS = 2
SAVE_FREQ = 3
VOCABULARY = keras_t2t.TeacherVocabulary(["a", "b", "c"])


def table(rows=None):
    """The synthetic table as `expand` reads it (a dict of columns)."""
    data = keras_t2t.datasets.make_synthetic_teachers(
        num_rows=64, num_teachers=3, feature_dim=4, seed=5
    )
    # A feature model: what `export_saved_model` serves without a tokenizer.
    source = dict(
        features=data["inputs"]["features"], ground_truth=data["labels"][:, 0]
    )
    for k, name in enumerate(VOCABULARY.teachers):
        source[name] = data["teacher_scores"][:, k, 0]
    if rows is not None:
        source = {name: column[rows] for name, column in source.items()}
    return source


def stream(source, batch_size, drop_remainder=True):
    return keras_t2t.data.expand(
        source,
        VOCABULARY,
        inputs="features",
        shuffle_buffer=64,
        seed=3,
        batch_size=batch_size,
        drop_remainder=drop_remainder,
        repeat=True,  # Pass k reshuffled from (3, k): resumable.
        task_layout="per_example",
    )


def host_rows(rank):
    return np.arange(64)[rank::NUM_PROCESSES]


def per_host_reference():
    """The global batches of the per-host run, made in one process."""
    half = GLOBAL_BATCH // NUM_PROCESSES
    hosts = [stream(table(host_rows(r)), half) for r in range(NUM_PROCESSES)]
    return tf.data.Dataset.zip(tuple(hosts)).map(
        lambda *batches: tf.nest.map_structure(
            lambda *parts: tf.concat(parts, 0), *batches
        )
    )


def distribution(task):
    if not DISTRIBUTED:
        return contextlib.nullcontext()
    if BACKEND == "tensorflow":
        return STRATEGY.scope()
    devices = keras.distribution.list_devices()
    assert len(devices) == 4, devices
    if task == "model_parallel":
        mesh = keras.distribution.DeviceMesh(
            (2, 2), axis_names=("batch", "model"), devices=devices
        )
        layout_map = keras_t2t.models.Teacher2TaskBackbone.get_layout_map(mesh)
        return keras.distribution.ModelParallel(
            layout_map=layout_map, batch_dim_name="batch"
        ).scope()
    return keras.distribution.DataParallel(
        devices=devices, auto_shard_dataset=task != "per_host"
    ).scope()


def build_model():
    keras.utils.set_random_seed(11)
    classifier = tiny_classifier(
        tiny_backbone(feature_dim=4, num_layers=1),
        teacher_vocabulary=VOCABULARY,
    )
    if BACKEND == "tensorflow":
        # SGD, as in the one-host Mirrored test: Keras's Adam on TensorFlow
        # updates a sparse gradient differently when the batch is split.
        optimizer = keras.optimizers.SGD(0.1, momentum=0.9)
    else:
        optimizer = keras.optimizers.Adam(3e-3)
    classifier.compile(optimizer=optimizer)
    return classifier


def gathered_weights(classifier):
    """Every weight in full, on every process (a collective on JAX)."""
    if BACKEND == "jax" and DISTRIBUTED:
        from jax.experimental import multihost_utils

        values = [
            multihost_utils.process_allgather(v.value, tiled=True)
            for v in classifier.weights
        ]
    else:
        values = classifier.get_weights()
    return np.concatenate([np.ravel(np.asarray(v)) for v in values])


class KillAtStep(keras.callbacks.Callback):
    """SIGKILLs this process after a training step, as in a crash."""

    def __init__(self, step):
        super().__init__()
        self.step = step

    def on_train_batch_end(self, batch, logs=None):
        step = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
        if step == self.step:
            os.kill(os.getpid(), signal.SIGKILL)


def train(task):
    with distribution(task):
        classifier = build_model()
        # Count the backups this process writes into the shared folder.
        shared = os.path.join(OUTPUT_DIR, "backup")
        saves = []
        save_weights = classifier.save_weights

        def counting_save_weights(path, *args, **kwargs):
            saves.extend([1] if path.startswith(shared) else [])
            return save_weights(path, *args, **kwargs)

        classifier.save_weights = counting_save_weights
        callbacks = []
        if task == "per_host":
            if DISTRIBUTED:
                data = stream(
                    table(host_rows(RANK)), GLOBAL_BATCH // NUM_PROCESSES
                )
            else:
                data = per_host_reference()
        else:
            data = stream(table(), GLOBAL_BATCH, task != "short_batch")
        if task == "data_parallel":
            backup = keras_t2t.callbacks.BackupAndRestore(
                shared, save_freq=SAVE_FREQ
            )
            callbacks.append(backup)
            if int(os.environ.get("KILL_RANK", "-1")) == RANK:
                callbacks.append(KillAtStep(int(os.environ["KILL_AT_STEP"])))
        history = classifier.fit(
            data,
            epochs=EPOCHS,
            steps_per_epoch=STEPS_PER_EPOCH,
            callbacks=callbacks,
            verbose=0,
        )
        return dict(
            weights=gathered_weights(classifier),
            # The test rebuilds this model, to predict and export with
            # these weights in one process.
            config=json.dumps(keras.saving.serialize_keras_object(classifier)),
            shapes=json.dumps([list(v.shape) for v in classifier.weights]),
            loss=np.array(history.history["loss"]),
            steps=int(
                keras.ops.convert_to_numpy(classifier.optimizer.iterations)
            ),
            shards=_device_padding.batch_shards(classifier),
            saves=len(saves),
            backup_left=os.path.exists(os.path.join(OUTPUT_DIR, "backup")),
        )


def main():
    for task in TASKS:
        begin = time.monotonic()
        if task == "short_batch":
            try:
                result = train(task)
                result = dict(error="")
            except ValueError as error:
                result = dict(error=str(error))
        else:
            result = train(task)
        result["seconds"] = time.monotonic() - begin
        result["startup_seconds"] = begin - START if task == TASKS[0] else 0
        np.savez(os.path.join(OUTPUT_DIR, f"{task}-{RANK}.npz"), **result)
        print(f"worker {RANK}: {task} done", flush=True)


if __name__ == "__main__":
    main()
