import keras
import numpy as np
import pytest
import tensorflow as tf
from sklearn.metrics import average_precision_score

import keras_t2t
from keras_t2t.models import Teacher2TaskClassifier
from tests.test_case import TestCase
from tests.test_case import tiny_backbone
from tests.test_case import tiny_classifier


def expanded(num_rows=256, **kwargs):
    data = keras_t2t.datasets.make_synthetic_teachers(
        num_rows=num_rows, **kwargs
    )
    x, y, weight = keras_t2t.data.expand_arrays(
        data["inputs"],
        data["labels"],
        data["teacher_scores"],
        task_layout="per_example",
    )
    return data, x, y, weight


def text_inputs():
    """Two rows for a text backbone of 30 tokens (`vocabulary_size=30`)."""
    return {
        "token_ids": np.array([[5, 6, 7, 0, 0], [4, 9, 2, 8, 1]], "int32"),
        "padding_mask": np.array([[1, 1, 1, 0, 0], [1] * 5], "int32"),
    }


def feature_inputs():
    """Two rows for `tiny_backbone()`, of 8 features."""
    return {
        "features": np.random.default_rng(0).random((2, 5, 8), "float32"),
        "padding_mask": np.array([[1, 1, 1, 1, 0], [1] * 5], "int32"),
    }


# Every layout's classifier: two labels, three named teachers.
INIT_KWARGS = {
    "num_labels": 2,
    "teacher_vocabulary": keras_t2t.TeacherVocabulary(["a", "b", "c"]),
}


