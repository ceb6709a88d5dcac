import numpy as np
import pytest
import tensorflow as tf

import keras_t2t
from tests.models.test_teacher2task_classifier import packed_table
from tests.test_case import TestCase
from tests.test_case import tiny_backbone
from tests.test_case import tiny_classifier


def text_classifier(vocabulary_size=10):
    return tiny_classifier(tiny_backbone(vocabulary_size=vocabulary_size))


def text_arrays(rows=8, vocabulary_size=10):
    rng = np.random.default_rng(0)
    x = {
        "token_ids": rng.integers(1, vocabulary_size, (rows, 5)),
        "padding_mask": np.ones((rows, 5), "int32"),
        "teacher_id": np.zeros(rows, "int32"),
    }
    y = rng.integers(0, 2, (rows, 1)).astype("float32")
    return x, y


def feature_arrays(rows=8):
    rng = np.random.default_rng(0)
    x = {
        "features": rng.normal(size=(rows, 5, 8)).astype("float32"),
        "teacher_id": np.zeros(rows, "int32"),
    }
    y = rng.integers(0, 2, (rows, 1)).astype("float32")
    return x, y


def dataset(x, y, sample_weight=None):
    data = (x, y) if sample_weight is None else (x, y, sample_weight)
    return tf.data.Dataset.from_tensor_slices(data).batch(4)


class TokenIdTest(TestCase):
    def test_an_id_at_or_above_the_vocabulary_is_refused_by_example(self):
        x, y = text_arrays()
        x["token_ids"][6, 3] = 10
        classifier = text_classifier()
        message = r"example 6, position 3 is 10.*\[0, 9\].*vocabulary_size=10"
        for call in (
            lambda: classifier.fit(x, y, verbose=0),
            lambda: classifier.evaluate(x, y, verbose=0),
            lambda: classifier.predict(x, verbose=0),
        ):
            with pytest.raises(ValueError, match=message):
                call()

    def test_a_negative_id_is_refused(self):
        x, y = text_arrays()
        x["token_ids"][2, 0] = -1
        with pytest.raises(ValueError, match=r"example 2, position 0 is -1"):
            text_classifier().fit(x, y, verbose=0)

    def test_float_ids_are_refused(self):
        x, y = text_arrays()
        x["token_ids"] = x["token_ids"].astype("float32")
        with pytest.raises(ValueError, match="'token_ids' must be integers"):
            text_classifier().predict(x, verbose=0)

    def test_ids_in_a_dataset_are_checked_batch_by_batch(self):
        x, y = text_arrays()
        x["token_ids"][6, 3] = 12
        with pytest.raises(
            Exception,
            match=r"(?s)token_ids out of range.*vocabulary_size=10.*12",
        ):
            text_classifier().fit(dataset(x, y), verbose=0)

    def test_valid_ids_train_to_finite_weights(self):
        x, y = text_arrays()
        x["token_ids"][:, -1] = 9  # The largest valid id.
        classifier = text_classifier()
        history = classifier.fit(x, y, epochs=2, verbose=0)
        self.assertTrue(np.isfinite(history.history["loss"]).all())


class FeatureValueTest(TestCase):
    def test_non_finite_features_are_refused_by_example(self):
        for bad in (np.nan, np.inf, -np.inf):
            x, y = feature_arrays()
            x["features"][3, 1, 5] = bad
            with pytest.raises(
                ValueError,
                match=rf"example 3, position 1, feature 5 is {bad}.*finite",
            ):
                tiny_classifier().fit(x, y, verbose=0)

    def test_non_finite_features_in_a_dataset(self):
        x, y = feature_arrays()
        x["features"][5, 0, 0] = np.nan
        with pytest.raises(
            Exception, match=r"(?s)Non-finite input features.*nan"
        ):
            tiny_classifier().fit(dataset(x, y), verbose=0)

    def test_string_features_are_refused(self):
        x, _ = feature_arrays()
        x["features"] = x["features"].astype(str)
        with pytest.raises(ValueError, match="'features' must be numeric"):
            tiny_classifier().predict(x, verbose=0)


