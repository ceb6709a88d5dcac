import keras
import numpy as np

from keras_t2t.layers import TeacherEmbedding
from keras_t2t.layers import TeacherShrinkage
from tests.test_case import TestCase


class TeacherEmbeddingTest(TestCase):
    def test_prepends_the_teacher_vector(self):
        layer = TeacherEmbedding(num_teachers=3, hidden_dim=4)
        sequence = np.random.rand(2, 5, 4).astype("float32")
        padding_mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], "int32")
        outputs, mask = layer(np.array([0, 2], "int32"), sequence, padding_mask)
        self.assertEqual(tuple(outputs.shape), (2, 6, 4))
        table = keras.ops.convert_to_numpy(layer.embeddings)
        self.assertAllClose(outputs[:, 0], table[[0, 2]])
        self.assertAllClose(outputs[:, 1:], sequence)
        self.assertAllEqual(mask, [[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]])

    def test_has_one_vector_per_task(self):
        layer = TeacherEmbedding(num_teachers=5, hidden_dim=3)
        layer(np.zeros((1,), "int32"), np.zeros((1, 2, 3)), np.ones((1, 2)))
        self.assertEqual(tuple(layer.embeddings.shape), (6, 3))

    def test_symbolic_shapes(self):
        layer = TeacherEmbedding(num_teachers=2, hidden_dim=8)
        outputs, mask = layer(
            keras.Input((), dtype="int32"),
            keras.Input((7, 8)),
            keras.Input((7,), dtype="int32"),
        )
        self.assertEqual(tuple(outputs.shape), (None, 8, 8))
        self.assertEqual(tuple(mask.shape), (None, 8))

    def test_symbolic_dtypes_under_mixed_precision(self):
        # The sequence in the compute dtype, the mask in its own.
        layer = TeacherEmbedding(
            num_teachers=2, hidden_dim=8, dtype="mixed_bfloat16"
        )
        inputs = (
            keras.Input((), dtype="int32"),
            keras.Input((7, 8)),
            keras.Input((7,), dtype="int32"),
        )
        outputs, mask = layer(*inputs)
        self.assertEqual((outputs.dtype, mask.dtype), ("bfloat16", "int32"))
        arrays = (np.zeros(2, "int32"), np.ones((2, 7, 8)), np.ones((2, 7)))
        outputs, mask = layer.compute_output_spec(*arrays)
        self.assertEqual(tuple(outputs.shape), (2, 8, 8))
        self.assertEqual(mask.dtype, "float64")

    def test_serialization(self):
        layer = TeacherEmbedding(
            num_teachers=2,
            hidden_dim=8,
            embeddings_initializer=keras.initializers.TruncatedNormal(
                stddev=0.3
            ),
        )
        revived = self.run_serialization_test(layer)
        self.assertEqual(revived.embeddings_initializer.stddev, 0.3)

    def test_ground_truth_mixture_starts_at_the_teachers_mean(self):
        layer = TeacherEmbedding(
            num_teachers=3, hidden_dim=4, ground_truth_token="mixture"
        )
        sequence = np.zeros((2, 5, 4), "float32")
        outputs, _ = layer(np.array([0, 2], "int32"), sequence, np.ones((2, 5)))
        table = keras.ops.convert_to_numpy(layer.embeddings)
        self.assertAllClose(table[0], np.zeros(4))
        self.assertAllClose(outputs[0, 0], table[1:].mean(axis=0))
        self.assertAllClose(outputs[1, 0], table[2])

    def test_ground_truth_mixture_follows_weights_and_offset(self):
        layer = TeacherEmbedding(
            num_teachers=2, hidden_dim=3, ground_truth_token="mixture"
        )
        layer.build()
        table = np.array([[1.0, 0, 0], [0, 2.0, 0], [0, 0, 4.0]], "float32")
        layer.embeddings.assign(table)
        layer.mixture_logits.assign(np.log(np.array([3.0, 1.0], "float32")))
        vectors = keras.ops.convert_to_numpy(layer.task_vectors())
        self.assertAllClose(vectors[0], [1.0, 1.5, 1.0])
        self.assertAllClose(vectors[1:], table[1:])
        self.assertEqual(len(layer.trainable_weights), 2)

    def test_ground_truth_mixture_serialization(self):
        layer = TeacherEmbedding(
            num_teachers=2, hidden_dim=8, ground_truth_token="mixture"
        )
        revived = self.run_serialization_test(layer)
        self.assertEqual(revived.ground_truth_token, "mixture")

    def test_rejects_an_unknown_ground_truth_token(self):
        with self.assertRaisesRegex(ValueError, "ground_truth_token"):
            TeacherEmbedding(
                num_teachers=2, hidden_dim=8, ground_truth_token="x"
            )


class TeacherShrinkageTest(TestCase):
    def test_penalty_is_the_spread_of_the_teacher_vectors(self):
        table = np.array([[9.0, 9.0], [1.0, 0.0], [3.0, 0.0]], "float32")
        # Teachers at distance 1 from their mean (2, 0); row 0 is free.
        value = TeacherShrinkage(0.5)(keras.ops.convert_to_tensor(table))
        self.assertAllClose(value, 0.5)

    def test_shrinkage_enters_the_loss_and_trains_towards_the_mean(self):
        layer = TeacherEmbedding(
            num_teachers=4, hidden_dim=8, teacher_shrinkage=10.0
        )
        layer(np.array([1]), np.zeros((1, 2, 8)), np.ones((1, 2), "int32"))
        self.assertEqual(len(layer.losses), 1)
        self.assertGreater(
            float(keras.ops.convert_to_numpy(layer.losses[0])), 0
        )

        plain = TeacherEmbedding(num_teachers=4, hidden_dim=8)
        plain(np.array([1]), np.zeros((1, 2, 8)), np.ones((1, 2), "int32"))
        self.assertEqual(len(plain.losses), 0)

    def test_config_and_bad_strength(self):
        layer = TeacherEmbedding(
            num_teachers=3, hidden_dim=4, teacher_shrinkage=0.1
        )
        self.run_serialization_test(layer)
        with self.assertRaisesRegex(ValueError, "teacher_shrinkage"):
            TeacherEmbedding(num_teachers=3, hidden_dim=4, teacher_shrinkage=-1)