class Teacher2TaskClassifierTest(TestCase):
    def setUp(self):
        super().setUp()
        # The backbone is made by the test that needs it, not for each one.
        self.init_kwargs = dict(INIT_KWARGS, dropout=0.1)
        self.input_data = {"teacher_id": np.array([0, 2], "int32")}
        self.input_data.update(feature_inputs())
        y = np.array([[1.0, 0.0], [0.7, np.nan]], "float32")
        self.train_data = (self.input_data, y, np.array([1.0, 0.5], "float32"))

    def test_task_basics(self):
        classifier = self.run_task_test(
            Teacher2TaskClassifier,
            {**self.init_kwargs, "backbone": tiny_backbone()},
            self.train_data,
            expected_output_shape=(2, 2),
        )
        revived = self.run_model_saving_test(classifier, self.input_data)
        self.assertEqual(revived.num_labels, 2)
        vocabulary = self.init_kwargs["teacher_vocabulary"]
        self.assertEqual(revived.teacher_vocabulary, vocabulary)
        self.assertEqual(revived.teacher_vocabulary.teachers, ("a", "b", "c"))
        # The compile state survives, so training can go on.
        self.assertIsInstance(
            revived.loss, keras_t2t.losses.MaskedMultiTaskLoss
        )
        revived.fit(*self.train_data[:2], batch_size=2, verbose=0)

    def test_fit_lowers_the_loss_on_features(self):
        _, x, y, weight = expanded(num_rows=256)
        classifier = tiny_classifier()
        history = classifier.fit(
            x, y, sample_weight=weight, epochs=3, batch_size=32, verbose=0
        )
        losses = history.history["loss"]
        self.assertLess(losses[-1], 0.8 * losses[0], losses)
        self.assertIn("pr_auc", history.history)

    def test_fit_lowers_the_loss_on_text(self):
        _, x, y, weight = expanded(
            num_rows=256, vocabulary_size=30, num_labels=2
        )
        classifier = tiny_classifier(
            tiny_backbone(vocabulary_size=30), num_labels=2
        )
        history = classifier.fit(x, y, epochs=3, batch_size=32, verbose=0)
        losses = history.history["loss"]
        self.assertLess(losses[-1], 0.8 * losses[0], losses)

    def test_predict_defaults_to_the_ground_truth_task(self):
        data, _, _, _ = expanded(num_rows=16)
        classifier = tiny_classifier()
        implicit = classifier.predict(data["inputs"], verbose=0)
        explicit = classifier.predict(
            {**data["inputs"], "teacher_id": np.zeros(16, "int32")}, verbose=0
        )
        self.assertAllClose(implicit, explicit)
        self.assertEqual(implicit.shape, (16, 1))
        # A feature model's padding mask defaults to all ones.
        unpadded = {"features": data["inputs"]["features"][:, :4]}
        self.assertAllClose(
            classifier.predict(unpadded, verbose=0),
            classifier.predict(
                {**unpadded, "padding_mask": np.ones((16, 4), "int32")},
                verbose=0,
            ),
        )
        self.assertTrue(((implicit > 0) & (implicit < 1)).all())

    def test_predict_on_no_rows_is_empty(self):
        classifier = tiny_classifier(num_labels=2)
        none = {"features": np.zeros((0, 5, 8), "float32")}
        self.assertEqual(classifier.predict(none, verbose=0).shape, (0, 2))
        every_task = classifier.predict(none, all_tasks=True, verbose=0)
        self.assertEqual(every_task.shape, (0, 4, 2))
        empty = tf.data.Dataset.from_tensor_slices(none).batch(4)
        self.assertEqual(classifier.predict(empty, verbose=0).shape, (0, 2))
        # With a combination of the teacher tasks, too.
        rng = np.random.default_rng(0)
        classifier.combination = keras_t2t.models.TaskCombination.fit(
            rng.random((20, 4, 2)), (rng.random((20, 2)) > 0.5) * 1.0
        )
        self.assertEqual(classifier.predict(none, verbose=0).shape, (0, 2))
        # The model still predicts (on JAX, Keras's own `predict` on no
        # batches left it unable to).
        some = {"features": np.random.rand(3, 5, 8).astype("float32")}
        self.assertEqual(classifier.predict(some, verbose=0).shape, (3, 2))
        packed = tiny_classifier(tiny_backbone(task_layout="packed"))
        self.assertEqual(packed.predict(none, verbose=0).shape, (0, 1))
        every_task = packed.predict(none, all_tasks=True, verbose=0)
        self.assertEqual(every_task.shape, (0, 4, 1))
        # Raw text through a preprocessor: no texts.
        from tests.data.test_text import tokenizer

        t5 = tokenizer()
        text = tiny_classifier(
            tiny_backbone(vocabulary_size=t5.vocabulary_size()),
            preprocessor=keras_t2t.models.Teacher2TaskPreprocessor(t5, 8),
        )
        self.assertEqual(text.predict({"text": []}, verbose=0).shape, (0, 1))
        self.assertEqual(text.predict({"text": ["a"]}, verbose=0).shape, (1, 1))

    def test_nan_targets_keep_weights_finite(self):
        _, x, y, _ = expanded(num_rows=32)
        y = y.copy()
        y[::2] = np.nan
        y[1::4, 0] = np.nan
        classifier = tiny_classifier()
        for _ in range(3):
            classifier.train_on_batch(
                {name: value[:32] for name, value in x.items()}, y[:32]
            )
        for weight in classifier.weights:
            value = keras.ops.convert_to_numpy(weight)
            self.assertTrue(np.isfinite(value).all(), weight.path)

    def test_metrics_see_only_the_ground_truth_task(self):
        _, x, y, _ = expanded(num_rows=128)
        classifier = tiny_classifier()
        results = classifier.evaluate(
            x, y, batch_size=1000, return_dict=True, verbose=0
        )
        # KerasHub's positional arguments (batch_size, sample_weight) pass
        # through as they are.
        positional = classifier.evaluate(
            x, y, 1000, None, return_dict=True, verbose=0
        )
        self.assertAlmostEqual(positional["pr_auc"], results["pr_auc"], 6)
        predictions = classifier.predict(x, verbose=0)
        is_ground_truth = x["teacher_id"] == 0
        # The same binned metric on the ground-truth rows alone: equal.
        metric = keras_t2t.metrics.PRAUC()
        metric.update_state(y[is_ground_truth], predictions[is_ground_truth])
        self.assertAlmostEqual(results["pr_auc"], float(metric.result()), 5)
        # And on all rows it would differ: the teachers' tasks are hidden.
        everything = keras_t2t.metrics.PRAUC()
        everything.update_state(y, predictions)
        self.assertNotAlmostEqual(
            results["pr_auc"], float(everything.result()), 3
        )
        expected = average_precision_score(
            y[is_ground_truth, 0], predictions[is_ground_truth, 0]
        )
        self.assertAlmostEqual(results["pr_auc"], expected, delta=0.005)

    def test_evaluate_without_ground_truth_examples_is_nan(self):
        _, x, y, _ = expanded(num_rows=32)
        teachers_only = x["teacher_id"] > 0
        x = {name: value[teachers_only] for name, value in x.items()}
        results = tiny_classifier().evaluate(
            x, y[teachers_only], return_dict=True, verbose=0
        )
        self.assertTrue(np.isfinite(results["loss"]))
        self.assertTrue(np.isnan(results["pr_auc"]), results)

    def test_teacher_id_outside_the_vocabulary(self):
        _, x, y, _ = expanded(num_rows=16)
        classifier = tiny_classifier()
        x["teacher_id"] = x["teacher_id"].copy()
        x["teacher_id"][5] = 4
        with pytest.raises(
            ValueError, match=r"\[0, 3\].*teacher_id=4 at example 5"
        ):
            classifier.fit(x, y, verbose=0)
        with pytest.raises(ValueError, match=r"\[0, 3\]"):
            classifier.predict(x, verbose=0)

    def test_teacher_id_outside_the_vocabulary_in_a_dataset(self):
        _, x, y, _ = expanded(num_rows=16)
        x["teacher_id"] = np.full_like(x["teacher_id"], -1)
        dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
        with pytest.raises(
            Exception, match=r"teacher_id.{0,2} must be in \[0, 3\]"
        ):
            tiny_classifier().fit(dataset, verbose=0)

    def test_feature_dim_mismatch(self):
        classifier = tiny_classifier()
        with pytest.raises(ValueError, match=r"feature_dim=8.*\(4, 5, 7\)"):
            classifier.predict({"features": np.zeros((4, 5, 7))}, verbose=0)

    def test_num_labels_mismatch(self):
        _, x, y, _ = expanded(num_rows=16)
        classifier = tiny_classifier(num_labels=2)
        with pytest.raises(ValueError, match=r"num_labels=2.*\(\d+, 1\)"):
            classifier.fit(x, y, verbose=0)
        dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
        with pytest.raises(ValueError, match=r"num_labels=2"):
            classifier.fit(dataset, verbose=0)

    def test_unexpected_and_missing_inputs(self):
        classifier = tiny_classifier()
        with pytest.raises(
            ValueError, match=r"Unexpected input\(s\) \['text'\]"
        ):
            classifier.predict(
                {"features": np.zeros((2, 3, 8)), "text": np.zeros(2)},
                verbose=0,
            )
        with pytest.raises(ValueError, match="Missing input 'features'"):
            classifier.predict({"teacher_id": np.zeros(2, "int32")}, verbose=0)

    def test_vocabulary_must_match_the_backbone(self):
        with pytest.raises(ValueError, match=r"2 teachers.*num_teachers=3"):
            tiny_classifier(
                teacher_vocabulary=keras_t2t.TeacherVocabulary(["a", "b"])
            )

    def test_fit_shuffles_arrays_and_splits_validation(self):
        _, x, y, weight = expanded(num_rows=64)

        def trained(**kwargs):
            keras.utils.set_random_seed(7)
            classifier = tiny_classifier()
            history = classifier.fit(
                x, y, sample_weight=weight, batch_size=16, verbose=0, **kwargs
            )
            return classifier.predict(x, verbose=0), history.history

        in_order, _ = trained(shuffle=False)
        in_order_again, _ = trained(shuffle=False)
        shuffled, history = trained(validation_split=0.25)
        self.assertAllClose(in_order, in_order_again)
        self.assertGreater(float(np.abs(shuffled - in_order).max()), 1e-4)
        self.assertIn("val_loss", history)
        self.assertIn("val_pr_auc", history)


