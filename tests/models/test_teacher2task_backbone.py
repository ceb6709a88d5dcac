import os

import keras
import keras_hub
import numpy as np
import pytest

from keras_t2t.models import Teacher2TaskBackbone
from tests.test_case import TestCase

TINY_T5 = {
    "vocabulary_size": 20,
    "num_layers": 2,
    "num_heads": 2,
    "hidden_dim": 8,
    "intermediate_dim": 16,
    "dropout": 0.0,
}
# The layout that takes a `teacher_id` per example.
PER_EXAMPLE = dict(TINY_T5, task_layout="per_example")


def text_inputs():
    return {
        "teacher_id": np.array([0, 3], "int32"),
        "token_ids": np.array([[5, 6, 7, 0, 0], [4, 9, 2, 8, 1]], "int32"),
        "padding_mask": np.array([[1, 1, 1, 0, 0], [1] * 5], "int32"),
    }


def feature_inputs():
    return {
        "teacher_id": np.array([1, 2], "int32"),
        "features": np.random.default_rng(0).random((2, 5, 3), "float32"),
        "padding_mask": np.array([[1, 1, 1, 1, 0], [1] * 5], "int32"),
    }


def feature_kwargs(init_kwargs):
    """`init_kwargs` on 3 features, with absolute positions."""
    return {
        **init_kwargs,
        "vocabulary_size": None,
        "feature_dim": 3,
        "max_sequence_length": 6,
    }


