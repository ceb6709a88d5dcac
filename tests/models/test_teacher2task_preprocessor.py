import os

import keras
import keras_hub
import numpy as np
import pytest
import tensorflow as tf

import keras_t2t
from keras_t2t.models import Teacher2TaskClassifier
from keras_t2t.models import Teacher2TaskPreprocessor
from tests.data.test_text import corpus
from tests.data.test_text import t5_preset
from tests.data.test_text import tokenizer
from tests.test_case import ONE_LAYER
from tests.test_case import TestCase
from tests.test_case import tiny_backbone
from tests.test_case import tiny_classifier

VOCABULARY = keras_t2t.TeacherVocabulary(["vader", "textblob", "afinn"])


def text_classifier(preprocessor, task_layout="per_example", **kwargs):
    backbone = tiny_backbone(
        vocabulary_size=preprocessor.tokenizer.vocabulary_size(),
        task_layout=task_layout,
        **ONE_LAYER,
    )
    return tiny_classifier(
        backbone,
        teacher_vocabulary=VOCABULARY,
        preprocessor=preprocessor,
        **kwargs,
    )


def as_numpy(x):
    return {k: np.asarray(keras.ops.convert_to_numpy(v)) for k, v in x.items()}


class Teacher2TaskPreprocessorTest(TestCase):
    def test_takes_and_returns_x_y_sample_weight(self):
        preprocessor = Teacher2TaskPreprocessor(tokenizer(), sequence_length=6)
        self.assertIsInstance(preprocessor, keras_hub.models.Preprocessor)
        x = {"text": ["a fine film", "dull"], "teacher_id": [0, 2]}
        y, weight = np.array([[1.0], [0.2]]), np.array([1.0, 0.5])
        out_x, out_y, out_weight = preprocessor(x, y, weight)
        self.assertAllClose(out_y, y)
        self.assertAllClose(out_weight, weight)
        out_x = as_numpy(out_x)
        self.assertEqual(out_x["token_ids"].shape, (2, 6))
        self.assertEqual(out_x["token_ids"].dtype, np.int32)
        self.assertEqual(out_x["padding_mask"].dtype, np.int32)
        self.assertAllEqual(out_x["teacher_id"], [0, 2])
        length = out_x["padding_mask"][1].sum()
        self.assertEqual(out_x["token_ids"][1, length - 1], 1)  # End token.
        # With `x` alone, `x` comes back.
        alone = as_numpy(preprocessor(x))
        self.assertAllEqual(alone["token_ids"], out_x["token_ids"])

    def test_maps_over_a_dataset(self):
        preprocessor = Teacher2TaskPreprocessor(tokenizer(), sequence_length=6)
        texts = ["a fine film", "dull plot", "great acting"]
        ds = tf.data.Dataset.from_tensor_slices(
            ({"text": texts}, [[1.0], [0.0], [1.0]])
        ).batch(2)
        batches = list(ds.map(preprocessor).as_numpy_iterator())
        self.assertEqual(batches[0][0]["token_ids"].shape, (2, 6))
        self.assertAllClose(batches[1][1], [[1.0]])

    def test_preset_round_trip(self):
        preprocessor = Teacher2TaskPreprocessor(
            tokenizer(), sequence_length=7, text_column="review"
        )
        directory = os.path.join(self.get_temp_dir(), "preset")
        # A preset holds a backbone; the preprocessor is saved beside it.
        text_classifier(preprocessor).backbone.save_to_preset(directory)
        preprocessor.save_to_preset(directory)
        revived = Teacher2TaskPreprocessor.from_preset(directory)
        self.assertEqual(revived.sequence_length, 7)
        self.assertEqual(revived.text_column, "review")
        x = {"review": ["dull plot", "a fine film great acting"]}
        self.assertAllEqual(
            as_numpy(revived(x))["token_ids"],
            as_numpy(preprocessor(x))["token_ids"],
        )

    def test_from_a_t5_preset(self):
        preset = t5_preset(os.path.join(self.get_temp_dir(), "t5"))
        preprocessor = Teacher2TaskPreprocessor.from_preset(
            preset, sequence_length=5
        )
        out = as_numpy(preprocessor({"text": ["dull plot"]}))
        self.assertEqual(out["token_ids"].shape, (1, 5))

    def test_serialization_and_saved_model_packing(self):
        # A `.keras` file restores the tokenizer's assets before the packer
        # is built: the loaded preprocessor packs exactly as the original.
        preprocessor = Teacher2TaskPreprocessor(tokenizer(), sequence_length=8)
        self.run_serialization_test(preprocessor)
        classifier = text_classifier(preprocessor)
        x = {"text": np.array(["a probe text", "", "another " * 20])}
        revived = self.run_model_saving_test(classifier, x)
        self.assertAllEqual(
            as_numpy(revived.preprocessor(x))["token_ids"],
            as_numpy(preprocessor(x))["token_ids"],
        )

    def test_bad_arguments(self):
        with pytest.raises(ValueError, match="sequence_length"):
            Teacher2TaskPreprocessor(tokenizer(), sequence_length=1)
        with pytest.raises(ValueError, match="'text'.*'review'"):
            Teacher2TaskPreprocessor(tokenizer(), 4)({"review": ["a"]})


