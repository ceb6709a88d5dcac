import keras
import numpy as np
import pytest

from keras_t2t import TeacherVocabulary
from keras_t2t.data import expand
from keras_t2t.data import expand_arrays
from tests.test_case import TestCase

NAN = np.nan


class ExpandArraysTest(TestCase):
    def setUp(self):
        super().setUp()
        self.inputs = {"features": np.arange(4 * 2 * 3).reshape(4, 2, 3)}
        self.labels = np.array([[1.0], [NAN], [0.0], [NAN]])
        # (rows, teachers, labels)
        self.scores = np.array(
            [
                [[0.9], [NAN]],
                [[0.2], [0.4]],
                [[NAN], [NAN]],
                [[NAN], [NAN]],
            ]
        )

    def test_one_example_per_present_row_and_source(self):
        x, y, weight = expand_arrays(
            self.inputs,
            self.labels,
            self.scores,
            ground_truth_weight=5.0,
            task_layout="per_example",
        )
        pairs = sorted(
            zip(
                x["features"][:, 0, 0] // 6,
                x["teacher_id"],
                y[:, 0],
                strict=True,
            )
        )
        self.assertEqual(
            pairs,
            [(0, 0, 1.0), (0, 1, 0.9), (1, 1, 0.2), (1, 2, 0.4), (2, 0, 0.0)],
        )
        self.assertAllEqual(weight, np.where(x["teacher_id"] == 0, 5.0, 1.0))
        # Row 3 has no value from any source: no example.
        self.assertNotIn(3, x["features"][:, 0, 0] // 6)

    def test_identical_to_expand_on_the_same_table(self):
        # A thin wrapper over the one expansion: the examples, order and
        # weights `expand` makes of the same table.
        table = dict(
            self.inputs,
            label=self.labels,
            a=self.scores[:, 0],
            b=self.scores[:, 1],
        )
        dataset = expand(
            table,
            TeacherVocabulary(["a", "b"]),
            inputs="features",
            ground_truth="label",
            ground_truth_weight=5.0,
            batch_size=100,
            task_layout="per_example",
        )
        expected = keras.tree.map_structure(
            lambda t: t.numpy(), dataset.get_single_element()
        )
        actual = expand_arrays(
            self.inputs,
            self.labels,
            self.scores,
            ground_truth_weight=5.0,
            task_layout="per_example",
        )
        self.assertEqual(len(actual[1]), 5)
        for got, want in zip(
            keras.tree.flatten(actual),
            keras.tree.flatten(expected),
            strict=True,
        ):
            self.assertAllEqual(got, want)

    def test_multi_label_keeps_partially_missing_entries(self):
        labels = np.array([[1.0, NAN], [NAN, NAN]])
        scores = np.array([[[NAN, 0.3]], [[NAN, NAN]]])
        x, y, _ = expand_arrays(
            {"f": np.zeros((2, 1))}, labels, scores, task_layout="per_example"
        )
        self.assertAllEqual(x["teacher_id"], [0, 1])
        self.assertAllEqual(np.isnan(y), [[False, True], [True, False]])

    def test_shape_mismatch(self):
        with pytest.raises(ValueError, match=r"\(4, N, 1\).*\(4, 2, 2\)"):
            expand_arrays(
                self.inputs,
                self.labels,
                np.zeros((4, 2, 2)),
                task_layout="per_example",
            )
        with pytest.raises(ValueError, match="'features' has 3 rows"):
            expand_arrays(
                {"features": np.zeros((3, 2, 3))},
                self.labels,
                self.scores,
                task_layout="per_example",
            )

    def test_values_are_checked_as_expand_checks_them(self):
        inputs = {"features": np.zeros((4, 3, 2), "float32")}
        labels = np.array([1.0, np.nan, 0.0, 1.0])
        scores = np.full((4, 2), 0.5)
        bad_labels = labels.copy()
        bad_labels[2] = 2.0
        with pytest.raises(ValueError, match=r"Row 2: ground truth.* is 2.0"):
            expand_arrays(inputs, bad_labels, scores, task_layout="per_example")
        scores[3, 1] = 5.0
        with pytest.raises(
            ValueError, match=r"Row 3: teacher 'teacher_2'.*scored 5.0"
        ):
            expand_arrays(inputs, labels, scores, task_layout="per_example")
