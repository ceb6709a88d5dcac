"""A crowd's long table as crowd-kit has it: (task, worker, label) rows."""

import numpy as np
import pandas as pd
import pytest

import keras_t2t
from keras_t2t.data import read_targets
from tests.test_case import TestCase

VOCABULARY = keras_t2t.TeacherVocabulary(["w1", "w2", "w3"])
OPTIONS = dict(
    layout="long",
    item_column="task",
    source_column="worker",
    label_column="label",
    score_column=None,
    num_labels=3,
)


def crowd_table():
    return pd.DataFrame(
        {
            "task": ["a", "a", "b", "b", "b", "c"],
            "worker": ["w1", "w2", "w1", "w3", "ground_truth", "w2"],
            "label": [2, 0, 1, 1, 1, 0],
            "pixels": [
                np.full((2, 2), k, "float32") for k in (0, 0, 1, 1, 1, 2)
            ],
        }
    )


class CrowdTableTest(TestCase):
    def test_a_class_per_row_is_one_hot_with_its_negatives(self):
        targets = read_targets(
            crowd_table(), VOCABULARY, inputs="pixels", **OPTIONS
        )
        self.assertEqual(targets.shape, (3, 4, 3))
        self.assertAllEqual(targets[0, 1], [0, 0, 1])  # Item a, w1: class 2.
        self.assertAllEqual(targets[0, 2], [1, 0, 0])
        self.assertAllEqual(targets[1, 0], [0, 1, 0])  # The ground truth.
        self.assertTrue(np.isnan(targets[0, 3]).all())  # w3 did not label a.
        self.assertEqual(int((~np.isnan(targets)).all(-1).sum()), 6)

    def test_array_inputs_are_read_once_per_item(self):
        dataset = keras_t2t.data.expand(
            crowd_table(), VOCABULARY, inputs="pixels", batch_size=8, **OPTIONS
        )
        x, y, _ = next(iter(dataset))
        self.assertEqual(tuple(x["pixels"].shape), (3, 2, 2))
        self.assertAllClose(x["pixels"][:, 0, 0], [0, 1, 2])
        self.assertEqual(tuple(y.shape), (3, 3, 3))

    def test_an_input_array_of_several_axes(self):
        # A dict of arrays: the input column is one (rows, 2, 2) array.
        table = {k: v.to_numpy() for k, v in crowd_table().items()}
        table["pixels"] = np.stack(table["pixels"])
        table["pixels"][5, 0, 0] = np.nan  # NaN matches NaN in an item.
        targets = read_targets(table, VOCABULARY, inputs="pixels", **OPTIONS)
        self.assertEqual(targets.shape, (3, 4, 3))
        table["pixels"][1, 1, 1] = 5.0
        with pytest.raises(ValueError, match="Item 'a': input 'pixels'"):
            read_targets(table, VOCABULARY, inputs="pixels", **OPTIONS)

    def test_disagreeing_array_inputs_name_the_item(self):
        table = crowd_table()
        table.at[1, "pixels"] = np.full((2, 2), 9, "float32")
        with pytest.raises(ValueError, match="Item 'a': input 'pixels'"):
            read_targets(table, VOCABULARY, inputs="pixels", **OPTIONS)

    def test_scores_of_one_beside_labels_are_refused(self):
        table = crowd_table().assign(score=1.0)
        options = dict(OPTIONS, score_column="score")
        with pytest.raises(ValueError, match="score_column=None"):
            read_targets(table, VOCABULARY, inputs="pixels", **options)

    def test_two_classes_from_one_worker_are_refused(self):
        table = crowd_table()
        table.loc[len(table)] = ["a", "w1", 0, np.zeros((2, 2), "float32")]
        with pytest.raises(ValueError, match="item 'a' has more than one"):
            read_targets(table, VOCABULARY, inputs="pixels", **OPTIONS)

    def test_no_score_column_needs_a_label_column(self):
        options = dict(OPTIONS, label_column=None)
        with pytest.raises(ValueError, match="label_column="):
            read_targets(crowd_table(), VOCABULARY, inputs="pixels", **options)
