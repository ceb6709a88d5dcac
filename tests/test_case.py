import copy
import os
import re
import shutil
import tempfile
import unittest

import keras
import numpy as np
import tensorflow as tf
from keras import ops
from keras import tree

from keras_t2t.models import Teacher2TaskBackbone
from keras_t2t.models import Teacher2TaskClassifier

# The tests' Teacher2Task backbone, tiny as keras-hub's test configs are;
# a feature model (8 features) unless `vocabulary_size` is given. Per
# example (a `teacher_id` per example) unless `task_layout` is given: most
# tests exercise the checks, training and saving paths through it; the
# sparse layout (the library's default) and the packed one have tests of
# their own.
TINY_BACKBONE = {
    "task_layout": "per_example",
    "num_teachers": 3,
    "num_layers": 2,
    "num_heads": 2,
    "hidden_dim": 16,
    "intermediate_dim": 32,
    "dropout": 0.0,
}

# Smaller still, for tests that only need a model that runs.
ONE_LAYER = {"num_layers": 1, "hidden_dim": 8, "intermediate_dim": 16}
# The smallest: one layer, one head, width 4.
SMALLEST = {
    "num_layers": 1,
    "num_heads": 1,
    "hidden_dim": 4,
    "intermediate_dim": 8,
}


def tiny_backbone(**config):
    """A `Teacher2TaskBackbone` of `TINY_BACKBONE`, `config` overriding it.

    Used by the tests and benchmarks/ (which override the sizes), so that
    a model's configuration is written once.
    """
    config = {**TINY_BACKBONE, **config}
    if config.get("vocabulary_size") is None:
        config.setdefault("feature_dim", 8)
    return Teacher2TaskBackbone(**config)