class Teacher2TaskBackboneTest(TestCase):
    def setUp(self):
        super().setUp()
        self.init_kwargs = dict(
            PER_EXAMPLE, num_teachers=3, embedding_stddev=0.1
        )
        self.input_data = text_inputs()

    def test_backbone_basics(self):
        # Text and feature input, under every dtype check too (keras-hub
        # skips torch on CPU in the precision check; these layers run).
        shapes = {"sequence_output": (2, 6, 8), "pooled_output": (2, 8)}
        backbone = self.run_backbone_test(
            Teacher2TaskBackbone, self.init_kwargs, self.input_data, shapes
        )
        outputs = backbone(self.input_data)
        self.assertAllClose(
            outputs["pooled_output"], outputs["sequence_output"][:, 0]
        )
        self.assertEqual(backbone.input_mode, "text")

        backbone = self.run_backbone_test(
            Teacher2TaskBackbone,
            feature_kwargs(self.init_kwargs),
            feature_inputs(),
            shapes,
        )
        self.assertIsNone(backbone.token_embedding)
        self.assertEqual(backbone.sequence_input_name, "features")
        self.assertEqual(backbone.max_sequence_length, 6)

    def test_teacher_id_changes_the_output(self):
        backbone = Teacher2TaskBackbone(num_teachers=3, **PER_EXAMPLE)
        inputs = text_inputs()
        inputs["teacher_id"] = np.array([0, 0], "int32")
        ground_truth = backbone(inputs)["pooled_output"]
        inputs["teacher_id"] = np.array([2, 2], "int32")
        teacher = backbone(inputs)["pooled_output"]
        difference = keras.ops.convert_to_numpy(ground_truth - teacher)
        self.assertGreater(float(np.abs(difference).max()), 1e-4)

    def test_padding_is_masked_and_the_teacher_token_attended(self):
        backbone = Teacher2TaskBackbone(num_teachers=3, **PER_EXAMPLE)
        inputs = text_inputs()
        expected = backbone(inputs)["pooled_output"]
        inputs["token_ids"][0, 3:] = [11, 12]  # Only padding changes.
        self.assertAllClose(
            backbone(inputs)["pooled_output"], expected, atol=1e-5
        )

    def test_no_decoder_weights(self):
        backbone = Teacher2TaskBackbone(num_teachers=3, **PER_EXAMPLE)
        t5 = keras_hub.models.T5Backbone(**TINY_T5)
        encoder_weights = sum(
            int(np.prod(w.shape))
            for layer in t5.layers
            if "decoder" not in layer.name
            for w in layer.weights
        )
        teacher_weights = 4 * 8
        self.assertEqual(
            backbone.count_params(), encoder_weights + teacher_weights
        )
        self.assertFalse(any("decoder" in w.path for w in backbone.weights))

    def test_from_t5_backbone_carries_encoder_weights(self):
        t5 = keras_hub.models.T5Backbone(**TINY_T5)
        backbone = Teacher2TaskBackbone.from_t5_backbone(
            t5, num_teachers=2, task_layout="per_example"
        )
        self.assert_encoder_weights_equal(backbone, t5)
        self.assertEqual(backbone.num_teachers, 2)

    def test_preset_round_trip_from_t5(self):
        t5 = keras_hub.models.T5Backbone(**TINY_T5)
        preset = os.path.join(self.get_temp_dir(), "t5_tiny")
        t5.save_to_preset(preset)
        backbone = Teacher2TaskBackbone.from_preset(
            preset, num_teachers=3, task_layout="per_example"
        )
        self.assert_encoder_weights_equal(backbone, t5)
        self.assertEqual(backbone.vocabulary_size, TINY_T5["vocabulary_size"])
        # The same encoder, on feature input.
        features = Teacher2TaskBackbone.from_preset(
            preset, num_teachers=3, feature_dim=6
        )
        self.assertEqual(features.input_mode, "features")
        self.assertAllClose(
            features.get_layer("transformer_encoder_layer_1").weights[0],
            t5.get_layer("transformer_encoder_layer_1").weights[0],
        )

    def test_preset_round_trip_own(self):
        backbone = Teacher2TaskBackbone(num_teachers=3, **PER_EXAMPLE)
        preset = os.path.join(self.get_temp_dir(), "t2t_tiny")
        backbone.save_to_preset(preset)
        revived = Teacher2TaskBackbone.from_preset(preset)
        self.assertIsInstance(revived, Teacher2TaskBackbone)
        self.assertEqual(len(revived.weights), len(backbone.weights))
        for expected, actual in zip(
            backbone.weights, revived.weights, strict=True
        ):
            self.assertAllEqual(actual, expected)
        self.assertAllClose(
            revived(text_inputs())["pooled_output"],
            backbone(text_inputs())["pooled_output"],
        )

    def test_t5_preset_needs_num_teachers(self):
        preset = os.path.join(self.get_temp_dir(), "t5_tiny")
        keras_hub.models.T5Backbone(**TINY_T5).save_to_preset(preset)
        with pytest.raises(ValueError, match="pass `num_teachers`"):
            Teacher2TaskBackbone.from_preset(preset)

    def test_exactly_one_input_mode(self):
        with pytest.raises(ValueError, match="exactly one"):
            Teacher2TaskBackbone(num_teachers=2, feature_dim=3, **TINY_T5)
        with pytest.raises(ValueError, match="exactly one"):
            Teacher2TaskBackbone(
                num_teachers=2, **{**TINY_T5, "vocabulary_size": None}
            )

    def test_from_t5_backbone_rejects_other_models(self):
        backbone = Teacher2TaskBackbone(num_teachers=3, **PER_EXAMPLE)
        with pytest.raises(ValueError, match="T5Backbone"):
            Teacher2TaskBackbone.from_t5_backbone(backbone, num_teachers=3)

    def assert_encoder_weights_equal(self, backbone, t5):
        self.assertAllEqual(
            backbone.token_embedding.embeddings, t5.token_embedding.embeddings
        )
        names = ["encoder_output_layer_norm"] + [
            f"transformer_encoder_layer_{i}" for i in range(t5.num_layers)
        ]
        for name in names:
            expected = t5.get_layer(name).weights
            actual = backbone.get_layer(name).weights
            self.assertEqual(len(actual), len(expected))
            self.assertGreater(len(actual), 0)
            for a, e in zip(actual, expected, strict=True):
                self.assertAllEqual(a, e)


