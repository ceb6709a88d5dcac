"""Export tests: SavedModels checked in fresh TensorFlow-only processes.

No TF Serving server binary can be installed on these machines (none in
Debian or PyPI; `tensorflow-serving-api` is the client only). So the
SavedModels are checked the way TF Serving reads them: loaded by
`tf.saved_model.load` in a fresh process that imports only TensorFlow (and
TensorFlow Text, whose ops the text tokenizer uses), and inspected and run
with `saved_model_cli`.
"""

import json
import os
import re
import shutil
import subprocess
import sys

import keras
import keras_hub
import numpy as np
import pytest
import tensorflow as tf

import keras_t2t
from keras_t2t.export import export_saved_model
from tests.data.test_text import tokenizer
from tests.test_case import ONE_LAYER
from tests.test_case import TestCase
from tests.test_case import tiny_backbone
from tests.test_case import tiny_classifier

FRESH_PROCESS = r"""
import json, sys
import numpy as np
import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the SentencePiece ops)
# (TensorFlow itself imports `keras` for `tf.keras`; this project's code and
# KerasHub must stay out.)
ours = ("keras_t2t", "keras_hub")
assert not any(name in sys.modules for name in ours)
path, inputs_file, out_file = sys.argv[1:4]
inputs = dict(np.load(inputs_file, allow_pickle=False))
loaded = tf.saved_model.load(path)
results = {}
for name in ("serving_default", "all_tasks", "tasks"):
    if name not in loaded.signatures or (
        name == "tasks" and "task_ids" not in inputs
    ):
        continue
    # Only `tasks` takes the task ids to read.
    tensors = {
        k: tf.constant(v)
        for k, v in inputs.items()
        if k != "task_ids" or name == "tasks"
    }
    outputs = loaded.signatures[name](**tensors)
    results[name] = {k: v.numpy().tolist() for k, v in outputs.items()}
assert not any(name in sys.modules for name in ours), "loading pulled them in"
json.dump(results, open(out_file, "w"))
"""