class TaskContractTest(TestCase):
    """keras-hub's task contract, on a classifier that takes raw text."""

    def setUp(self):
        super().setUp()
        texts = np.array(corpus(48, seed=2))
        self.x = {"text": texts}
        self.y = np.array(
            [[float("fine" in t or "great" in t)] for t in texts], "float32"
        )

    def test_raw_inputs_datasets_and_split_preprocessing_agree(self):
        preprocessor = Teacher2TaskPreprocessor(tokenizer(), sequence_length=8)
        classifier = text_classifier(preprocessor)
        classifier.compile()
        classifier.fit(self.x, self.y, batch_size=16, epochs=1, verbose=0)
        raw = classifier.predict(self.x, batch_size=16, verbose=0)

        ds = tf.data.Dataset.from_tensor_slices((self.x, self.y)).batch(16)
        classifier.fit(ds, epochs=1, verbose=0)
        from_ds = classifier.predict(ds, verbose=0)
        again = classifier.predict(self.x, batch_size=16, verbose=0)
        self.assertAllClose(from_ds, again, atol=1e-6)
        self.assertGreater(np.abs(again - raw).max(), 0)  # It trained.

        # Preprocessing split off into the input pipeline.
        classifier.preprocessor = None
        split = ds.map(preprocessor)
        self.assertAllClose(
            classifier.predict(split, verbose=0), again, atol=1e-6
        )
        classifier.fit(split, epochs=1, verbose=0)

    def test_fit_without_compile_is_keras_hubs_error(self):
        preprocessor = Teacher2TaskPreprocessor(tokenizer(), sequence_length=8)
        classifier = text_classifier(preprocessor, compile=False)
        with pytest.raises(ValueError, match="compile"):
            classifier.fit(self.x, self.y, verbose=0)

    def test_from_a_t5_preset_and_back(self):
        preset = t5_preset(os.path.join(self.get_temp_dir(), "t5"))
        classifier = Teacher2TaskClassifier.from_preset(
            preset,
            teacher_vocabulary=VOCABULARY,
            task_layout="packed",
            sequence_length=8,
        )
        self.assertTrue(classifier.backbone.packed)
        self.assertEqual(classifier.preprocessor.sequence_length, 8)
        t5 = keras_hub.models.T5Backbone.from_preset(preset)
        self.assertAllClose(
            classifier.backbone.get_layer(
                "transformer_encoder_layer_0"
            ).get_weights()[0],
            t5.get_layer("transformer_encoder_layer_0").get_weights()[0],
        )
        expected = classifier.predict(self.x, verbose=0)
        self.assertEqual(expected.shape, (48, 1))

        directory = os.path.join(self.get_temp_dir(), "t2t")
        classifier.save_to_preset(directory)
        revived = Teacher2TaskClassifier.from_preset(directory)
        self.assertAllClose(revived.predict(self.x, verbose=0), expected)
        self.assertEqual(revived.teacher_vocabulary.names, VOCABULARY.names)

    def test_t5_preset_needs_the_number_of_teachers(self):
        preset = t5_preset(os.path.join(self.get_temp_dir(), "t5"))
        with pytest.raises(ValueError, match="num_teachers"):
            Teacher2TaskClassifier.from_preset(preset)