class LayoutMapTest(TestCase):
    def test_layout_map_shards_large_weights_only(self):
        devices = ["cpu:0"]
        mesh = keras.distribution.DeviceMesh(
            (1, 1), axis_names=("batch", "model"), devices=devices
        )
        layout_map = Teacher2TaskBackbone.get_layout_map(mesh)
        backbone = Teacher2TaskBackbone(num_teachers=2, **PER_EXAMPLE)
        layouts = {
            variable.path: layout_map[variable.path]
            for variable in backbone.weights
        }
        axes = {
            path: None if layout is None else tuple(layout.axes)
            for path, layout in layouts.items()
        }
        self.assertEqual(axes["token_embedding/embeddings"], ("model", None))
        self.assertIsNone(axes["teacher_embedding/embeddings"])
        self.assertIsNone(axes["encoder_output_layer_norm/weight"])
        layer = "transformer_encoder_layer_1"
        for name in ("query", "key", "value"):
            path = f"{layer}/self_attention/{name}_projector/kernel"
            self.assertEqual(axes[path], (None, "model"))
        self.assertEqual(
            axes[f"{layer}/self_attention/output_projector/kernel"],
            ("model", None),
        )
        self.assertEqual(
            axes[f"{layer}/gate_projector/kernel"], (None, "model")
        )
        self.assertEqual(
            axes[f"{layer}/output_projector/kernel"], ("model", None)
        )

    def test_layout_map_needs_the_model_axis(self):
        devices = ["cpu:0"]
        mesh = keras.distribution.DeviceMesh(
            (1,), axis_names=("data",), devices=devices
        )
        with self.assertRaisesRegex(ValueError, "no axis 'model'"):
            Teacher2TaskBackbone.get_layout_map(mesh)


def packed_backbone(num_teachers=3, **kwargs):
    return Teacher2TaskBackbone(
        num_teachers=num_teachers, task_layout="packed", **TINY_T5, **kwargs
    )


class TaskTokensTestCase(TestCase):
    """Tests of a backbone whose task tokens lead its sequence."""

    def run_task_backbone_test(self, init_kwargs, inputs, length, num_tasks):
        """`run_backbone_test` on two rows of width 8, `length` positions of
        which the first `num_tasks` are the task outputs (the first of
        them the pooled output)."""
        shapes = {
            "sequence_output": (2, length, 8),
            "task_output": (2, num_tasks, 8),
            "pooled_output": (2, 8),
        }
        backbone = self.run_backbone_test(
            Teacher2TaskBackbone, init_kwargs, inputs, shapes
        )
        outputs = backbone(inputs)
        self.assertAllClose(
            outputs["task_output"], outputs["sequence_output"][:, :num_tasks]
        )
        self.assertAllClose(
            outputs["pooled_output"], outputs["sequence_output"][:, 0]
        )
        return backbone


