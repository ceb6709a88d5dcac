import keras
import numpy as np

from keras_t2t.layers import InputMasking
from tests.test_case import TestCase


def _call(layer, sequence, padding_mask):
    outputs, mask = layer(sequence, padding_mask)
    return keras.ops.convert_to_numpy(outputs), keras.ops.convert_to_numpy(mask)


class InputMaskingTest(TestCase):
    def test_masks_real_positions_with_the_mask_vector(self):
        layer = InputMasking(rate=0.3, seed=1)
        sequence = np.random.rand(200, 10, 4).astype("float32")
        padding_mask = np.ones((200, 10), "int32")
        padding_mask[:, 7:] = 0
        outputs, mask = _call(layer, sequence, padding_mask)
        self.assertEqual(mask.dtype, np.int32)
        # Padding is never masked; every row has a masked position.
        self.assertEqual(mask[:, 7:].sum(), 0)
        self.assertTrue((mask.sum(axis=1) >= 1).all())
        # About `rate` of the real positions (1,400 draws).
        self.assertAlmostEqual(mask[:, :7].mean(), 0.3, delta=0.05)
        vector = keras.ops.convert_to_numpy(layer.mask_vector)
        chosen = mask.astype(bool)
        self.assertAllClose(
            outputs[chosen], np.broadcast_to(vector, (chosen.sum(), 4))
        )
        self.assertAllClose(outputs[~chosen], sequence[~chosen])

    def test_a_row_with_no_draw_masks_its_first_real_position(self):
        layer = InputMasking(rate=1e-6, seed=0)
        padding_mask = np.array([[0, 0, 1, 1], [1, 1, 1, 0]], "int32")
        _, mask = _call(layer, np.ones((2, 4, 3), "float32"), padding_mask)
        self.assertAllEqual(mask, [[0, 0, 1, 0], [1, 0, 0, 0]])

    def test_fresh_draws_each_call_and_seeded(self):
        sequence = np.ones((8, 16, 2), "float32")
        padding_mask = np.ones((8, 16), "int32")
        layer = InputMasking(rate=0.5, seed=3)
        _, first = _call(layer, sequence, padding_mask)
        _, second = _call(layer, sequence, padding_mask)
        self.assertFalse(np.array_equal(first, second))
        _, again = _call(InputMasking(rate=0.5, seed=3), sequence, padding_mask)
        self.assertAllEqual(again, first)

    def test_symbolic_shapes_and_dtypes(self):
        layer = InputMasking(dtype="mixed_bfloat16")
        outputs, mask = layer(
            keras.Input((7, 8)), keras.Input((7,), dtype="int32")
        )
        self.assertEqual(tuple(outputs.shape), (None, 7, 8))
        self.assertEqual(tuple(mask.shape), (None, 7))
        self.assertEqual((outputs.dtype, mask.dtype), ("bfloat16", "int32"))

    def test_rate_out_of_range(self):
        for rate in (0.0, 1.0, -0.1):
            with self.assertRaisesRegex(ValueError, "`rate`.*Received: "):
                InputMasking(rate=rate)

    def test_serialization(self):
        self.run_serialization_test(InputMasking(rate=0.25, seed=7))
