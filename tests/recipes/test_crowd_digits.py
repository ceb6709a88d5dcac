from types import SimpleNamespace

import numpy as np

from recipes import common
from recipes import crowd_digits
from recipes import image_digits
from recipes.aggregation import aggregate_crowd
from tests.markers import tensorflow_only_end_to_end
from tests.recipes.end_to_end import RecipeTestCase
from tests.test_case import TestCase


class CrowdSimulationTest(TestCase):
    @classmethod
    def setUpClass(cls):
        cls.images, cls.digits = image_digits.load_images()
        cls.crowd = crowd_digits.simulate_crowd(
            cls.images, cls.digits, num_annotators=200, seed=3
        )

    def accuracy(self, kind):
        said = self.crowd.said[:, self.crowd.kinds == kind]
        return (said == self.digits[:, None])[said >= 0].mean()

    def test_kinds_are_the_mix_asked_for(self):
        counts = crowd_digits.kind_counts(10, 0.2)
        self.assertEqual(sum(counts.values()), 10)
        self.assertTrue(all(n >= 1 for n in counts.values()))
        kinds = list(self.crowd.kinds)
        self.assertEqual(kinds.count("spammer"), 20)
        self.assertEqual(kinds.count("adversary"), 20)

    def test_skills_are_near_their_targets(self):
        # Experts 92-98% right, average workers 60-80%, spammers at chance.
        self.assertAlmostEqual(self.accuracy("expert"), 0.95, delta=0.02)
        self.assertAlmostEqual(self.accuracy("average"), 0.70, delta=0.03)
        self.assertAlmostEqual(self.accuracy("spammer"), 0.10, delta=0.03)
        # Specialists: right on their own digits, guessing elsewhere.
        own, other = [], []
        for j in np.flatnonzero(self.crowd.kinds == "specialist"):
            seen = self.crowd.said[:, j] >= 0
            mine = np.isin(self.digits, self.crowd.specialties[j]) & seen
            right = self.crowd.said[:, j] == self.digits
            own.extend(right[mine])
            other.extend(right[seen & ~mine])
        self.assertGreater(np.mean(own), 0.9)
        self.assertLess(np.mean(other), 0.15)

    def test_adversaries_swap_their_pair(self):
        a, b = self.crowd.swap
        said = self.crowd.said[:, self.crowd.kinds == "adversary"]
        for true, swapped in ((a, b), (b, a)):
            answers = said[self.digits == true]
            self.assertTrue((answers[answers >= 0] == swapped).all())
        elsewhere = said[~np.isin(self.digits, self.crowd.swap)]
        right = (
            elsewhere
            == self.digits[~np.isin(self.digits, self.crowd.swap)][:, None]
        )
        self.assertGreater(right[elsewhere >= 0].mean(), 0.8)

    def test_three_to_five_labels_per_image_and_skewed_activity(self):
        per_image = (self.crowd.said >= 0).sum(axis=1)
        self.assertEqual(set(per_image), {3, 4, 5})
        scores = self.crowd.scores()
        self.assertAllClose(np.nansum(scores, axis=2).sum(axis=1), per_image)
        activity = np.sort((self.crowd.said >= 0).sum(axis=0))[::-1]
        self.assertGreater(activity[0], 10 * np.median(activity))

    def test_no_test_image_in_training(self):
        args = SimpleNamespace(
            split_seed=0,
            test_fraction=0.2,
            ground_truth_fraction=0.05,
            validation_share=0.4,
        )
        train, val, test, labelled = common.split_rows(
            len(self.digits), args, 1
        )
        self.assertEqual(len(np.intersect1d(train, test)), 0)
        self.assertEqual(len(np.intersect1d(val, test)), 0)
        self.assertEqual(len(np.intersect1d(val, train)), 0)
        # 5% of the non-test images carry ground truth, validation included.
        budget = round(0.05 * (len(self.digits) - len(test)))
        self.assertEqual(labelled.sum() + len(val), budget)

    def test_crowd_kit_aggregations_run(self):
        # Wawa and MMSR go through this module's work-arounds; GLAD and
        # MACE (20 s here) run in the recipe only.
        said = np.array([[0, 0, 1], [1, 1, -1], [2, 2, 2], [0, -1, 0]])
        names = ("majority_vote", "one_coin_dawid_skene", "wawa", "mmsr")
        scores, failures = aggregate_crowd(said, 3, names)
        self.assertEqual(set(scores), set(names))
        self.assertEqual(failures, {})
        for name, value in scores.items():
            self.assertAllClose(value.sum(axis=1), np.ones(4), atol=1e-5)
            self.assertEqual(list(value.argmax(axis=1)), [0, 1, 2, 0], name)


class CrowdDigitsRecipeTest(RecipeTestCase):
    @tensorflow_only_end_to_end
    def test_tiny_end_to_end(self):
        students = f"{crowd_digits.TEACHER2TASK},student_one_coin_dawid_skene"
        output = self.run_quick(
            crowd_digits.main, f"--num-annotators=10 --students={students}"
        )
        runs = self.read_json(output, "num_annotators.json")["runs"]
        record = runs["10"]["0"]
        self.assertEqual(
            set(record["pr_auc"]),
            {crowd_digits.TEACHER2TASK, "student_one_coin_dawid_skene"},
        )
        self.assertEqual(len(record["best_teachers"]), 10)
        self.assertIn("majority_vote", record["test_time"])
        self.assertWritten(output, "num_annotators.png")
        self.assertIn(
            "most active annotators",
            self.read_text(output, "num_annotators.md"),
        )
