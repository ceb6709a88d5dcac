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


class PerTaskNormalizationTest(TestCase):
    def setUp(self):
        super().setUp()
        rng = np.random.default_rng(0)
        # (rows, tasks, labels): task 0 (ground truth) on one row only.
        self.y_true = rng.random((4, 3, 2)).astype("float32")
        self.y_true[1:, 0] = NAN
        self.y_true[0, 2, 1] = NAN
        self.y_pred = rng.random((4, 3, 2)).astype("float32")

    def task_means(self):
        errors = (self.y_true - self.y_pred) ** 2
        return np.array([np.nanmean(errors[:, k]) for k in range(3)])

    def test_each_task_gets_an_equal_share(self):
        loss = MaskedMultiTaskLoss(normalize="tasks")
        self.assertAllClose(
            loss(self.y_true, self.y_pred), self.task_means().mean(), atol=1e-6
        )
        # Unlike the mean over entries, where the ground truth's 2 of 23
        # entries weigh 2/23.
        entries = MaskedMultiTaskLoss()(self.y_true, self.y_pred)
        self.assertNotAlmostEqual(
            float(entries), float(self.task_means().mean()), places=3
        )

    def test_task_weights_and_absent_tasks(self):
        loss = MaskedMultiTaskLoss(normalize="tasks", task_weights=[3, 1, 0])
        means = self.task_means()
        self.assertAllClose(
            loss(self.y_true, self.y_pred),
            (3 * means[0] + means[1]) / 4,
            atol=1e-6,
        )
        # A task with no target in the batch drops out of the average.
        y_true = self.y_true.copy()
        y_true[:, 0] = NAN
        self.assertAllClose(loss(y_true, self.y_pred), means[1], atol=1e-6)

    def test_gradients_are_finite(self):
        loss = MaskedMultiTaskLoss(normalize="tasks")
        gradient = self.gradient(
            lambda p: loss(self.y_true, p), self.y_pred.copy()
        )
        self.assertTrue(np.isfinite(gradient).all())
        self.assertAllClose(gradient[np.isnan(self.y_true)], 0.0)

    def test_bad_arguments(self):
        with self.assertRaisesRegex(ValueError, "normalize"):
            MaskedMultiTaskLoss(normalize="rows")
        with self.assertRaisesRegex(ValueError, "task_weights"):
            MaskedMultiTaskLoss(task_weights=[1, 2])
        with self.assertRaisesRegex(ValueError, "packed targets"):
            MaskedMultiTaskLoss(normalize="tasks")(
                np.ones((2, 3)), np.ones((2, 3))
            )
        with self.assertRaisesRegex(ValueError, "2 weights for targets of 3"):
            MaskedMultiTaskLoss(normalize="tasks", task_weights=[1, 2])(
                self.y_true, self.y_pred
            )

    def test_serialization(self):
        self.run_serialization_test(
            MaskedMultiTaskLoss(normalize="tasks", task_weights=[2, 1, 1])
        )
