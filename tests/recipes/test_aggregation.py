"""The aggregation heuristics: Snorkel only where it can be fitted."""

import numpy as np

from recipes.aggregation import aggregate
from tests.test_case import TestCase


class AggregateTest(TestCase):
    def test_snorkel_needs_three_teachers(self):
        rng = np.random.default_rng(0)
        for num_teachers, has_snorkel in ((1, False), (2, False), (3, True)):
            scores = rng.random((60, num_teachers, 1)).astype("float32")
            one_hot = np.eye(4, dtype="float32")[
                rng.integers(0, 4, (60, num_teachers))
            ]
            for multiclass, table in ((False, scores), (True, one_hot)):
                with self.subTest(teachers=num_teachers, classes=multiclass):
                    aggregated = aggregate(table, multiclass=multiclass)
                    self.assertEqual("snorkel" in aggregated, has_snorkel)
                    self.assertIn("dawid_skene", aggregated)
                    for value in aggregated.values():
                        self.assertEqual(value.shape, table[:, 0].shape)
