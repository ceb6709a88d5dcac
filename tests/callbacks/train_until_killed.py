"""Trains with `BackupAndRestore`, optionally killing itself mid-epoch.

`python train_until_killed.py BACKUP_DIR OUTPUT.npz KILL_AT_STEP`: trains a
tiny classifier for 3 epochs of 11 batches, backing up every 5 batches
(`DROPOUT` sets the dropout rate, 0.1 by default; `SOURCE=expand` trains
on a shuffled `keras_t2t.data.expand` dataset instead of arrays,
`SOURCE=sparse` a sparse model, the default, on a sparse `expand`
stream). With
KILL_AT_STEP > 0 the process sends itself SIGKILL after that training step
(no clean-up runs, as in a crash). Run again with the same BACKUP_DIR, it
resumes. Saves the weights and the steps this process trained.
"""

import os
import signal
import sys

import keras
import numpy as np

import keras_t2t
from tests.test_case import tiny_backbone
from tests.test_case import tiny_classifier

BACKUP_DIR, OUTPUT, KILL_AT_STEP = sys.argv[1], sys.argv[2], int(sys.argv[3])
SOURCE = os.environ.get("SOURCE", "arrays")


class RecordSteps(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.steps = []

    def on_train_batch_end(self, batch, logs=None):
        step = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
        self.steps.append(step)
        if os.environ.get("DUMP"):
            np.save(
                f"{os.environ['DUMP']}_{step}.npy",
                np.concatenate(
                    [np.ravel(w) for w in self.model.get_weights()]
                    + [np.ravel(v) for v in self.model.optimizer.variables]
                ),
            )
        if step == KILL_AT_STEP:
            os.kill(os.getpid(), signal.SIGKILL)


def training_data():
    """~166 examples as arrays, or as a shuffled `expand` stream."""
    table = keras_t2t.datasets.make_synthetic_teachers(
        num_rows=64, num_teachers=3, vocabulary_size=50, seed=5
    )
    if SOURCE == "arrays":
        x, y, weight = keras_t2t.data.expand_arrays(
            table["inputs"],
            table["labels"],
            table["teacher_scores"],
            task_layout="per_example",
        )
        return dict(x=x, y=y, sample_weight=weight, batch_size=16)
    vocabulary = keras_t2t.TeacherVocabulary(["a", "b", "c"])
    source = dict(table["inputs"], ground_truth=table["labels"][:, 0])
    for k, name in enumerate(vocabulary.teachers):
        source[name] = table["teacher_scores"][:, k, 0]
    dataset = keras_t2t.data.expand(
        source,
        vocabulary,
        inputs=["token_ids", "padding_mask"],
        task_layout="sparse" if SOURCE == "sparse" else "per_example",
        shuffle_buffer=64,
        seed=3,
        batch_size=16,
        repeat=True,  # Pass k reshuffled with seeds from (3, k).
    )
    return dict(x=dataset, steps_per_epoch=11)


def main():
    data = training_data()
    keras.utils.set_random_seed(11)
    backbone = tiny_backbone(
        vocabulary_size=50,
        num_layers=1,
        dropout=float(os.environ.get("DROPOUT", "0.1")),
        task_layout="sparse" if SOURCE == "sparse" else "per_example",
    )
    classifier = tiny_classifier(backbone)
    classifier.compile()
    record = RecordSteps()
    history = classifier.fit(
        **data,  # 11 batches per epoch, the last one short.
        epochs=3,
        verbose=0,
        callbacks=[
            keras_t2t.callbacks.BackupAndRestore(BACKUP_DIR, save_freq=5),
            record,
        ],
    )
    np.savez(
        OUTPUT,
        weights=np.concatenate([np.ravel(w) for w in classifier.get_weights()]),
        steps=np.array(record.steps),
        epochs=np.array(history.epoch),
        backup_left=os.path.exists(BACKUP_DIR),
    )


if __name__ == "__main__":
    main()