class PackedTeacher2TaskBackboneTest(TaskTokensTestCase):
    def setUp(self):
        super().setUp()
        self.init_kwargs = dict(TINY_T5, num_teachers=3, task_layout="packed")
        self.input_data = text_inputs()
        del self.input_data["teacher_id"]

    def test_backbone_basics(self):
        backbone = self.run_task_backbone_test(
            self.init_kwargs, self.input_data, 9, 4
        )
        self.assertNotIn("teacher_id", backbone.input)
        self.assertTrue(backbone.packed)
        self.assertEqual(backbone.task_layout, "packed")

        features = feature_inputs()
        del features["teacher_id"]
        backbone = self.run_task_backbone_test(
            feature_kwargs(self.init_kwargs), features, 9, 4
        )
        self.assertTrue(backbone.packed)
        self.assertEqual(backbone.max_sequence_length, 6)

    def test_input_encoding_ignores_the_task_tokens(self):
        # Input positions attend only to input positions: changing every
        # task vector leaves their encoding exactly as it was, and moves
        # the task outputs.
        backbone = packed_backbone()
        inputs = text_inputs()
        del inputs["teacher_id"]
        before = keras.ops.convert_to_numpy(backbone(inputs)["sequence_output"])
        table = backbone.task_tokens.embeddings
        table.assign(table + 1.0)
        after = keras.ops.convert_to_numpy(backbone(inputs)["sequence_output"])
        self.assertAllClose(after[:, 4:], before[:, 4:], atol=1e-6)
        self.assertGreater(np.abs(after[:, :4] - before[:, :4]).max(), 1e-3)

    def test_tasks_do_not_see_each_other_or_padding(self):
        # Each task position attends to itself and the input only: moving
        # task 2's vector changes task 2's output and no other; changing a
        # padded token changes nothing.
        backbone = packed_backbone()
        inputs = text_inputs()
        del inputs["teacher_id"]
        before = keras.ops.convert_to_numpy(backbone(inputs)["task_output"])
        table = keras.ops.convert_to_numpy(backbone.task_tokens.embeddings)
        table[2] += 1.0
        backbone.task_tokens.embeddings.assign(table)
        after = keras.ops.convert_to_numpy(backbone(inputs)["task_output"])
        changed = np.abs(after - before).max(axis=(0, 2)) > 1e-4
        self.assertAllEqual(changed, [False, False, True, False])

        inputs["token_ids"] = inputs["token_ids"].copy()
        inputs["token_ids"][0, 3:] = [9, 9]  # Padded positions of row 0.
        again = keras.ops.convert_to_numpy(backbone(inputs)["task_output"])
        self.assertAllClose(again, after, atol=1e-6)

    def test_unknown_layout(self):
        with self.assertRaisesRegex(ValueError, "task_layout"):
            Teacher2TaskBackbone(num_teachers=2, task_layout="fused", **TINY_T5)

    def test_from_t5_backbone_carries_encoder_weights(self):
        t5 = keras_hub.models.T5Backbone(**TINY_T5)
        backbone = Teacher2TaskBackbone.from_t5_backbone(
            t5, num_teachers=2, task_layout="packed"
        )
        self.assertTrue(backbone.packed)
        self.assertAllClose(
            backbone.get_layer("transformer_encoder_layer_1").get_weights()[0],
            t5.get_layer("transformer_encoder_layer_1").get_weights()[0],
        )


class PositionEmbeddingTest(TestCase):
    """`max_sequence_length` adds learned absolute positions to the input."""

    def feature_backbone(self, **kwargs):
        return Teacher2TaskBackbone(
            num_teachers=2,
            feature_dim=3,
            task_layout="packed",
            **{**TINY_T5, "vocabulary_size": None},
            **kwargs,
        )

    def inputs(self, length=4):
        return {
            "features": np.random.default_rng(0)
            .random((2, length, 3))
            .astype("float32"),
            "padding_mask": np.ones((2, length), "int32"),
        }

    def test_positions_move_the_output(self):
        backbone = self.feature_backbone(max_sequence_length=6)
        self.assertEqual(
            tuple(backbone.position_embedding.position_embeddings.shape),
            (6, 8),
        )
        inputs = self.inputs()
        before = keras.ops.convert_to_numpy(backbone(inputs)["task_output"])
        table = keras.ops.convert_to_numpy(
            backbone.position_embedding.position_embeddings
        )
        table[1] += 1.0
        backbone.position_embedding.position_embeddings.assign(table)
        after = keras.ops.convert_to_numpy(backbone(inputs)["task_output"])
        self.assertGreater(np.abs(after - before).max(), 1e-3)
        # Positions past the input are not used.
        table[5] += 1.0
        backbone.position_embedding.position_embeddings.assign(table)
        again = keras.ops.convert_to_numpy(backbone(inputs)["task_output"])
        self.assertAllClose(again, after, atol=1e-6)

    def test_default_has_none(self):
        backbone = self.feature_backbone()
        self.assertIsNone(backbone.position_embedding)
        self.assertIsNone(backbone.get_config()["max_sequence_length"])

    def test_bad_length(self):
        with self.assertRaisesRegex(ValueError, "max_sequence_length"):
            self.feature_backbone(max_sequence_length=0)


