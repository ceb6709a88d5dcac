import numpy as np

from keras_t2t.diagnostics.statistics import calibration_bins
from keras_t2t.diagnostics.statistics import expected_calibration_error
from tests.test_case import TestCase


class CalibrationTest(TestCase):
    def test_expected_calibration_error_by_hand(self):
        labels = [1, 0, 1, 0]
        scores = [0.8, 0.7, 0.3, 0.1]
        # Two bins: [0.8, 0.7] mean 0.75, rate 0.5; [0.3, 0.1] mean 0.2,
        # rate 0.5. ECE = (2 * 0.25 + 2 * 0.3) / 4.
        self.assertAlmostEqual(
            expected_calibration_error(labels, scores, 2), 0.275
        )
        # One bin each: the mean absolute gap.
        self.assertAlmostEqual(
            expected_calibration_error(labels, scores, 10), 1.7 / 4
        )
        self.assertTrue(np.isnan(expected_calibration_error([], [], 10)))

    def test_bins_and_the_error_agree(self):
        rng = np.random.default_rng(1)
        scores = rng.random(500)
        labels = (rng.random(500) < scores**2).astype("float32")
        count, mean_score, rate = calibration_bins(labels, scores, 15)
        self.assertEqual(count.sum(), 500)
        filled = count > 0
        expected = (
            np.sum(count[filled] * np.abs(mean_score[filled] - rate[filled]))
            / 500
        )
        self.assertAlmostEqual(
            expected_calibration_error(labels, scores, 15), expected
        )
        # A score of exactly 1 falls in the last bin.
        count, _, _ = calibration_bins([1.0], [1.0], 4)
        self.assertEqual(count.tolist(), [0, 0, 0, 1])