def packed_table(num_rows=128, num_labels=1):
    """Synthetic rows and their packed targets `(rows, N + 1, labels)`."""
    data = keras_t2t.datasets.make_synthetic_teachers(
        num_rows=num_rows, num_labels=num_labels
    )
    y = np.concatenate(
        [data["labels"][:, None], data["teacher_scores"]], axis=1
    ).astype("float32")
    return data, y


class PackedTeacher2TaskClassifierTest(TestCase):
    def setUp(self):
        super().setUp()
        self.init_kwargs = dict(INIT_KWARGS)
        self.input_data = text_inputs()
        # Targets (rows, tasks, labels): the ground truth, then 3 teachers.
        y = np.random.default_rng(1).random((2, 4, 2)).astype("float32")
        y[0, 1] = np.nan
        self.train_data = (self.input_data, y)

    def test_task_basics(self):
        backbone = tiny_backbone(vocabulary_size=30, task_layout="packed")
        loss = keras_t2t.losses.MaskedMultiTaskLoss(
            normalize="tasks", task_weights=[2, 1, 1, 1]
        )
        classifier = self.run_task_test(
            Teacher2TaskClassifier,
            {**self.init_kwargs, "backbone": backbone},
            self.train_data,
            expected_output_shape=(2, 2),
            compile_kwargs={"loss": loss},
        )
        revived = self.run_model_saving_test(classifier, self.input_data)
        self.assertTrue(revived.backbone.packed)
        self.assertEqual(revived.loss.task_weights, [2.0, 1.0, 1.0, 1.0])
        revived.fit(*self.train_data, batch_size=2, verbose=0)

    def test_fit_lowers_the_loss(self):
        data, y = packed_table(num_rows=256, num_labels=2)
        for normalize in ("entries", "tasks"):
            classifier = tiny_classifier(
                tiny_backbone(task_layout="packed"), num_labels=2
            )
            classifier.compile(
                loss=keras_t2t.losses.MaskedMultiTaskLoss(normalize=normalize)
            )
            history = classifier.fit(
                data["inputs"], y, epochs=4, batch_size=32, verbose=0
            )
            losses = history.history["loss"]
            self.assertLess(losses[-1], 0.8 * losses[0], (normalize, losses))
            self.assertTrue(np.isfinite(history.history["pr_auc"]).all())

    def test_fit_on_a_packed_expansion(self):
        data, y = packed_table(num_rows=64)
        vocabulary = keras_t2t.TeacherVocabulary(["a", "b", "c"])
        table = {"features": data["inputs"]["features"], "label": y[:, 0]}
        table.update({name: y[:, k + 1] for k, name in enumerate("abc")})
        dataset = keras_t2t.data.expand(
            table,
            vocabulary,
            inputs="features",
            ground_truth="label",
            packed=True,
            batch_size=16,
        )
        classifier = tiny_classifier(
            tiny_backbone(task_layout="packed"), teacher_vocabulary=vocabulary
        )
        history = classifier.fit(dataset, epochs=2, verbose=0)
        self.assertTrue(np.isfinite(history.history["loss"]).all())

    def test_predict_reads_one_task_or_all(self):
        data, _ = packed_table(num_rows=10, num_labels=2)
        classifier = tiny_classifier(
            tiny_backbone(task_layout="packed"), num_labels=2
        )
        ground_truth = classifier.predict(data["inputs"], verbose=0)
        every_task = classifier.predict(
            data["inputs"], all_tasks=True, verbose=0
        )
        self.assertEqual(ground_truth.shape, (10, 2))
        self.assertEqual(every_task.shape, (10, 4, 2))
        self.assertAllClose(every_task[:, 0], ground_truth)

    def test_per_example_all_tasks_match_their_teacher_ids(self):
        data, x, _, _ = expanded(num_rows=6)
        classifier = tiny_classifier()
        every_task = classifier.predict(
            data["inputs"], all_tasks=True, verbose=0
        )
        self.assertEqual(every_task.shape, (6, 4, 1))
        for task in range(4):
            one = classifier.predict(
                {**data["inputs"], "teacher_id": np.full(6, task, "int32")},
                verbose=0,
            )
            self.assertAllClose(every_task[:, task], one, atol=1e-6)
        with self.assertRaisesRegex(ValueError, "without 'teacher_id'"):
            classifier.predict(x, all_tasks=True, verbose=0)

    def test_metrics_read_the_ground_truth_task(self):
        data, y = packed_table(num_rows=64)
        classifier = tiny_classifier(tiny_backbone(task_layout="packed"))
        classifier.compile()
        scores = classifier.predict(data["inputs"], verbose=0)
        results = classifier.evaluate(
            data["inputs"], y, batch_size=64, return_dict=True, verbose=0
        )
        labelled = ~np.isnan(y[:, 0, 0])
        expected = average_precision_score(
            y[labelled, 0, 0], scores[labelled, 0]
        )
        self.assertAlmostEqual(results["pr_auc"], expected, delta=0.01)

    def test_mixed_bfloat16_fit_trains(self):
        data, y = packed_table(num_rows=128)
        backbone = tiny_backbone(task_layout="packed", dtype="mixed_bfloat16")
        classifier = tiny_classifier(backbone, dtype="mixed_bfloat16")
        classifier.compile(optimizer=keras.optimizers.Adam(3e-3))
        history = classifier.fit(
            data["inputs"], y, epochs=4, batch_size=32, verbose=0
        )
        losses = history.history["loss"]
        self.assertTrue(np.all(np.isfinite(losses)), losses)
        self.assertLess(losses[-1], 0.7 * losses[0])
        for weight in classifier.weights:
            self.assertEqual(weight.dtype, "float32", weight.path)
        predictions = classifier.predict(data["inputs"], verbose=0)
        self.assertEqual(
            keras.backend.standardize_dtype(predictions.dtype), "bfloat16"
        )
        self.assertFalse(np.isnan(np.asarray(predictions, "float32")).any())

    def test_absolute_positions_fit_save_and_refuse_longer_inputs(self):
        data, y = packed_table(num_rows=32)
        length = data["inputs"]["features"].shape[1]
        classifier = tiny_classifier(
            tiny_backbone(task_layout="packed", max_sequence_length=length)
        )
        classifier.compile()
        classifier.fit(data["inputs"], y, epochs=1, batch_size=16, verbose=0)
        revived = self.run_model_saving_test(classifier, data["inputs"])
        self.assertEqual(revived.backbone.max_sequence_length, length)
        longer = {
            "features": np.zeros((2, length + 1, 8), "float32"),
            "padding_mask": np.ones((2, length + 1), "int32"),
        }
        with self.assertRaisesRegex(
            ValueError,
            rf"'features' has {length + 1} positions.*"
            rf"max_sequence_length={length}",
        ):
            classifier.predict(longer, verbose=0)

    def test_bad_inputs_and_targets(self):
        data, y = packed_table(num_rows=8)
        classifier = tiny_classifier(tiny_backbone(task_layout="packed"))
        with self.assertRaisesRegex(ValueError, "takes no 'teacher_id'"):
            classifier.predict(
                {**data["inputs"], "teacher_id": np.zeros(8, "int32")}
            )
        with self.assertRaisesRegex(ValueError, r"\(batch, 4, 1\)"):
            classifier.fit(data["inputs"], y[:, :3], verbose=0)

    def test_padding_for_devices_keeps_packed_rows_neutral(self):
        # A short last batch is padded to split over devices: packed rows
        # (no teacher id) get NaN targets on every task and weight 0.
        from keras_t2t.models._device_padding import pad_batch

        data, y = packed_table(num_rows=6)
        x = {k: tf.constant(v) for k, v in data["inputs"].items()}
        x, y, weight = pad_batch(x, tf.constant(y), None, multiple=4)
        self.assertEqual(tuple(y.shape), (8, 4, 1))
        self.assertTrue(np.isnan(y.numpy()[6:]).all())
        self.assertAllEqual(weight, [1, 1, 1, 1, 1, 1, 0, 0])
        self.assertAllEqual(x["padding_mask"].numpy()[6:], 0)


