import numpy as np

import keras_t2t
from keras_t2t.models import TaskCombination
from tests.models.test_teacher2task_classifier import expanded
from tests.test_case import TestCase
from tests.test_case import tiny_backbone
from tests.test_case import tiny_classifier


def teacher_views(num_rows=400, seed=0):
    """Labels and three teachers: reliable, noisy, and contrary."""
    rng = np.random.default_rng(seed)
    labels = (rng.random((num_rows, 1)) < 0.4).astype("float32")
    sign = 2 * labels - 1
    logits = np.stack(
        [
            np.zeros_like(labels),  # Task 0, unused.
            3 * sign + rng.normal(0, 1, labels.shape),
            sign + rng.normal(0, 3, labels.shape),
            -2 * sign + rng.normal(0, 1, labels.shape),
        ],
        axis=1,
    )
    return 1 / (1 + np.exp(-logits)), labels


class TaskCombinationTest(TestCase):
    def test_learns_whom_to_trust(self):
        scores, labels = teacher_views()
        combination = TaskCombination.fit(scores, labels, l2=0.1)
        weights = combination.weights
        self.assertGreater(weights[0], weights[1])
        self.assertLess(weights[2], 0.0)  # The contrary teacher is flipped.
        combined = np.asarray(combination(scores))
        self.assertEqual(combined.shape, (400, 1))
        accuracy = ((combined > 0.5) == labels).mean()
        self.assertGreater(accuracy, 0.95)

    def test_few_labels_stay_near_the_teachers_mean(self):
        scores, labels = teacher_views(num_rows=6)
        combination = TaskCombination.fit(scores, labels, l2=100.0)
        self.assertAllClose(combination.weights, [1 / 3] * 3, atol=0.05)

    def test_labels_with_nan_and_several_labels(self):
        scores, labels = teacher_views()
        scores = np.concatenate([scores, scores[:, :, ::-1] * 0.5], axis=2)
        labels = np.concatenate([labels, labels], axis=1)
        labels[::2, 1] = np.nan
        combination = TaskCombination.fit(scores, labels)
        self.assertEqual(len(combination.bias), 2)
        self.assertTrue(np.isfinite(np.asarray(combination(scores))).all())

    def test_needs_both_classes(self):
        scores, _ = teacher_views(num_rows=5)
        with self.assertRaisesRegex(ValueError, "positive and negative"):
            TaskCombination.fit(scores, np.ones((5, 1)))
        with self.assertRaisesRegex(ValueError, "num_teachers \\+ 1"):
            TaskCombination.fit(scores[:, :, 0], np.ones((5, 1)))

    def test_serialization(self):
        combination = TaskCombination([0.5, 0.25], [0.1])
        revived = self.run_serialization_test(combination)
        self.assertEqual(revived.weights, [0.5, 0.25])


class FitCombinationTest(TestCase):
    def test_per_example_and_packed(self):
        data, x, y, weight = expanded(num_rows=128)
        labelled = ~np.isnan(data["true_labels"][:, 0])
        inputs = {k: v[labelled] for k, v in data["inputs"].items()}
        for classifier in (
            tiny_classifier(),
            tiny_classifier(tiny_backbone(task_layout="packed")),
        ):
            report = classifier.fit_combination(
                inputs,
                data["true_labels"][labelled],
                validation_data=(inputs, data["true_labels"][labelled]),
            )
            self.assertEqual(
                report["kept"], report["combined"] >= report["task_0"]
            )
            tasks = classifier.predict(inputs, all_tasks=True, verbose=0)
            combined = report["combination"](tasks)
            expected = combined if report["kept"] else tasks[:, 0]
            self.assertAllClose(
                classifier.predict(inputs, verbose=0), expected, atol=1e-6
            )

    def test_saved_and_used_after_loading(self):
        data, x, y, weight = expanded(num_rows=64)
        classifier = tiny_classifier(
            teacher_vocabulary=keras_t2t.TeacherVocabulary(["a", "b", "c"])
        )
        classifier.fit(x, y, epochs=1, batch_size=32, verbose=0)
        labels = data["true_labels"]
        report = classifier.fit_combination(data["inputs"], labels)
        self.assertTrue(report["kept"])
        revived = self.run_model_saving_test(classifier, data["inputs"])
        self.assertEqual(
            revived.combination.weights, classifier.combination.weights
        )

    def test_labels_shape_is_checked(self):
        data, _, _, _ = expanded(num_rows=16)
        with self.assertRaisesRegex(ValueError, r"\(rows, 1\)"):
            tiny_classifier().fit_combination(data["inputs"], np.zeros((16, 3)))

    def test_validation_labels_without_a_positive(self):
        data, _, _, _ = expanded(num_rows=16)
        labels = data["true_labels"]
        with self.assertRaisesRegex(ValueError, "`validation_data` labels"):
            tiny_classifier().fit_combination(
                data["inputs"],
                labels,
                validation_data=(data["inputs"], np.full_like(labels, np.nan)),
            )
