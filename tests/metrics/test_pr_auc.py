import keras
import numpy as np
import pytest
from hypothesis import assume
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from sklearn.metrics import average_precision_score

from keras_t2t.metrics import PRAUC
from keras_t2t.metrics import pr_auc_score
from tests.test_case import TestCase


class PRAUCTest(TestCase):
    def assert_matches_sklearn(self, y_true, y_pred, sample_weight=None):
        metric = PRAUC()
        # Streamed in uneven batches, as `fit` would.
        for batch in np.array_split(np.arange(len(y_true)), 3):
            weight = None if sample_weight is None else sample_weight[batch]
            metric.update_state(y_true[batch], y_pred[batch], weight)
        present = ~np.isnan(y_true)
        expected = average_precision_score(
            y_true[present],
            y_pred[present],
            sample_weight=None
            if sample_weight is None
            else sample_weight[present],
        )
        self.assertLess(abs(float(metric.result()) - expected), 0.005)
        return float(metric.result()), expected

    def test_random_predictions(self):
        rng = np.random.default_rng(0)
        for _ in range(5):
            y_true = (rng.random(600) < rng.uniform(0.05, 0.6)).astype(
                "float32"
            )
            y_pred = rng.random(600).astype("float32")
            self.assert_matches_sklearn(y_true, y_pred)

    def test_informative_predictions(self):
        rng = np.random.default_rng(1)
        y_true = (rng.random(800) < 0.3).astype("float32")
        logits = 2.0 * y_true + rng.normal(size=800)
        y_pred = (1 / (1 + np.exp(-logits))).astype("float32")
        actual, expected = self.assert_matches_sklearn(y_true, y_pred)
        self.assertGreater(expected, 0.6)

    def test_tied_predictions_are_exact(self):
        rng = np.random.default_rng(2)
        y_true = (rng.random(500) < 0.4).astype("float32")
        y_pred = np.round(rng.random(500), 1).astype("float32")
        actual, expected = self.assert_matches_sklearn(y_true, y_pred)
        self.assertAlmostEqual(actual, expected, places=5)

    def test_missing_labels_are_ignored_not_positive(self):
        y_true = np.array([1.0, 0.0, np.nan, 1.0, np.nan], "float32")
        y_pred = np.array([0.9, 0.4, 0.95, 0.3, 0.05], "float32")
        actual, expected = self.assert_matches_sklearn(y_true, y_pred)
        self.assertAlmostEqual(actual, 5 / 6, places=5)

    def test_sample_weight(self):
        rng = np.random.default_rng(3)
        y_true = (rng.random(400) < 0.3).astype("float32")
        y_pred = rng.random(400).astype("float32")
        weights = rng.integers(0, 4, 400).astype("float32")
        self.assert_matches_sklearn(y_true, y_pred, weights)

    def test_multi_label_per_label_and_macro(self):
        rng = np.random.default_rng(4)
        y_true = (rng.random((300, 3)) < 0.35).astype("float32")
        y_pred = np.clip(0.3 * y_true + rng.random((300, 3)) * 0.7, 0, 1)
        y_true[rng.random((300, 3)) < 0.2] = np.nan
        per_label = PRAUC(num_labels=3, average=None)
        macro = PRAUC(num_labels=3)
        for metric in (per_label, macro):
            metric.update_state(y_true, y_pred)
        expected = []
        for label in range(3):
            present = ~np.isnan(y_true[:, label])
            expected.append(
                average_precision_score(
                    y_true[present, label], y_pred[present, label]
                )
            )
        self.assertAllClose(per_label.result(), expected, atol=0.005)
        self.assertAllClose(macro.result(), np.mean(expected), atol=0.005)

    def test_label_without_positives_is_left_out_of_macro(self):
        y_true = np.array([[1.0, 0.0], [0.0, 0.0], [1.0, 0.0]], "float32")
        y_pred = np.array([[0.9, 0.2], [0.1, 0.3], [0.8, 0.6]], "float32")
        metric = PRAUC(num_labels=2, average=None)
        metric.update_state(y_true, y_pred)
        result = keras.ops.convert_to_numpy(metric.result())
        self.assertAlmostEqual(float(result[0]), 1.0, places=6)
        self.assertTrue(np.isnan(result[1]))
        macro = PRAUC(num_labels=2)
        macro.update_state(y_true, y_pred)
        self.assertAlmostEqual(float(macro.result()), 1.0, places=6)

    def test_no_labelled_example_is_nan_not_zero(self):
        for y_true in (
            [np.nan, np.nan, np.nan],  # Every label missing.
            [0.0, np.nan, 0.0],  # Only negatives: no precision to average.
        ):
            metric = PRAUC()
            metric.update_state(np.array(y_true), np.array([0.9, 0.2, 0.5]))
            self.assertTrue(np.isnan(float(metric.result())), y_true)
        self.assertTrue(np.isnan(float(PRAUC(num_labels=2).result())))

    def test_reset_state(self):
        metric = PRAUC()
        metric.update_state([1.0, 0.0], [0.1, 0.9])
        metric.reset_state()
        metric.update_state([1.0, 0.0], [0.9, 0.1])
        self.assertAlmostEqual(float(metric.result()), 1.0, places=6)

    def test_wrong_label_count(self):
        with pytest.raises(ValueError, match=r"num_labels=2.*\(4, 3\)"):
            PRAUC(num_labels=2).update_state(np.zeros((4, 3)), np.zeros((4, 2)))

    def test_predictions_with_another_label_count(self):
        metric = PRAUC(num_labels=3)
        with self.assertRaisesRegex(
            ValueError, r"predictions of shape \(4, 2\)"
        ):
            metric.update_state(np.ones((4, 3)), np.ones((4, 2)))

    def test_serialization(self):
        metric = PRAUC(num_labels=3, num_thresholds=50, average=None)
        revived = keras.metrics.deserialize(keras.metrics.serialize(metric))
        self.assertIsInstance(revived, PRAUC)
        self.assertEqual(revived.get_config(), metric.get_config())