def run_fresh(path, inputs, directory):
    inputs_file = os.path.join(directory, "inputs.npz")
    out_file = os.path.join(directory, "outputs.json")
    np.savez(inputs_file, **inputs)
    command = [sys.executable, "-c", FRESH_PROCESS, path, inputs_file]
    result = subprocess.run(
        [*command, out_file],
        env=dict(os.environ, CUDA_VISIBLE_DEVICES=""),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    with open(out_file) as f:
        return json.load(f)


VOCABULARY = keras_t2t.TeacherVocabulary(["vader", "textblob", "afinn"])


def feature_classifier(task_layout="per_example", max_sequence_length=None):
    backbone = tiny_backbone(
        feature_dim=6,
        task_layout=task_layout,
        max_sequence_length=max_sequence_length,
        **ONE_LAYER,
    )
    classifier = tiny_classifier(backbone, teacher_vocabulary=VOCABULARY)
    length = min(5, max_sequence_length or 5)
    x = {"features": np.random.rand(32, length, 6).astype("float32")}
    if backbone.sparse:
        x["task_ids"] = np.tile(np.array([[0, 2, 3]], "int32"), (32, 1))
        y = np.random.rand(32, 3, 1)  # The tasks of each row.
    elif backbone.packed:
        y = np.random.rand(32, 4, 1)  # Every task of each row.
    else:
        x["teacher_id"] = np.random.randint(0, 4, 32).astype("int32")
        y = np.random.rand(32, 1)
    classifier.fit(x, y, epochs=1, verbose=0)
    return classifier


def text_classifier():
    t5 = tokenizer()
    preprocessor = keras_t2t.data.TextPreprocessor(t5, sequence_length=8)
    classifier = tiny_classifier(
        tiny_backbone(vocabulary_size=t5.vocabulary_size(), **ONE_LAYER),
        teacher_vocabulary=VOCABULARY,
        preprocessor=preprocessor,
    )
    texts = np.array(["a fine film", "dull plot", "great acting"] * 8)
    classifier.fit({"text": texts}, np.random.rand(24, 1), epochs=1, verbose=0)
    return classifier


class ExportTest(TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # One trained per-example feature model serves every test that only
        # exports it and reads it back (an export leaves the model as it
        # was), instead of one built and trained per test.
        from keras.utils import set_random_seed

        set_random_seed(1337)
        cls.feature_model = feature_classifier()

    def assert_signatures_match(self, classifier, inputs, model_inputs):
        base = os.path.join(self.get_temp_dir(), "t2t")
        path = export_saved_model(classifier, base, version=3)
        self.assertEqual(path, os.path.join(base, "3"))
        self.assertTrue(os.path.exists(os.path.join(path, "saved_model.pb")))
        outputs = run_fresh(path, inputs, self.get_temp_dir())
        expected = classifier.predict(model_inputs, verbose=0)
        self.assertAllClose(
            outputs["serving_default"]["confidences"], expected, atol=1e-5
        )
        self.assertEqual(set(outputs["all_tasks"]), set(VOCABULARY.names))
        tasks = classifier.predict(model_inputs, all_tasks=True, verbose=0)
        for task_id, name in enumerate(VOCABULARY.names):
            self.assertAllClose(
                outputs["all_tasks"][name], tasks[:, task_id], atol=1e-5
            )
        return path

    def test_feature_model(self):
        classifier = self.feature_model
        # A batch size and a length the probe did not use.
        features = np.random.rand(7, 9, 6).astype("float32")
        path = self.assert_signatures_match(
            classifier, {"features": features}, {"features": features}
        )
        loaded = tf.saved_model.load(path)
        mask = np.ones((7, 9), "int32")
        mask[:, 6:] = 0
        masked = loaded.signatures["serving_masked"](
            features=tf.constant(features), padding_mask=tf.constant(mask)
        )["confidences"]
        expected = classifier.predict(
            {"features": features, "padding_mask": mask}, verbose=0
        )
        self.assertAllClose(masked, expected, atol=1e-5)

    def test_packed_model_with_a_combination(self):
        # As the README builds feature models: absolute positions.
        classifier = feature_classifier(
            task_layout="packed", max_sequence_length=9
        )
        x = {"features": np.random.rand(32, 5, 6).astype("float32")}
        labels = (np.arange(32) % 2).astype("float32")
        classifier.fit_combination(x, labels)
        self.assertIsNotNone(classifier.combination)
        features = np.random.rand(7, 9, 6).astype("float32")
        self.assert_signatures_match(
            classifier, {"features": features}, {"features": features}
        )

    def test_sparse_model_reads_the_task_ids_it_is_given(self):
        classifier = feature_classifier(task_layout="sparse")
        features = np.random.rand(5, 4, 6).astype("float32")
        task_ids = np.array([[2, 0]] * 5, "int32")
        path = export_saved_model(classifier, self.get_temp_dir() + "/t2t")
        outputs = run_fresh(
            path,
            {"features": features, "task_ids": task_ids},
            self.get_temp_dir(),
        )
        inputs = {"features": features}
        self.assertAllClose(
            outputs["serving_default"]["confidences"],
            classifier.predict(inputs, verbose=0),
            atol=1e-5,
        )
        every = classifier.predict(inputs, all_tasks=True, verbose=0)
        self.assertAllClose(
            outputs["all_tasks"]["afinn"], every[:, 3], atol=1e-5
        )
        self.assertAllClose(
            outputs["tasks"]["confidences"], every[:, [2, 0]], atol=1e-5
        )

    def test_default_probe_fits_short_absolute_positions(self):
        # The default probe was 5 positions long whatever the backbone
        # took: a model with 3 absolute positions failed to export.
        classifier = feature_classifier(max_sequence_length=3)
        features = np.random.rand(4, 3, 6).astype("float32")
        self.assert_signatures_match(
            classifier, {"features": features}, {"features": features}
        )

    def test_text_model(self):
        classifier = text_classifier()
        texts = np.array(
            ["a fine film", "", "dull " * 50, "great acting and a lovely score"]
        )
        path = self.assert_signatures_match(
            classifier, {"text": texts}, {"text": texts}
        )
        self.check_saved_model_cli(path)

    def check_saved_model_cli(self, path):
        cli = shutil.which("saved_model_cli") or os.path.join(
            os.path.dirname(sys.executable), "saved_model_cli"
        )
        shown = subprocess.run(
            [cli, "show", "--dir", path, "--all"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        for name in ("serving_default", "all_tasks"):
            self.assertIn(f"signature_def['{name}']", shown)
        self.assertIn("Method name is: tensorflow/serving/predict", shown)
        # `saved_model_cli` does not load TensorFlow Text's ops, which the
        # tokenizer needs (as a TF Serving build must link them): run the
        # same CLI with them registered first.
        with_text_ops = (
            "import sys, tensorflow_text; "
            "from tensorflow.python.tools import saved_model_cli; "
            "sys.argv[0] = 'saved_model_cli'; saved_model_cli.main()"
        )
        ran = subprocess.run(
            [
                sys.executable,
                "-c",
                with_text_ops,
                "run",
                "--dir",
                path,
                "--tag_set",
                "serve",
                "--signature_def",
                "serving_default",
                "--input_exprs",
                "text=['what a lovely film', 'dull']",
            ],
            capture_output=True,
            text=True,
        )
        self.assertEqual(ran.returncode, 0, ran.stderr[-2000:])
        self.assertIn("confidences", ran.stdout)

    def test_wrong_dtype_or_rank_is_rejected_by_the_signature(self):
        classifier = self.feature_model
        path = export_saved_model(classifier, self.get_temp_dir())
        serving = tf.saved_model.load(path).signatures["serving_default"]
        rejected = (TypeError, ValueError, tf.errors.InvalidArgumentError)
        with pytest.raises(rejected, match="float"):
            serving(features=tf.constant(np.zeros((2, 3, 6), "int32")))
        # The dtypes the docs give: numpy's default float64 is refused.
        loaded = tf.saved_model.load(path)
        specs = {
            name: loaded.signatures[name].structured_input_signature[1]
            for name in ("serving_default", "all_tasks", "serving_masked")
        }
        for name, spec in specs.items():
            self.assertEqual(spec["features"].dtype, tf.float32, name)
        self.assertEqual(
            specs["serving_masked"]["padding_mask"].dtype, tf.int32
        )
        with pytest.raises(rejected, match="float tensor but is a double"):
            serving(features=tf.constant(np.zeros((2, 3, 6))))
        out = serving(features=tf.constant(np.zeros((2, 3, 6)), tf.float32))
        self.assertEqual(out["confidences"].dtype, tf.float32)
        for shape in [(2, 6), (2, 3, 5)]:
            with pytest.raises(
                rejected, match=r"features .* not compatible with .*\[\?,\?,6\]"
            ):
                serving(features=tf.constant(np.zeros(shape, "float32")))

    def test_refuses_to_overwrite_a_version(self):
        classifier = self.feature_model
        base = self.get_temp_dir()
        export_saved_model(classifier, base, version=1)
        with pytest.raises(ValueError, match="already holds a model"):
            export_saved_model(classifier, base, version=1)

    def test_version_must_be_a_positive_integer(self):
        classifier = self.feature_model
        base = self.get_temp_dir()
        for version in (0, -1, 1.5, "2", True, None):
            with pytest.raises(
                ValueError,
                match=rf"`version` must be a positive integer.*"
                rf"version={re.escape(repr(version))}",
            ):
                export_saved_model(classifier, base, version=version)
        self.assertEqual(os.listdir(base), [])


del keras, keras_hub
