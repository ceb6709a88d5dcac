import keras
import numpy as np

import keras_t2t
from tests.test_case import TestCase


def tiny_packed_student(num_teachers=2):
    backbone = keras_t2t.models.Teacher2TaskBackbone(
        num_teachers=num_teachers,
        feature_dim=4,
        num_layers=1,
        num_heads=1,
        hidden_dim=8,
        intermediate_dim=8,
        task_layout="packed",
    )
    vocabulary = keras_t2t.TeacherVocabulary(["a", "b"][:num_teachers])
    classifier = keras_t2t.models.Teacher2TaskClassifier(
        backbone, teacher_vocabulary=vocabulary
    )
    classifier.compile(optimizer=keras.optimizers.Adam(1e-2), metrics=[])
    return classifier, vocabulary


def synthetic_table():
    data = keras_t2t.datasets.make_synthetic_teachers(
        num_rows=96, num_teachers=2, feature_dim=4, sequence_length=4, seed=0
    )
    table = dict(data["inputs"], label=data["labels"][:, 0])
    for k, name in enumerate(["a", "b"]):
        table[name] = data["teacher_scores"][:, k, 0]
    inputs = {name: data["inputs"][name] for name in data["inputs"]}
    return table, inputs, data["true_labels"]


class WeightsAtEpochEnd(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.weights = []

    def on_epoch_end(self, epoch, logs=None):
        self.weights.append(self.model.get_weights())


class BestOnValidationTest(TestCase):
    def setUp(self):
        super().setUp()
        self.table, self.inputs, self.truth = synthetic_table()
        self.classifier, self.vocabulary = tiny_packed_student()
        self.stream = keras_t2t.data.expand(
            self.table,
            self.vocabulary,
            inputs=list(self.inputs),
            ground_truth="label",
            packed=True,
            seed=0,
            batch_size=16,
            repeat=True,
        )
        self.validation = (
            {name: value[:32] for name, value in self.inputs.items()},
            self.truth[:32],
        )

    def test_keeps_and_restores_the_best_epoch(self):
        values = iter([0.2, 0.9, 0.5])
        seen = []

        def metric(labels, scores):
            seen.append(scores.shape)
            return next(values)

        best = keras_t2t.callbacks.BestOnValidation(
            self.validation, metric=metric, verbose=0
        )
        after = WeightsAtEpochEnd()  # Runs after `best` at each epoch end.
        history = self.classifier.fit(
            self.stream,
            steps_per_epoch=3,
            epochs=3,
            callbacks=[best, after],
            verbose=0,
        )
        self.assertEqual(seen, [(32, 1)] * 3)
        self.assertEqual(best.best_value, 0.9)
        self.assertEqual(best.best_step, 6)
        self.assertEqual([r["step"] for r in best.history], [3, 6, 9])
        self.assertEqual(history.history["val_pr_auc"], [0.2, 0.9, 0.5])
        # The model ends with epoch 2's weights, not the last epoch's.
        for actual, kept in zip(
            self.classifier.get_weights(), after.weights[1], strict=True
        ):
            self.assertAllClose(actual, kept)
        changed = any(
            not np.allclose(a, b)
            for a, b in zip(after.weights[1], after.weights[2], strict=True)
        )
        self.assertTrue(changed, "training did not move the weights")

    def test_without_restore_the_last_weights_stay(self):
        values = iter([0.9, 0.1])
        best = keras_t2t.callbacks.BestOnValidation(
            self.validation,
            metric=lambda y, p: next(values),
            restore_best=False,
            verbose=0,
        )
        after = WeightsAtEpochEnd()
        self.classifier.fit(
            self.stream,
            steps_per_epoch=2,
            epochs=2,
            callbacks=[best, after],
            verbose=0,
        )
        self.assertEqual(best.best_step, 2)
        for actual, last in zip(
            self.classifier.get_weights(), after.weights[1], strict=True
        ):
            self.assertAllClose(actual, last)

    def test_default_metric_is_the_models_pr_auc(self):
        best = keras_t2t.callbacks.BestOnValidation(self.validation, verbose=0)
        self.classifier.fit(
            self.stream, steps_per_epoch=2, epochs=1, callbacks=[best],
            verbose=0,
        )  # fmt: skip
        scores = self.classifier.predict(self.validation[0], verbose=0)
        metric = keras_t2t.metrics.PRAUC()
        metric.update_state(self.validation[1], scores)
        self.assertAlmostEqual(
            best.best_value, float(metric.result()), places=5
        )

    def test_with_labelled_rows_it_keeps_the_better_reading(self):
        labelled = ~np.isnan(self.table["label"])
        labelled_data = (
            {name: value[labelled] for name, value in self.inputs.items()},
            self.table["label"][labelled],
        )
        best = keras_t2t.callbacks.BestOnValidation(
            self.validation, labelled_data=labelled_data, prefix="run: "
        )
        self.classifier.fit(
            self.stream, steps_per_epoch=3, epochs=2, callbacks=[best],
            verbose=0,
        )  # fmt: skip
        for record in best.history:
            self.assertEqual(
                record["value"], max(record["task_0"], record["combined"])
            )
        self.assertEqual(best.best_value, max(r["value"] for r in best.history))
        # The model reads the ground truth as the best epoch did.
        self.assertIs(self.classifier.combination, best.best_combination)
        kept = best.history[best.best_step // 3 - 1]
        self.assertEqual(
            best.best_combination is not None,
            kept["combined"] >= kept["task_0"],
        )

    def test_bad_arguments(self):
        with self.assertRaisesRegex(ValueError, "validation_data"):
            keras_t2t.callbacks.BestOnValidation(self.inputs)
        with self.assertRaisesRegex(ValueError, "labelled_data"):
            keras_t2t.callbacks.BestOnValidation(
                self.validation, labelled_data=[1, 2, 3]
            )
