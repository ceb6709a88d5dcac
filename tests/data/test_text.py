import os

import keras
import keras_hub
import numpy as np
import pytest
import tensorflow as tf

import keras_t2t
from keras_t2t.data import TextPreprocessor
from keras_t2t.data import expand
from keras_t2t.data import summarize
from keras_t2t.data import train_sentencepiece
from tests.data.tables import VOCABULARY
from tests.test_case import ONE_LAYER
from tests.test_case import TestCase
from tests.test_case import tiny_backbone
from tests.test_case import tiny_classifier

WORDS = (
    "a fine film dull plot great acting boring script lovely score weak".split()
)


def corpus(num_texts=200, seed=0):
    rng = np.random.default_rng(seed)
    return [
        " ".join(rng.choice(WORDS, rng.integers(2, 12)))
        for _ in range(num_texts)
    ]


def tokenizer():
    proto = train_sentencepiece(corpus(), vocabulary_size=40)
    return keras_hub.models.T5Tokenizer(proto=proto)


def t5_preset(directory):
    """A local KerasHub T5 preset: backbone weights and tokenizer."""
    t5 = tokenizer()
    keras_hub.models.T5Backbone(
        vocabulary_size=t5.vocabulary_size(),
        num_layers=1,
        num_heads=2,
        hidden_dim=8,
        intermediate_dim=16,
    ).save_to_preset(directory)
    t5.save_to_preset(directory)
    return directory


