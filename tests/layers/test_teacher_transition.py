import keras
import numpy as np

from keras_t2t.layers import TeacherTransition
from tests.test_case import TestCase
from tests.test_case import tiny_backbone
from tests.test_case import tiny_classifier


class TeacherTransitionTest(TestCase):
    def test_independent_labels_follow_each_teachers_rates(self):
        layer = TeacherTransition(num_teachers=2, num_labels=1)
        layer.build()
        # Teacher 2 made an adversary: says yes where the truth is no.
        deviations = np.zeros((3, 1, 2), "float32")
        deviations[2] = [[-30.0, 30.0]]
        layer.deviations.assign(deviations)
        p = np.array([[0.8], [0.1]], "float32")
        said = layer(p, np.array([[0, 1, 2], [2, -1, 1]], "int32"))
        self.assertEqual(tuple(said.shape), (2, 3, 1))
        rates = layer.rates()
        self.assertAllClose(rates[0, 0], [0.9, 0.1])
        s, f = 0.9, 0.1
        expected = [
            [[0.8], [s * 0.8 + f * 0.2], [0.2 * 1.0 + 0.8 * 0.0]],
            [[0.9], [0.1], [s * 0.1 + f * 0.9]],
        ]
        self.assertAllClose(said, expected, atol=1e-4)

    def test_exclusive_labels_map_classes_through_a_confusion(self):
        layer = TeacherTransition(
            num_teachers=1, num_labels=3, labels="exclusive"
        )
        layer.build()
        rates = layer.rates()[0]
        self.assertAllClose(rates.sum(axis=1), np.ones(3), atol=1e-6)
        self.assertAllClose(np.diag(rates), [0.9] * 3, atol=1e-6)
        # Unnormalised sigmoid outputs are read as class shares.
        p = np.array([[0.5, 0.5, 0.0]], "float32")
        said = keras.ops.convert_to_numpy(layer(p, np.array([[1]], "int32")))
        self.assertAllClose(said[0, 0], 0.5 * rates[0] + 0.5 * rates[1])

    def test_shrinkage_penalises_deviations_only(self):
        layer = TeacherTransition(num_teachers=2, num_labels=1, shrinkage=0.5)
        layer.build()
        self.assertAllClose(keras.ops.sum(layer.losses), 0.0)
        layer.deviations.assign(np.ones((3, 1, 2), "float32"))
        self.assertAllClose(keras.ops.sum(layer.losses), 0.5 * 6)

    def test_refuses_bad_arguments(self):
        with self.assertRaisesRegex(ValueError, "`labels`"):
            TeacherTransition(num_teachers=2, num_labels=1, labels="one")
        with self.assertRaisesRegex(ValueError, "num_labels"):
            TeacherTransition(2, 1, labels="exclusive")
        with self.assertRaisesRegex(ValueError, "shrinkage"):
            TeacherTransition(2, 1, shrinkage=float("inf"))

    def test_serialization(self):
        self.run_serialization_test(
            TeacherTransition(
                num_teachers=4, num_labels=3, labels="exclusive", shrinkage=0.1
            )
        )


def sparse_backbone():
    return tiny_backbone(task_layout="sparse")


class ClassifierTransitionTest(TestCase):
    def data(self):
        rng = np.random.default_rng(0)
        x = {
            "task_ids": np.array([[0, 1, 2]] * 16, "int32"),
            "features": rng.random((16, 5, 8)).astype("float32"),
        }
        y = rng.random((16, 3, 1)).astype("float32")
        y[:, 0] = np.nan  # Teachers only: no ground truth anywhere.
        return x, y

    def test_teacher_labels_alone_train_the_ground_truth_output(self):
        x, y = self.data()
        for transition, moves in (("auto", True), (None, False)):
            with self.subTest(teacher_transition=transition):
                keras.utils.set_random_seed(0)
                classifier = tiny_classifier(
                    sparse_backbone(), teacher_transition=transition
                )
                classifier.compile(optimizer=keras.optimizers.SGD(0.5))
                # The task-0 output's head is shared: compare the ground
                # truth's own token, which only task 0 reads.
                table = classifier.backbone.get_layer("task_tokens")
                before = keras.ops.convert_to_numpy(table.embeddings)[0]
                classifier.fit(x, y, epochs=2, batch_size=16, verbose=0)
                after = keras.ops.convert_to_numpy(table.embeddings)[0]
                self.assertEqual(not np.allclose(before, after), moves)

    def test_default_follows_the_layout(self):
        sparse = tiny_classifier(sparse_backbone())
        self.assertEqual(sparse.teacher_transition.labels, "independent")
        per_example = tiny_classifier(tiny_backbone(task_layout="per_example"))
        self.assertIsNone(per_example.teacher_transition)
        with self.assertRaisesRegex(ValueError, "per-example"):
            tiny_classifier(
                tiny_backbone(task_layout="per_example"),
                teacher_transition="independent",
            )

    def test_refuses_a_transition_of_other_sizes(self):
        with self.assertRaisesRegex(ValueError, "num_teachers=5"):
            tiny_classifier(
                sparse_backbone(), teacher_transition=TeacherTransition(5, 1)
            )

    def test_saved_and_loaded_with_its_weights(self):
        x, y = self.data()
        classifier = tiny_classifier(
            sparse_backbone(), teacher_transition="exclusive", num_labels=2
        )
        classifier.fit(x, np.concatenate([y, 1 - y], -1), epochs=1, verbose=0)
        path = self.get_temp_dir() + "/model.keras"
        classifier.save(path)
        loaded = keras.saving.load_model(path, safe_mode=True)
        self.assertEqual(loaded.teacher_transition.labels, "exclusive")
        self.assertAllClose(
            loaded.teacher_transition.rates(),
            classifier.teacher_transition.rates(),
        )

    def test_files_without_a_transition_load_without_one(self):
        classifier = tiny_classifier(sparse_backbone(), teacher_transition=None)
        config = classifier.get_config()
        del config["teacher_transition"]
        restored = type(classifier).from_config(config)
        self.assertIsNone(restored.teacher_transition)
