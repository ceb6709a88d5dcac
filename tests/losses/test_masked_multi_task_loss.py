import keras
import numpy as np
import pytest
from keras import ops

from keras_t2t.losses import MaskedMultiTaskLoss
from tests.test_case import TestCase

NAN = np.nan


class MaskedMultiTaskLossTest(TestCase):
    def setUp(self):
        super().setUp()
        self.y_true = np.array(
            [[1.0, NAN, 0.0], [0.2, 0.9, NAN], [NAN, NAN, NAN]], "float32"
        )
        self.y_pred = np.array(
            [[0.8, 0.5, 0.1], [0.4, 0.7, 0.3], [0.5, 0.5, 0.5]], "float32"
        )
        self.present = ~np.isnan(self.y_true)

    def test_mse_is_the_mean_over_present_entries(self):
        loss = MaskedMultiTaskLoss()
        errors = (self.y_true - self.y_pred)[self.present] ** 2
        self.assertAllClose(
            loss(self.y_true, self.y_pred), errors.mean(), atol=1e-6
        )

    def test_binary_crossentropy(self):
        loss = MaskedMultiTaskLoss(loss="bce")
        t = self.y_true[self.present]
        p = self.y_pred[self.present]
        expected = -(t * np.log(p) + (1 - t) * np.log(1 - p)).mean()
        self.assertAllClose(loss(self.y_true, self.y_pred), expected, atol=1e-5)

    def test_sample_weight_scales_each_example(self):
        loss = MaskedMultiTaskLoss()
        weights = np.array([5.0, 1.0, 1.0], "float32")
        errors = (self.y_true - self.y_pred) ** 2
        per_example = np.where(self.present, errors, 0).sum(axis=1)
        expected = (weights * per_example).sum() / self.present.sum()
        self.assertAllClose(
            loss(self.y_true, self.y_pred, sample_weight=weights),
            expected,
            atol=1e-6,
        )

    def test_single_label_targets_without_label_axis(self):
        loss = MaskedMultiTaskLoss()
        y_true = np.array([1.0, NAN, 0.0], "float32")
        y_pred = np.array([[0.5], [0.1], [0.25]], "float32")
        self.assertAllClose(
            loss(y_true, y_pred), (0.25 + 0.0625) / 2, atol=1e-6
        )

    def test_all_missing_gives_zero(self):
        loss = MaskedMultiTaskLoss()
        y_true = np.full((2, 3), NAN, "float32")
        self.assertAllClose(loss(y_true, self.y_pred[:2]), 0.0)

    def test_gradients_are_finite_and_zero_where_missing(self):
        y_true = ops.convert_to_tensor(self.y_true)
        for name in ("mse", "bce"):
            loss = MaskedMultiTaskLoss(loss=name)
            grad = self.gradient(
                lambda p, loss=loss: loss(y_true, p), self.y_pred
            )
            self.assertTrue(np.isfinite(grad).all(), f"{name}: {grad}")
            self.assertAllEqual(grad[~self.present], 0.0)
            self.assertTrue((grad[self.present] != 0).all(), f"{name}: {grad}")

    def test_num_labels_mismatch(self):
        loss = MaskedMultiTaskLoss()
        with pytest.raises(ValueError, match=r"num_labels=3.*hold 2"):
            loss(np.zeros((3, 2), "float32"), self.y_pred)

    def test_unknown_loss(self):
        with pytest.raises(ValueError, match="'hinge'"):
            MaskedMultiTaskLoss(loss="hinge")

    def test_serialization(self):
        loss = MaskedMultiTaskLoss(loss="bce", epsilon=1e-5)
        revived = keras.losses.deserialize(keras.losses.serialize(loss))
        self.assertIsInstance(revived, MaskedMultiTaskLoss)
        self.assertEqual(revived.get_config(), loss.get_config())
        self.assertEqual(revived.loss, "binary_crossentropy")