def sparse_inputs():
    inputs = text_inputs()
    del inputs["teacher_id"]
    # Row 0: the ground truth and teacher 2; row 1: ground truth, 3, 1.
    inputs["task_ids"] = np.array([[0, 2, -1], [0, 3, 1]], "int32")
    return inputs


class SparseTeacher2TaskBackboneTest(TaskTokensTestCase):
    def setUp(self):
        super().setUp()
        self.init_kwargs = dict(TINY_T5, num_teachers=3)
        self.input_data = sparse_inputs()

    def test_backbone_basics(self):
        backbone = self.run_task_backbone_test(
            self.init_kwargs, self.input_data, 8, 3
        )
        self.assertEqual(backbone.task_layout, "sparse")  # The default.
        self.assertTrue(backbone.packed and backbone.sparse)

    def test_a_task_reads_a_row_alike_in_any_slot(self):
        # The output of a task depends on the row and the task, not on its
        # slot, the other tasks of the row or the batch's padding: the
        # ground truth alone (inference) reads what it reads in training.
        backbone = Teacher2TaskBackbone(**self.init_kwargs)
        inputs = sparse_inputs()

        def read(task_ids):
            outputs = backbone(dict(inputs, task_ids=np.array(task_ids)))
            return keras.ops.convert_to_numpy(outputs["task_output"])

        every = read([[0, 1, 2, 3]] * 2)
        alone = read([[0], [0]])
        mixed = read([[2, -1, 0, -1, -1], [3, 1, 0, 2, -1]])
        self.assertAllClose(alone[:, 0], every[:, 0], atol=1e-5)
        self.assertAllClose(mixed[:, 2], every[:, 0], atol=1e-5)
        self.assertAllClose(mixed[0, 0], every[0, 2], atol=1e-5)
        self.assertAllClose(mixed[1, :2], every[1, [3, 1]], atol=1e-5)
        # ...and different tasks read differently.
        self.assertGreater(np.abs(every[:, 1] - every[:, 2]).max(), 1e-3)

    def test_input_encoding_ignores_the_task_tokens(self):
        backbone = Teacher2TaskBackbone(**self.init_kwargs)
        inputs = sparse_inputs()
        before = backbone(inputs)["sequence_output"]
        few = backbone(dict(inputs, task_ids=np.array([[1], [0]])))
        self.assertAllClose(
            few["sequence_output"][:, 1:], before[:, 3:], atol=1e-5
        )

    def test_the_position_bias_table_trains_once_and_loads(self):
        # The slot bias reads the first layer's table without owning it:
        # one copy among the weights, saved with its layer.
        backbone = Teacher2TaskBackbone(**self.init_kwargs)
        owner = backbone.get_layer("transformer_encoder_layer_0")
        table = owner.self_attention.relative_attention_bias
        self.assertEqual(
            sum(w is table for w in backbone.weights), 1, "one table"
        )
        self.assertEqual(
            len(backbone.weights),
            len(
                Teacher2TaskBackbone(
                    **self.init_kwargs, task_layout="packed"
                ).weights
            ),
        )
        table.assign(table + 1.0)
        path = os.path.join(self.get_temp_dir(), "sparse.keras")
        backbone.save(path)
        loaded = keras.saving.load_model(path, safe_mode=True)
        self.assertAllClose(
            loaded(self.input_data)["task_output"],
            backbone(self.input_data)["task_output"],
        )

    def test_from_t5_backbone(self):
        t5 = keras_hub.models.T5Backbone(**TINY_T5)
        backbone = Teacher2TaskBackbone.from_t5_backbone(t5, num_teachers=2)
        self.assertTrue(backbone.sparse)
        self.assertAllClose(
            backbone.get_layer("transformer_encoder_layer_0").get_weights()[0],
            t5.get_layer("transformer_encoder_layer_0").get_weights()[0],
        )

    def test_configs_from_before_layouts_load_per_example(self):
        old = Teacher2TaskBackbone(**PER_EXAMPLE, num_teachers=2).get_config()
        del old["task_layout"]
        self.assertEqual(
            Teacher2TaskBackbone.from_config(old).task_layout, "per_example"
        )
