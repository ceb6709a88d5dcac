import keras
import numpy as np

from keras_t2t.layers import TaskTokens
from tests.test_case import TestCase


class TaskTokensTest(TestCase):
    def test_prepends_every_task_vector(self):
        layer = TaskTokens(num_teachers=2, hidden_dim=4)
        sequence = np.random.rand(2, 5, 4).astype("float32")
        padding_mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], "int32")
        outputs, mask = layer(sequence, padding_mask)
        self.assertEqual(tuple(outputs.shape), (2, 8, 4))
        table = keras.ops.convert_to_numpy(layer.embeddings)
        self.assertAllClose(outputs[:, :3], np.stack([table, table]))
        self.assertAllClose(outputs[:, 3:], sequence)

        mask = keras.ops.convert_to_numpy(mask)
        self.assertEqual(mask.shape, (2, 8, 8))
        # Task rows: the task itself and the real input positions.
        self.assertAllEqual(mask[0, 1], [0, 1, 0, 1, 1, 1, 0, 0])
        self.assertAllEqual(mask[1, 2], [0, 0, 1, 1, 1, 1, 1, 1])
        # Input rows: real input positions only, never a task.
        self.assertAllEqual(mask[0, 3:, :3], np.zeros((5, 3)))
        self.assertAllEqual(mask[0, 4, 3:], [1, 1, 1, 0, 0])

    def test_symbolic_shapes(self):
        layer = TaskTokens(num_teachers=3, hidden_dim=8)
        outputs, mask = layer(keras.Input((7, 8)), keras.Input((7,)))
        self.assertEqual(tuple(outputs.shape), (None, 11, 8))
        self.assertEqual(tuple(mask.shape), (None, 11, 11))

    def test_symbolic_dtypes_under_mixed_precision(self):
        layer = TaskTokens(num_teachers=3, hidden_dim=8, dtype="mixed_float16")
        outputs, mask = layer(keras.Input((7, 8)), keras.Input((7,)))
        self.assertEqual((outputs.dtype, mask.dtype), ("float16", "int32"))
        outputs, mask = layer.compute_output_spec(
            np.ones((2, 7, 8)), np.ones((2, 7))
        )
        self.assertEqual(tuple(mask.shape), (2, 11, 11))

    def test_serialization(self):
        self.run_serialization_test(TaskTokens(num_teachers=3, hidden_dim=8))

    def test_gathers_the_tasks_of_each_row(self):
        layer = TaskTokens(num_teachers=3, hidden_dim=4)
        sequence = np.random.rand(2, 3, 4).astype("float32")
        padding_mask = np.array([[1, 1, 0], [1, 1, 1]], "int32")
        task_ids = np.array([[0, 2, -1], [0, 3, 1]], "int32")
        outputs, mask = layer(sequence, padding_mask, task_ids=task_ids)
        self.assertEqual(tuple(outputs.shape), (2, 6, 4))
        table = keras.ops.convert_to_numpy(layer.embeddings)
        self.assertAllClose(outputs[0, :2], table[[0, 2]])
        self.assertAllClose(outputs[1, :3], table[[0, 3, 1]])
        self.assertAllClose(outputs[:, 3:], sequence)

        mask = keras.ops.convert_to_numpy(mask)
        # A filled slot sees itself and the real input; an empty slot (-1)
        # itself only; the input never a slot.
        self.assertAllEqual(mask[0, 1], [0, 1, 0, 1, 1, 0])
        self.assertAllEqual(mask[0, 2], [0, 0, 1, 0, 0, 0])
        self.assertAllEqual(mask[1, 3:, :3], np.zeros((3, 3)))

    def test_every_task_id_in_order_is_the_packed_placement(self):
        layer = TaskTokens(num_teachers=2, hidden_dim=4)
        sequence = np.random.rand(2, 5, 4).astype("float32")
        padding_mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], "int32")
        packed = layer(sequence, padding_mask)
        every = np.array([[0, 1, 2]] * 2, "int32")
        sparse = layer(sequence, padding_mask, task_ids=every)
        for a, b in zip(packed, sparse, strict=True):
            self.assertAllClose(a, b)

    def test_symbolic_shapes_with_task_ids(self):
        layer = TaskTokens(num_teachers=3, hidden_dim=8)
        outputs, mask = layer(
            keras.Input((7, 8)),
            keras.Input((7,)),
            task_ids=keras.Input((None,), dtype="int32"),
        )
        self.assertEqual(tuple(outputs.shape), (None, None, 8))
        self.assertEqual(tuple(mask.shape), (None, None, None))