class TargetAndWeightTest(TestCase):
    def test_targets_outside_0_1_are_refused_nan_is_missing(self):
        for bad in (5.0, -0.5, np.inf):
            x, y = feature_arrays()
            y[:2] = np.nan  # Missing: fine.
            y[4, 0] = bad
            with pytest.raises(
                ValueError,
                match=rf"target at example 4, label 0 is {bad}.*\[0, 1\]",
            ):
                tiny_classifier().fit(x, y, verbose=0)

    def test_packed_targets_name_the_task(self):
        data, y = packed_table(num_rows=8)
        y[3, 2, 0] = 2.0
        classifier = tiny_classifier(
            tiny_backbone(task_layout="packed"),
            teacher_vocabulary=keras_t2t.TeacherVocabulary(["a", "b", "c"]),
        )
        with pytest.raises(
            ValueError, match=r"example 3, task 2 \('b'\), label 0 is 2.0"
        ):
            classifier.fit(data["inputs"], y, verbose=0)

    def test_targets_in_a_dataset(self):
        x, y = feature_arrays()
        y[6, 0] = 3.0
        with pytest.raises(Exception, match=r"(?s)Bad target.*\[0, 1\].*3"):
            tiny_classifier().fit(dataset(x, y), verbose=0)

    def test_nan_or_negative_sample_weight_is_refused(self):
        for bad in (np.nan, -1.0, np.inf):
            x, y = feature_arrays()
            weight = np.ones(8, "float32")
            weight[5] = bad
            with pytest.raises(
                ValueError,
                match=rf"`sample_weight` at example 5 is {bad}.*>= 0",
            ):
                tiny_classifier().fit(x, y, sample_weight=weight, verbose=0)
            with pytest.raises(ValueError, match="at example 5"):
                tiny_classifier().evaluate(
                    x, y, sample_weight=weight, verbose=0
                )

    def test_sample_weight_in_a_dataset(self):
        x, y = feature_arrays()
        weight = np.ones(8, "float32")
        weight[1] = -2.0
        with pytest.raises(Exception, match=r"(?s)Bad sample_weight.*-2"):
            tiny_classifier().fit(dataset(x, y, weight), verbose=0)

    def test_padding_mask_shape_and_values(self):
        x, y = text_arrays()
        model = text_classifier()
        x["padding_mask"] = np.ones((8, 7), "int32")
        with pytest.raises(ValueError, match=r"the 5 positions of 'token_ids'"):
            model.predict(x, verbose=0)
        x["padding_mask"] = np.ones((8, 5), "int32")
        x["padding_mask"][3, 2] = 2
        with pytest.raises(
            ValueError, match=r"Received 2 at example 3, position 2"
        ):
            model.fit(x, y, verbose=0)

    def test_a_sample_weight_per_example_and_targets_to_train(self):
        x, y = feature_arrays()
        model = tiny_classifier()
        with pytest.raises(ValueError, match=r"Received shape \(8, 2\)"):
            model.fit(x, y, sample_weight=np.ones((8, 2)), verbose=0)
        for call in (model.fit, model.evaluate):
            with pytest.raises(ValueError, match="Received: y=None"):
                call(x, None, verbose=0)

    def test_lengths_must_agree(self):
        x, y = feature_arrays(rows=8)
        with pytest.raises(
            ValueError, match=r"'y' has 6 examples but input 'features' has 8"
        ):
            tiny_classifier().fit(x, y[:6], verbose=0)
        with pytest.raises(ValueError, match=r"'sample_weight' has 3"):
            tiny_classifier().fit(x, y, sample_weight=np.ones(3), verbose=0)
        x["padding_mask"] = np.ones((7, 5), "int32")
        with pytest.raises(ValueError, match=r"input 'padding_mask' has 7"):
            tiny_classifier().predict(x, verbose=0)
