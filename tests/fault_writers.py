"""The writers `tests/test_fault_injection.py` kills, each in a child process.

`python -m tests.fault_writers` imports Keras and keras_t2t once, then
reads one JSON command a line on stdin and answers one JSON line:

- `{"fork": WRITER, "log": PATH, "args": {...}}` starts WRITER(**args) in
  a forked child and answers `{"pid": PID}`. The child appends JSON
  events to PATH (`[time, name, *values]`, one a line, each written
  whole) and its stderr to PATH.err; it ends with the event `done` or
  `error` (the message), or is killed.
- `{"wait": PID}` waits for that child: `{"status": CODE or -SIGNAL}`.

Forking after the imports (and before any TensorFlow op) spares each
child the ~10 s of importing TensorFlow, so that dozens of children,
each killed at a random point, fit in a test's time.
"""

import json
import os
import resource
import signal
import sys
import time
import traceback

import keras
import numpy as np
import tensorflow as tf

import keras_t2t
from keras_t2t import cli
from tests.test_case import tiny_backbone
from tests.test_case import tiny_classifier


class Events:
    def __init__(self, path):
        self.path = path

    def __call__(self, name, *values):
        line = json.dumps([time.time(), name, *values]) + "\n"
        # One `write` of a line opened for appending: whole, or absent.
        with open(self.path, "a") as f:
            f.write(line)


def feature_classifier(num_teachers=2):
    keras.utils.set_random_seed(0)
    backbone = tiny_backbone(
        feature_dim=2,
        num_teachers=num_teachers,
        num_layers=1,
        num_heads=1,
        hidden_dim=4,
        intermediate_dim=8,
    )
    classifier = tiny_classifier(backbone)
    classifier.compile()
    return classifier


def limit_file_size(size):
    """Writes past `size` bytes fail with `OSError: File too large`."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))


# === Writers ===


def save(events, path, count=1_000_000, limit=None):
    """Saves a classifier to `path` `count` times (`limit`: once, then
    once more with writes past `limit` bytes failing)."""
    classifier = feature_classifier()
    classifier.save(path)
    events("saved", 0)
    if limit is not None:
        limit_file_size(limit)
        classifier.save(path)
        return
    for saved in range(1, count):
        # Other weights each time, so files differ.
        variable = classifier.trainable_weights[-1]
        variable.assign(variable + 0.01)
        classifier.save(path)
        events("saved", saved)


def export(events, base_dir, count=1_000_000):
    """Exports versions 1, 2, ... (after the highest in `base_dir`)."""
    classifier = feature_classifier()
    existing = [int(n) for n in os.listdir(base_dir) if n.isdigit()]
    first = max(existing, default=0) + 1
    events("start", first)
    for version in range(first, first + count):
        keras_t2t.export.export_saved_model(classifier, base_dir, version)
        events("exported", version)


def train(
    events,
    backup_dir,
    epochs=1_000,
    kill_in_backup=None,
    limit_after_step=None,
    limit=None,
):
    """Trains with a backup at every batch, resuming from `backup_dir`.

    Events: `restored` (the optimizer's step and the backup metadata's
    step, `None` without a backup) when training starts, `backed_up`
    after each batch (its backup is written by then).
    `kill_in_backup=N` kills the process between the two renames of its
    N-th backup (SIGKILL just before the second). With
    `limit_after_step`, writes past `limit` bytes fail after that step.
    """
    x = {
        "features": np.random.default_rng(0).random((40, 3, 2), "float32"),
        "teacher_id": np.arange(40, dtype="int32") % 3,
    }
    y = np.random.default_rng(1).random((40, 1), "float32")
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    classifier = feature_classifier()
    backup = keras_t2t.callbacks.BackupAndRestore(backup_dir, save_freq=1)
    metadata_path = os.path.join(backup_dir, "training_metadata.json")

    class Record(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            step = keras.ops.convert_to_numpy(self.model.optimizer.iterations)
            recorded = None
            if os.path.exists(metadata_path):
                with open(metadata_path) as f:
                    recorded = json.load(f).get("step")
            events("restored", int(step), recorded)

        def on_train_batch_end(self, batch, logs=None):
            step = keras.ops.convert_to_numpy(self.model.optimizer.iterations)
            events("backed_up", int(step))
            if limit_after_step is not None and step == limit_after_step:
                limit_file_size(limit)

    if kill_in_backup is not None:
        # Renames counted inside `_write_backup` only.
        write_backup = keras_t2t.callbacks.BackupAndRestore._write_backup
        rename = tf.io.gfile.rename
        count = {"backups": 0, "renames": 0}

        def counted_write_backup(self, *args, **kwargs):
            count["backups"] += 1
            count["renames"] = 0
            return write_backup(self, *args, **kwargs)

        def rename_or_die(source, target, overwrite=False):
            count["renames"] += 1
            if count["backups"] == kill_in_backup and count["renames"] == 2:
                os.kill(os.getpid(), signal.SIGKILL)
            return rename(source, target, overwrite=overwrite)

        keras_t2t.callbacks.BackupAndRestore._write_backup = (
            counted_write_backup
        )
        tf.io.gfile.rename = rename_or_die
    classifier.fit(
        dataset, epochs=epochs, callbacks=[backup, Record()], verbose=0
    )
    step = keras.ops.convert_to_numpy(classifier.optimizer.iterations)
    events("trained", int(step), os.path.exists(backup_dir))


def cli_fit(events, table, output):
    """`keras-t2t fit TABLE --output OUTPUT`, tiny."""
    main = getattr(cli, "main", None)
    if main is None:  # The entry point, if moved out of the package.
        from keras_t2t_command import main
    code = main(
        [
            "fit", table, "--inputs", "f0,f1,f2", "--ground-truth", "label",
            "--teachers", "model_a,model_b", "--output", output,
            "--steps", "2", "--eval-every", "1", "--batch-size", "16",
            "--num-layers", "1", "--num-heads", "1", "--hidden-dim", "4",
            "--intermediate-dim", "8",
        ]
    )  # fmt: skip
    events("exit_code", code)


WRITERS = {
    "save": save,
    "export": export,
    "train": train,
    "cli_fit": cli_fit,
}


def child(writer, log, args):
    events = Events(log)
    error = os.open(log + ".err", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    os.dup2(error, 1)
    os.dup2(error, 2)
    try:
        WRITERS[writer](events, **args)
        events("done")
    except BaseException as exception:
        traceback.print_exc()
        message = " ".join(str(exception).split())
        events("error", type(exception).__name__, message)
        sys.stderr.flush()
        os._exit(1)
    sys.stderr.flush()
    os._exit(0)


def main():
    # The answers, and nothing else, on this process's stdout.
    answers = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    answers.write(json.dumps({"ready": os.getpid()}) + "\n")
    answers.flush()
    for line in sys.stdin:
        command = json.loads(line)
        if "fork" in command:
            pid = os.fork()
            if pid == 0:
                child(command["fork"], command["log"], command["args"])
            answer = {"pid": pid}
        elif "wait" in command:
            _, status = os.waitpid(command["wait"], 0)
            answer = {"status": os.waitstatus_to_exitcode(status)}
        else:
            break
        answers.write(json.dumps(answer) + "\n")
        answers.flush()


if __name__ == "__main__":
    main()
