import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from keras_t2t.datasets import make_synthetic_teachers
from tests.test_case import TestCase


class MakeSyntheticTeachersTest(TestCase):
    def test_shapes_and_missing_shares(self):
        data = make_synthetic_teachers(
            num_rows=2000, num_teachers=4, num_labels=2, seed=3
        )
        self.assertEqual(data["inputs"]["features"].shape, (2000, 8, 8))
        self.assertEqual(data["teacher_scores"].shape, (2000, 4, 2))
        known = ~np.isnan(data["labels"][:, 0])
        self.assertAlmostEqual(known.mean(), 0.2, delta=0.03)
        scored = ~np.isnan(data["teacher_scores"][:, :, 0])
        self.assertAlmostEqual(scored.mean(), 0.8, delta=0.03)
        self.assertAllEqual(data["labels"][known], data["true_labels"][known])

    def test_teachers_are_informative_and_differ(self):
        data = make_synthetic_teachers(num_rows=3000, seed=0)
        truth = data["true_labels"][:, 0]
        quality = []
        for k in range(3):
            scores = data["teacher_scores"][:, k, 0]
            scored = ~np.isnan(scores)
            quality.append(
                average_precision_score(truth[scored], scores[scored])
            )
        self.assertTrue(all(0.5 < q < 0.99 for q in quality), quality)
        self.assertGreater(max(quality) - min(quality), 0.01)

    def test_text_and_seed(self):
        first = make_synthetic_teachers(num_rows=10, vocabulary_size=20, seed=7)
        second = make_synthetic_teachers(
            num_rows=10, vocabulary_size=20, seed=7
        )
        self.assertAllEqual(
            first["inputs"]["token_ids"], second["inputs"]["token_ids"]
        )
        padded = first["inputs"]["padding_mask"] == 0
        self.assertAllEqual(first["inputs"]["token_ids"][padded], 0)

    def test_one_input_mode(self):
        with pytest.raises(ValueError, match="only one"):
            make_synthetic_teachers(feature_dim=3, vocabulary_size=5)