class TextPreprocessorTest(TestCase):
    def test_texts_sentencepiece_leaves_out_are_counted(self):
        texts = corpus() + ["lovely " * 40, "dull " * 50]
        with self.assertWarnsRegex(UserWarning, "2 of 202 texts are longer"):
            train_sentencepiece(
                texts, vocabulary_size=40, max_sentence_length=200
            )

    def test_trained_tokenizer_follows_t5_ids(self):
        t5 = tokenizer()
        self.assertEqual(t5.pad_token_id, 0)
        self.assertEqual(t5.end_token_id, 1)
        self.assertLessEqual(t5.vocabulary_size(), 40)

    def test_packs_with_end_token_and_mask(self):
        preprocessor = TextPreprocessor(tokenizer(), sequence_length=6)
        texts = tf.constant(["a fine film", " ".join(WORDS)])
        out = preprocessor({"text": texts, "teacher_id": tf.constant([0, 2])})
        token_ids = np.asarray(out["token_ids"])
        mask = np.asarray(out["padding_mask"])
        self.assertEqual(token_ids.shape, (2, 6))
        self.assertAllEqual(out["teacher_id"], [0, 2])
        length = mask[0].sum()
        self.assertEqual(token_ids[0, length - 1], 1)  # End token.
        self.assertAllEqual(token_ids[0, length:], 0)  # Padding.
        self.assertAllEqual(mask[1], np.ones(6))  # Truncated: full.
        self.assertEqual(token_ids[1, -1], 1)
        self.assertAllEqual(preprocessor.truncated(texts), [False, True])

    def test_scalar_text(self):
        preprocessor = TextPreprocessor(tokenizer(), sequence_length=8)
        out = preprocessor(tf.constant("great acting"))
        self.assertEqual(out["token_ids"].shape, (8,))

    def test_from_preset(self):
        preset = t5_preset(os.path.join(self.get_temp_dir(), "t5_preset"))
        preprocessor = TextPreprocessor.from_preset(preset, sequence_length=5)
        out = preprocessor({"text": tf.constant(["dull plot"])})
        self.assertEqual(out["token_ids"].shape, (1, 5))

    def test_bad_arguments(self):
        with pytest.raises(ValueError, match="sequence_length"):
            TextPreprocessor(tokenizer(), sequence_length=1)
        with pytest.raises(ValueError, match="'text'"):
            TextPreprocessor(tokenizer(), 4)({"review": tf.constant(["a"])})
        with pytest.raises(ValueError, match="empty"):
            train_sentencepiece([])

    def test_texts_read_as_numbers_are_refused_by_column(self):
        # A CSV whose texts are all numbers: pandas reads them as int64.
        import pandas as pd

        path = os.path.join(self.get_temp_dir(), "numbers.csv")
        pd.DataFrame(
            {"review": ["123", "45", "7"], "label": [1.0, 0.0, np.nan]}
        ).to_csv(path, index=False)
        preprocessor = TextPreprocessor(
            tokenizer(), sequence_length=6, text_column="review"
        )
        refused = (
            r"reads text from input 'review', which holds int64 values, not "
            r"strings.*dtype=\{'review': str\}"
        )
        with pytest.raises(ValueError, match=refused):
            expand(
                path,
                VOCABULARY,
                "review",
                "label",
                teachers=[],
                batch_size=2,
                preprocessor=preprocessor,
                task_layout="per_example",
            )
        with pytest.raises(ValueError, match=refused):
            summarize(
                pd.read_csv(path),
                VOCABULARY,
                "review",
                "label",
                teachers=[],
                preprocessor=preprocessor,
            )
        floats = {"review": np.array([1.5, np.nan])}
        with pytest.raises(ValueError, match="which holds float(32|64) values"):
            preprocessor(floats)
        # Read as text, the same column tokenizes.
        frame = pd.read_csv(path, dtype={"review": str})
        out = preprocessor({"review": frame["review"].to_numpy()})
        self.assertEqual(np.asarray(out["token_ids"]).shape, (3, 6))

    def test_truncation_is_counted_in_the_summary(self):
        texts = np.array(corpus(50, seed=1))
        table = {"text": texts, "label": np.ones(50)}
        preprocessor = TextPreprocessor(tokenizer(), sequence_length=6)
        summary = summarize(
            table,
            VOCABULARY,
            "text",
            "label",
            teachers=[],
            preprocessor=preprocessor,
        )
        expected = int(np.sum(preprocessor.truncated(tf.constant(texts))))
        self.assertGreater(expected, 0)
        self.assertEqual(summary.truncated_texts, expected)
        self.assertIn(f"texts truncated: {expected}", str(summary))

    def test_text_table_feeds_fit_and_a_saved_classifier(self):
        rng = np.random.default_rng(0)
        texts = np.array(corpus(96))
        positive = np.array([("fine" in t) or ("great" in t) for t in texts])
        table = {"text": texts, "label": positive.astype("float32")}
        table["label"][rng.random(96) < 0.7] = np.nan
        for name in VOCABULARY.teachers:
            table[name] = np.clip(
                positive + rng.normal(0, 0.3, 96), 0, 1
            ).astype("float32")
        t5 = tokenizer()
        preprocessor = TextPreprocessor(t5, sequence_length=12)
        dataset = expand(
            table,
            VOCABULARY,
            "text",
            "label",
            shuffle_buffer=512,
            seed=0,
            batch_size=16,
            preprocessor=preprocessor,
            task_layout="per_example",
        )
        backbone = tiny_backbone(
            vocabulary_size=t5.vocabulary_size(), **ONE_LAYER
        )
        classifier = tiny_classifier(backbone, teacher_vocabulary=VOCABULARY)
        history = classifier.fit(dataset, epochs=3, verbose=0)
        losses = history.history["loss"]
        self.assertLess(losses[-1], losses[0])

        # The same classifier with the preprocessor attached takes raw text.
        with_text = keras_t2t.models.Teacher2TaskClassifier(
            backbone, teacher_vocabulary=VOCABULARY, preprocessor=preprocessor
        )
        with_text.output_dense.set_weights(
            classifier.output_dense.get_weights()
        )
        raw = with_text.predict({"text": texts[:5]}, verbose=0)
        packed = preprocessor({"text": tf.constant(texts[:5])})
        tokens = {k: np.asarray(v) for k, v in packed.items()}
        self.assertAllClose(
            raw, classifier.predict(tokens, verbose=0), atol=1e-6
        )

        path = os.path.join(self.get_temp_dir(), "text.keras")
        with_text.save(path)
        revived = keras.saving.load_model(path, safe_mode=True)
        self.assertAllClose(
            revived.predict({"text": texts[:5]}, verbose=0), raw, atol=1e-6
        )