def tiny_classifier(backbone=None, **kwargs):
    """A `Teacher2TaskClassifier` on `backbone` (`tiny_backbone()`).

    `kwargs` go to the classifier (`compile=False` too: a KerasHub task
    compiles itself with its defaults unless told not to).
    """
    return Teacher2TaskClassifier(backbone or tiny_backbone(), **kwargs)


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

    def run_precision_test(self, cls, init_kwargs, input_data):
        """Outputs, output specs, weights and sublayers follow the policy.

        As keras-hub's `run_precision_test`: the model is built under each
        of `mixed_float16`, `mixed_bfloat16` and `bfloat16`, called eagerly
        and symbolically (`compute_output_spec` on backend tensors), and
        every float output is in the compute dtype, every float weight in
        the variable dtype, every sublayer on the policy.
        """
        input_data = tree.map_structure(ops.convert_to_tensor, input_data)
        for name in ("mixed_float16", "mixed_bfloat16", "bfloat16"):
            policy = keras.dtype_policies.get(name)
            model = cls(**{**init_kwargs, "dtype": policy})
            outputs = tree.flatten(model(input_data))
            specs = tree.flatten(model.compute_output_spec(input_data))
            for value in outputs + specs:
                dtype = keras.backend.standardize_dtype(value.dtype)
                if "float" in dtype:
                    self.assertEqual(dtype, policy.compute_dtype, name)
            for weight in model.weights:
                if "float" in weight.dtype:
                    self.assertEqual(
                        weight.dtype, policy.variable_dtype, weight.path
                    )
            for layer in model._flatten_layers():
                if isinstance(layer, keras.layers.InputLayer):
                    continue
                self.assertEqual(
                    layer.compute_dtype, policy.compute_dtype, layer.name
                )
                self.assertEqual(
                    layer.variable_dtype, policy.variable_dtype, layer.name
                )

    def run_quantization_test(self, instance, cls, init_kwargs, input_data):
        """`int8` and `float8` weights build, run and round-trip config.

        As keras-hub's `run_quantization_test`: every `Dense`/`EinsumDense`
        (and, for `int8`, `Embedding`) layer of `instance` (a `cls` of
        `init_kwargs`) gets a quantized policy through a `DTypePolicyMap`;
        the model runs, its config round-trips and the weights load into
        the revived model.
        """
        for mode in ("int8", "float8"):
            kinds = [keras.layers.Dense, keras.layers.EinsumDense]
            if mode == "int8":
                kinds.append(keras.layers.Embedding)
            policy_map = keras.dtype_policies.DTypePolicyMap("float32")
            for layer in instance._flatten_layers():
                if type(layer) in kinds:
                    policy_map[layer.path] = keras.dtype_policies.get(
                        f"{mode}_from_float32"
                    )
            model = cls(**{**init_kwargs, "dtype": policy_map})
            model(input_data)
            layers = model._flatten_layers()
            quantized = [layer for layer in layers if type(layer) in kinds]
            self.assertTrue(quantized)
            for layer in quantized:
                self.assertEqual(layer.quantization_mode, mode, layer.path)
            config = model.get_config()
            revived = cls.from_config(config)
            self.assertEqual(config, revived.get_config())
            revived.set_weights(model.get_weights())

    def run_backbone_test(
        self,
        cls,
        init_kwargs,
        input_data,
        expected_output_shape,
        variable_length_data=None,
        run_mixed_precision_check=True,
        run_quantization_check=True,
    ):
        """Config, output shapes, symbolic shapes, lengths, name, dtypes.

        As keras-hub's `run_backbone_test`: the config round trips
        (`run_serialization_test`); the eager outputs have
        `expected_output_shape` (a dict of shapes by output name) and the
        shapes `compute_output_spec` gives on symbolic inputs; inputs of
        other sequence lengths (`variable_length_data`, by default
        `input_data` cut to 2 positions) run, eager and symbolic shapes
        agreeing; the name follows the class; then `run_precision_test`
        and `run_quantization_test`. Returns the backbone.
        """
        backbone = cls(**init_kwargs)
        self.run_serialization_test(backbone)
        self.assertEqual(_shapes(backbone(input_data)), expected_output_shape)
        if variable_length_data is None:
            variable_length_data = [tree.map_structure(_cut_to_2, input_data)]
        for data in [input_data, *variable_length_data]:
            symbolic = tree.map_structure(_symbolic, data)
            self.assertEqual(
                _shapes(backbone.compute_output_spec(symbolic)),
                _shapes(backbone(data)),
            )
        name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", cls.__name__)
        name = re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()
        self.assertRegex(backbone.name, name)
        if run_mixed_precision_check:
            self.run_precision_test(cls, init_kwargs, input_data)
        if run_quantization_check:
            self.run_quantization_test(backbone, cls, init_kwargs, input_data)
        return backbone

    def run_task_test(
        self,
        cls,
        init_kwargs,
        train_data,
        expected_output_shape=None,
        batch_size=2,
        compile_kwargs=None,
    ):
        """Config, `predict` and one `fit` step, on arrays and a dataset.

        As keras-hub's `run_task_test`: the task (compiled with
        `compile_kwargs`, if given) round-trips its config
        (`run_serialization_test`); `predict` on the inputs of `train_data`
        (`(x, y)` or `(x, y, sample_weight)` of `batch_size` rows, one
        step) has `expected_output_shape` and equals `predict` on a
        `tf.data` dataset of them; `fit` runs to a finite loss on the
        arrays and on a dataset of `train_data`. Returns the trained task.
        """
        task = cls(**init_kwargs)
        if compile_kwargs:
            task.compile(**compile_kwargs)
        self.run_serialization_test(task)
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(train_data)

        output = task.predict(x, batch_size=batch_size, verbose=0)
        if expected_output_shape is not None:
            self.assertEqual(tuple(output.shape), expected_output_shape)
        inputs = tf.data.Dataset.from_tensor_slices(x).batch(batch_size)
        self.assertAllClose(task.predict(inputs, verbose=0), output)

        history = task.fit(
            x, y, sample_weight=sample_weight, batch_size=batch_size, verbose=0
        )
        self.assertTrue(np.isfinite(history.history["loss"]).all())
        dataset = tf.data.Dataset.from_tensor_slices(train_data)
        history = task.fit(dataset.batch(batch_size), verbose=0)
        self.assertTrue(np.isfinite(history.history["loss"]).all())
        return task

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


def _shapes(outputs):
    return tree.map_structure(lambda x: tuple(x.shape), outputs)


def _symbolic(x):
    return keras.KerasTensor(x.shape, dtype=x.dtype)


def _cut_to_2(x):
    # Sequence inputs (batch, seq, ...) to 2 positions; per-row ones as
    # they are.
    return x[:, :2] if len(x.shape) > 1 else x