class PRAUCPropertyTest(TestCase):
    @settings(max_examples=30, deadline=None)
    @given(
        data=st.lists(
            st.tuples(
                st.sampled_from([0.0, 1.0, np.nan]),
                # Few distinct scores: ties everywhere, as sklearn must
                # resolve them too.
                st.sampled_from([0.0, 0.125, 0.25, 0.5, 0.75, 0.875, 1.0]),
                st.sampled_from([0.5, 1.0, 2.0]),
            ),
            min_size=2,
            max_size=60,
        )
    )
    def test_matches_sklearn_on_tied_scores(self, data):
        y_true, y_pred, weight = np.array(data, "float32").T
        present = ~np.isnan(y_true)
        assume(y_true[present].sum() > 0)
        metric = PRAUC()
        metric.update_state(y_true, y_pred, weight)
        expected = average_precision_score(
            y_true[present], y_pred[present], sample_weight=weight[present]
        )
        self.assertAlmostEqual(float(metric.result()), expected, places=5)


class PRAUCScoreTest(TestCase):
    def test_matches_scikit_learn(self):
        rng = np.random.default_rng(0)
        for decimals in (None, 1, 2):  # Continuous scores, and with ties.
            labels = (rng.random(300) < 0.3).astype("float32")
            scores = np.clip(0.3 * labels + rng.random(300) * 0.7, 0, 1)
            if decimals is not None:
                scores = np.round(scores, decimals)
            self.assertAlmostEqual(
                pr_auc_score(labels, scores),
                average_precision_score(labels, scores),
                places=12,
            )

    def test_by_hand(self):
        # Sorted: 0.8 (1), 0.7 (0), 0.3 (1), 0.1 (0): precision 1 at
        # recall 0.5, then 2/3 at recall 1.
        self.assertAlmostEqual(
            pr_auc_score([1, 0, 1, 0], [0.8, 0.7, 0.3, 0.1]), 5 / 6
        )
        # A tie at the top counts as one threshold: precision 1/2.
        self.assertAlmostEqual(pr_auc_score([1, 0], [0.5, 0.5]), 0.5)

    def test_no_positive_is_nan(self):
        self.assertTrue(np.isnan(pr_auc_score([0, 0], [0.2, 0.9])))
        self.assertTrue(np.isnan(pr_auc_score([], [])))

    def test_several_labels_missing_values_and_macro(self):
        labels = np.array([[1, 0], [0, np.nan], [1, 1], [0, 0]])
        scores = np.array([[0.9, 0.2], [0.4, 0.9], [np.nan, 0.8], [0.1, 0.3]])
        per_label = pr_auc_score(labels, scores, average=None)
        # Label 0 on rows 0, 1, 3 (row 2 unscored); label 1 on 0, 2, 3.
        self.assertAllClose(
            per_label,
            [
                average_precision_score([1, 0, 0], [0.9, 0.4, 0.1]),
                average_precision_score([0, 1, 0], [0.2, 0.8, 0.3]),
            ],
        )
        self.assertAlmostEqual(pr_auc_score(labels, scores), per_label.mean())
        # A label without a positive is left out of the macro mean.
        labels[:, 1] = 0
        self.assertAlmostEqual(pr_auc_score(labels, scores), per_label[0])

    def test_agrees_with_the_streamed_metric(self):
        rng = np.random.default_rng(3)
        labels = (rng.random((400, 2)) < 0.4).astype("float32")
        scores = np.round(np.clip(0.4 * labels + rng.random((400, 2)), 0, 1), 3)
        metric = PRAUC(num_labels=2)
        metric.update_state(labels, scores)
        self.assertAlmostEqual(
            float(metric.result()), pr_auc_score(labels, scores), places=5
        )

    def test_shapes_must_match(self):
        with self.assertRaisesRegex(ValueError, "same shape"):
            pr_auc_score(np.zeros((3, 1)), np.zeros(3))

    def test_average_is_macro_or_none(self):
        with self.assertRaisesRegex(ValueError, "Received: average='micro'"):
            pr_auc_score([1, 0], [0.9, 0.1], average="micro")


class ScoresAreCheckedTest(TestCase):
    def test_an_infinite_score_where_a_label_is_known_is_refused(self):
        with self.assertRaisesRegex(ValueError, "`scores` at 1 is inf"):
            pr_auc_score([1, 0, 1], [0.5, np.inf, 0.2])
        # NaN is an unscored row, skipped.
        self.assertEqual(pr_auc_score([1, 0, 1], [0.5, np.nan, 0.2]), 1.0)

    def test_the_binned_metric_takes_probabilities(self):
        for bad in (np.nan, 1.5, -0.1):
            with self.subTest(score=bad):
                with self.assertRaisesRegex(ValueError, "`y_pred` at 1 is"):
                    PRAUC().update_state(
                        np.array([1.0, 0.0, 1.0]), np.array([0.5, bad, 0.2])
                    )
