import copy
import os
import shutil
import tempfile
import unittest

import keras
import numpy as np
from keras import ops


class TestCase(unittest.TestCase):
    """Base class for keras_t2t tests, after keras-hub's `TestCase`.

    The backend is the process's `KERAS_BACKEND`; the suite runs once per
    backend.
    """

    def setUp(self):
        super().setUp()
        keras.utils.set_random_seed(1337)

    def get_temp_dir(self):
        path = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, path, ignore_errors=True)
        return path

    def assertAllClose(self, actual, expected, atol=1e-6, rtol=1e-6):
        np.testing.assert_allclose(
            _numpy(actual), _numpy(expected), atol=atol, rtol=rtol
        )

    def assertAllEqual(self, actual, expected):
        np.testing.assert_array_equal(_numpy(actual), _numpy(expected))

    def run_serialization_test(self, instance):
        """`get_config` round trips, through Keras serialization too."""
        config = instance.get_config()
        revived = instance.__class__.from_config(copy.deepcopy(config))
        self.assertEqual(_clean(config), _clean(revived.get_config()))

        serialized = keras.saving.serialize_keras_object(instance)
        self.assertTrue(
            serialized["registered_name"].startswith("keras_t2t>"),
            serialized["registered_name"],
        )
        revived = keras.saving.deserialize_keras_object(serialized)
        self.assertIsInstance(revived, instance.__class__)
        self.assertEqual(_clean(config), _clean(revived.get_config()))
        return revived

    def run_model_saving_test(self, model, input_data):
        """`.keras` save and `safe_mode=True` load give identical outputs."""
        expected = model.predict(input_data, verbose=0)
        path = os.path.join(self.get_temp_dir(), "model.keras")
        model.save(path)
        revived = keras.saving.load_model(path, safe_mode=True)
        self.assertIsInstance(revived, model.__class__)
        self.assertAllClose(revived.predict(input_data, verbose=0), expected)
        return revived

    def gradient(self, fn, x):
        """The gradient of scalar `fn(x)` with respect to array `x`."""
        backend = keras.config.backend()
        if backend == "tensorflow":
            import tensorflow as tf

            x = tf.Variable(x)
            with tf.GradientTape() as tape:
                value = fn(x)
            return tape.gradient(value, x).numpy()
        if backend == "jax":
            import jax

            return np.asarray(jax.grad(fn)(ops.convert_to_tensor(x)))
        if backend == "torch":
            import torch

            x = torch.tensor(x, requires_grad=True)
            fn(x).backward()
            return x.grad.numpy()
        raise NotImplementedError(backend)


def _numpy(x):
    if isinstance(x, (list, tuple)):
        return np.asarray([_numpy(v) for v in x])
    return np.asarray(ops.convert_to_numpy(x))


def _clean(config):
    # The name of a revived object may carry a new suffix; everything else
    # must match.
    return {key: value for key, value in config.items() if key != "name"}