def sparse_table(num_rows=128, num_teachers=3, num_labels=1):
    """Synthetic rows and their sparse expansion, `(data, x, y)`."""
    data = keras_t2t.datasets.make_synthetic_teachers(
        num_rows=num_rows, num_teachers=num_teachers, num_labels=num_labels
    )
    x, y, _ = keras_t2t.data.expand_arrays(
        data["inputs"], data["labels"], data["teacher_scores"]
    )
    return data, x, y


class SparseTeacher2TaskClassifierTest(TestCase):
    def setUp(self):
        super().setUp()
        self.init_kwargs = dict(INIT_KWARGS)
        self.input_data = dict(
            text_inputs(), task_ids=np.array([[0, 2, -1], [0, 3, 1]], "int32")
        )
        y = np.random.default_rng(1).random((2, 3, 2)).astype("float32")
        y[0, 2] = np.nan  # The empty slot.
        self.train_data = (self.input_data, y)

    def test_task_basics(self):
        backbone = tiny_backbone(vocabulary_size=30, task_layout="sparse")
        classifier = self.run_task_test(
            Teacher2TaskClassifier,
            {**self.init_kwargs, "backbone": backbone},
            self.train_data,
            expected_output_shape=(2, 3, 2),
        )
        revived = self.run_model_saving_test(classifier, self.input_data)
        self.assertTrue(revived.backbone.sparse)
        revived.fit(*self.train_data, batch_size=2, verbose=0)

    def test_fit_on_a_sparse_expansion_lowers_the_loss(self):
        data, x, y = sparse_table(num_rows=256, num_labels=2)
        self.assertEqual(x["task_ids"].shape, y.shape[:2])
        classifier = tiny_classifier(
            tiny_backbone(task_layout="sparse"), num_labels=2
        )
        classifier.compile()
        history = classifier.fit(x, y, epochs=4, batch_size=32, verbose=0)
        losses = history.history["loss"]
        self.assertLess(losses[-1], 0.8 * losses[0], losses)
        self.assertTrue(np.isfinite(history.history["pr_auc"]).all())

    def test_predict_reads_the_tasks_asked_for_alike(self):
        data, _, _ = sparse_table(num_rows=10, num_labels=2)
        inputs = data["inputs"]
        classifier = tiny_classifier(
            tiny_backbone(task_layout="sparse"), num_labels=2
        )
        ground_truth = classifier.predict(inputs, verbose=0)
        every = classifier.predict(inputs, all_tasks=True, verbose=0)
        some = classifier.predict(inputs, all_tasks=[3, 0], verbose=0)
        self.assertEqual(ground_truth.shape, (10, 2))
        self.assertEqual(every.shape, (10, 4, 2))
        self.assertEqual(some.shape, (10, 2, 2))
        # A task reads the same in any slot and beside any other task.
        self.assertAllClose(every[:, 0], ground_truth, atol=1e-5)
        self.assertAllClose(some[:, 1], ground_truth, atol=1e-5)
        self.assertAllClose(some[:, 0], every[:, 3], atol=1e-5)
        # Given its own task ids, a row's every slot comes back.
        slots = classifier.predict(
            dict(inputs, task_ids=np.tile([0, 2], (10, 1))), verbose=0
        )
        self.assertAllClose(slots, every[:, [0, 2]], atol=1e-5)
        with self.assertRaisesRegex(ValueError, "task 7"):
            classifier.predict(inputs, all_tasks=[0, 7], verbose=0)

    def test_metrics_read_slot_zero(self):
        data, x, y = sparse_table(num_rows=64)
        classifier = tiny_classifier(tiny_backbone(task_layout="sparse"))
        classifier.compile()
        scores = classifier.predict(data["inputs"], verbose=0)
        results = classifier.evaluate(
            x, y, batch_size=64, return_dict=True, verbose=0
        )
        labelled = ~np.isnan(data["labels"][:, 0])
        expected = average_precision_score(
            data["labels"][labelled, 0], scores[labelled, 0]
        )
        self.assertAlmostEqual(results["pr_auc"], expected, delta=0.01)

    def test_bad_task_ids_and_targets(self):
        classifier = tiny_classifier(
            tiny_backbone(vocabulary_size=30, task_layout="sparse"),
            num_labels=2,
        )
        x, y = self.train_data
        bad = dict(x, task_ids=np.array([[0, 4, -1], [0, 1, 2]]))
        with self.assertRaisesRegex(ValueError, "example 0, slot 1"):
            classifier.fit(bad, y, verbose=0)
        with self.assertRaisesRegex(ValueError, "3 slots per row"):
            classifier.fit(x, y[:, :2], verbose=0)
        with self.assertRaisesRegex(ValueError, "teacher_id"):
            classifier.predict(dict(text_inputs(), teacher_id=np.zeros(2)))
        with self.assertRaisesRegex(ValueError, "normalize='entries'"):
            classifier.compile(
                loss=keras_t2t.losses.MaskedMultiTaskLoss(normalize="tasks")
            )

    def test_combination_over_some_teachers(self):
        data, x, y = sparse_table(num_rows=128)
        classifier = tiny_classifier(tiny_backbone(task_layout="sparse"))
        classifier.compile()
        classifier.fit(x, y, epochs=2, batch_size=32, verbose=0)
        report = classifier.fit_combination(
            data["inputs"], data["labels"], l2=10.0, task_ids=[1, 3]
        )
        combination = report["combination"]
        self.assertEqual(combination.task_ids, [1, 3])
        self.assertAllEqual(combination.tasks(3), [1, 3])
        tasks = classifier.predict(data["inputs"], all_tasks=[1, 3], verbose=0)
        self.assertAllClose(
            classifier.predict(data["inputs"], verbose=0),
            keras.ops.convert_to_numpy(combination(tasks)),
            atol=1e-5,
        )
