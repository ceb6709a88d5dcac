"""Export of a `Teacher2TaskClassifier` as a SavedModel for TF Serving.

The SavedModel always comes from the TensorFlow backend: in this process
when that is the Keras backend, otherwise in a subprocess that rebuilds the
same model on TensorFlow from a `.keras` file (weights and config) and checks
its numbers against the original model's predictions on a probe batch. One
route for every backend gives native TensorFlow graphs with the tokenizer
inside, instead of the `XlaCallModule` op that jax2tf would embed.

The SavedModel is written into a hidden sibling of `base_dir/version` and
renamed into place once checked, so a process killed while exporting never
leaves a half-written version for TF Serving to load.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile

import keras
import numpy as np

from keras_t2t import _arguments
from keras_t2t.models import model_file

_TOLERANCE = 1e-5


# Above this many tasks `all_tasks` (one named output per task) is left
# out: a thousand outputs per request serve nobody; `tasks` takes the ids.
_MAX_NAMED_TASKS = 64


@_arguments.suggests_keywords
def export_saved_model(classifier, base_dir, version=1, probe=None):
    """Writes `classifier` as a TF Serving SavedModel in `base_dir/version`.

    Signatures (all with variable batch size; TF Serving's method
    `tensorflow/serving/predict`):

    - `serving_default`: raw input -> `confidences` `(batch, num_labels)`,
      the ground-truth task (teacher id 0), or the classifier's
      `combination` of its teacher tasks when it has one. A text model
      (one with a `TextPreprocessor`) takes `text`, a string vector,
      tokenized inside the graph; longer texts are truncated to the
      sequence length. A
      feature model takes `features` `(batch, seq, feature_dim)`, any
      `seq`, all positions attended.
    - `tasks`: the same input and `task_ids` `(batch, slots)` ->
      `confidences` `(batch, slots, num_labels)`, slot s read by task
      `task_ids[:, s]` (0 the ground truth, k teacher k): how the teachers
      asked for would have scored the input. A sparse model reads only
      those tasks, whatever the number of teachers.
    - `all_tasks` (models with at most 63 teachers): the same input ->
      one output per task, keyed by task name (`ground_truth` and each
      teacher's name).
    - `serving_masked` (feature models): `features` and `padding_mask`
      `(batch, seq)` -> `confidences`.

    Input dtypes are fixed by the signatures: `text` is `tf.string`,
    `features` `tf.float32` and `padding_mask` `tf.int32`. A loaded
    signature refuses any other dtype ("expected to be a float tensor but
    is a double tensor" for numpy's default float64): cast first, e.g.
    `tf.constant(features, tf.float32)`. TF Serving's REST API converts
    JSON numbers to the signature's dtypes itself.

    Args:
        classifier: a `keras_t2t.models.Teacher2TaskClassifier`.
        base_dir: str. The model base directory TF Serving watches.
        version: int. The version subdirectory, a positive integer (what
            TF Serving can serve). Defaults to 1.
        probe: dict of arrays or `None`. Inputs on which the export is
            checked against `classifier.predict` (max abs difference
            1e-5). Defaults to a small generated batch.

    Returns:
        The export path, `base_dir/version`.

    Example:
    ```python
    path = keras_t2t.export.export_saved_model(classifier, "serving/t2t")
    # saved_model_cli show --dir serving/t2t/1 --all
    ```
    """
    if (
        isinstance(version, bool)
        or not isinstance(version, (int, np.integer))
        or version < 1
    ):
        raise ValueError(
            "`version` must be a positive integer: TF Serving loads the "
            "numbered subfolders 1, 2, ... of `base_dir` and serves the "
            f"highest. Received: version={version!r}"
        )
    path = os.path.join(os.fspath(base_dir), str(int(version)))
    _check_free(path)
    probe = _probe_inputs(classifier) if probe is None else probe
    expected = classifier.predict(probe, verbose=0)
    os.makedirs(os.fspath(base_dir), exist_ok=True)
    model_file.remove_stale_siblings(path)
    # A hidden name TF Serving does not load, renamed once whole.
    staging = model_file.temporary_sibling(path)
    try:
        with tempfile.TemporaryDirectory() as scratch:
            probe_file = os.path.join(scratch, "probe.npz")
            np.savez(probe_file, expected=expected, **probe)
            if keras.config.backend() == "tensorflow":
                _export(classifier, staging, probe_file)
            else:
                # Only the TensorFlow rebuild in a subprocess needs the file.
                saved = os.path.join(scratch, "model.keras")
                classifier.save(saved)
                _export_in_subprocess(saved, staging, probe_file)
        _check_free(path)
        # Atomic, onto nothing or an empty folder.
        os.replace(staging, path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return path


def _check_free(path):
    if os.path.exists(path) and os.listdir(path):
        raise ValueError(
            f"{path} already holds a model; export a new version instead."
        )


def _probe_inputs(classifier):
    backbone = classifier.backbone
    rng = np.random.default_rng(0)
    if classifier.preprocessor is not None:
        return {"text": np.array(["a probe text", "", "another " * 100])}
    if backbone.input_mode == "features":
        # No longer than the backbone's absolute positions reach.
        length = min(5, backbone.max_sequence_length or 5)
        shape = (3, length, backbone.feature_dim)
        return {"features": rng.normal(size=shape).astype("float32")}
    raise ValueError(
        "A text model needs a `TextPreprocessor` as its `preprocessor` to "
        "export a signature that takes raw text."
    )


def _export_in_subprocess(model_file, path, probe_file):
    environment = dict(os.environ, KERAS_BACKEND="tensorflow")
    result = subprocess.run(
        [sys.executable, "-m", __name__, model_file, path, probe_file],
        env=environment,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise RuntimeError(
            "Export in a TensorFlow-backend process failed:\n"
            + result.stderr[-4000:]
        )


def _export(classifier, path, probe_file):
    """Builds the signatures on the TensorFlow backend, saves, checks."""
    import tensorflow as tf

    preprocessor = classifier.preprocessor
    vocabulary = classifier.teacher_vocabulary
    num_teachers = classifier.backbone.num_teachers
    task_names = (
        list(vocabulary.names)
        if vocabulary is not None
        else ["ground_truth"]
        + [f"teacher_{k}" for k in range(1, num_teachers + 1)]
    )

    backbone = classifier.backbone

    def read(model_inputs, task_ids):
        """The confidences `(batch, slots, num_labels)` of `task_ids`
        `(batch, slots)` (an empty slot, -1, reads task 0)."""
        task_ids = tf.cast(task_ids, tf.int32)
        if backbone.sparse:
            inputs = dict(model_inputs, task_ids=task_ids)
            return classifier(inputs, training=False)
        known = tf.maximum(task_ids, 0)
        if backbone.packed:
            # One pass reads every task; each slot takes its column.
            outputs = classifier(model_inputs, training=False)
            return tf.gather(outputs, known, batch_dims=1)
        # Per-example: one row per (input, slot), folded back.
        slots = tf.shape(known)[1]
        inputs = {
            name: tf.repeat(value, slots, axis=0)
            for name, value in model_inputs.items()
        }
        inputs["teacher_id"] = tf.reshape(known, [-1])
        outputs = classifier(inputs, training=False)
        return tf.reshape(outputs, [-1, slots, classifier.num_labels])

    def every_row(model_inputs, ids):
        batch = tf.shape(model_inputs["padding_mask"])[0]
        return tf.tile(tf.constant(ids, tf.int32)[None], [batch, 1])

    def ground_truth(model_inputs):
        combination = classifier.combination
        if combination is None:
            tasks = read(model_inputs, every_row(model_inputs, [0]))
            return {"confidences": tasks[:, 0]}
        ids = combination.tasks(num_teachers).tolist()
        tasks = read(model_inputs, every_row(model_inputs, ids))
        return {"confidences": combination(tasks)}

    def all_tasks(model_inputs):
        ids = list(range(num_teachers + 1))
        outputs = read(model_inputs, every_row(model_inputs, ids))
        return {name: outputs[:, k] for k, name in enumerate(task_names)}

    # Keras's export archive tracks exactly the variables and resources the
    # endpoints use, so TF Serving's (TF1-style) loader restores them.
    archive = keras.export.ExportArchive()
    archive.track(classifier)
    if preprocessor is not None:
        if not preprocessor.built:
            # A loaded preprocessor builds its packer on its first call,
            # once its tokenizer's assets are in.
            preprocessor.build(None)
        archive.track(preprocessor)
        # Loaded signatures check dtypes but not shapes, and checks against
        # a static shape are folded away: the endpoints check at run time.
        spec = [tf.TensorSpec([None], tf.string, name="text")]

        def model_inputs(text):
            text = tf.raw_ops.EnsureShape(input=text, shape=[None])
            return dict(preprocessor({"text": text}))

    else:
        dim = classifier.backbone.feature_dim
        spec = [tf.TensorSpec([None, None, None], tf.float32, name="features")]

        def model_inputs(features, padding_mask=None):
            # Fails at run time, naming the input and both shapes.
            features = tf.ensure_shape(features, [None, None, dim])
            if padding_mask is None:
                padding_mask = tf.ones(tf.shape(features)[:2], tf.int32)
            return {"features": features, "padding_mask": padding_mask}

        mask = tf.TensorSpec([None, None], tf.int32, name="padding_mask")
        archive.add_endpoint(
            "serving_masked",
            lambda features, padding_mask: ground_truth(
                model_inputs(features, padding_mask)
            ),
            input_signature=spec + [mask],
        )
    archive.add_endpoint(
        "serving_default",
        lambda x: ground_truth(model_inputs(x)),
        input_signature=spec,
    )
    if num_teachers + 1 <= _MAX_NAMED_TASKS:
        archive.add_endpoint(
            "all_tasks",
            lambda x: all_tasks(model_inputs(x)),
            input_signature=spec,
        )
    ids = tf.TensorSpec([None, None], tf.int32, name="task_ids")
    archive.add_endpoint(
        "tasks",
        lambda x, task_ids: {"confidences": read(model_inputs(x), task_ids)},
        input_signature=spec + [ids],
    )
    archive.write_out(path, verbose=False)
    _check(path, probe_file)


def _check(path, probe_file):
    import tensorflow as tf

    probe = dict(np.load(probe_file))
    expected = probe.pop("expected")
    loaded = tf.saved_model.load(path)
    inputs = {k: tf.constant(v) for k, v in probe.items()}
    actual = loaded.signatures["serving_default"](**inputs)["confidences"]
    difference = float(np.max(np.abs(actual.numpy() - expected)))
    if difference > _TOLERANCE:
        raise RuntimeError(
            f"The exported model differs from the original by {difference} "
            f"(> {_TOLERANCE}) on the probe batch."
        )
    # `assets.extra` is where TF Serving expects files of the exporter's own.
    os.makedirs(os.path.join(path, "assets.extra"), exist_ok=True)
    with open(os.path.join(path, "assets.extra", "keras_t2t.json"), "w") as f:
        json.dump({"max_abs_difference_on_probe": difference}, f)


if __name__ == "__main__":
    import keras_t2t  # noqa: F401  (registers the classes)

    model_file, export_path, probe = sys.argv[1:4]
    model = keras.saving.load_model(model_file, safe_mode=True)
    _export(model, export_path, probe)
