import sys
import tracemalloc
from unittest import mock

import numpy as np

import keras_t2t
from keras_t2t.diagnostics import teacher_report
from tests.data.tables import VOCABULARY
from tests.data.tables import wide_table
from tests.diagnostics import test_teacher_report as base
from tests.diagnostics.test_teacher_report import ABC
from tests.diagnostics.test_teacher_report import ARRAYS
from tests.diagnostics.test_teacher_report import FEATURES
from tests.diagnostics.test_teacher_report import STUDENT_VOCABULARY
from tests.diagnostics.test_teacher_report import hand_table
from tests.diagnostics.test_teacher_report import student_table
from tests.test_case import TestCase
from tests.test_case import tiny_backbone
from tests.test_case import tiny_classifier

nan = np.nan
# The module, not the function `keras_t2t.diagnostics` exports by its name.
report_module = sys.modules["keras_t2t.diagnostics.teacher_report"]


def crowd_table(num_workers, num_items, seed=0):
    """A wide crowd table: each item scored by 3-5 workers drawn with
    Zipf-like activity, 80% of votes right, 10% of items labelled."""
    rng = np.random.default_rng(seed)
    activity = 1.0 / np.arange(1, num_workers + 1) ** 0.8
    # Gumbel top-k: each item's workers, without replacement, by activity.
    keys = np.log(activity) + rng.gumbel(size=(num_items, num_workers))
    ranks = np.argsort(np.argsort(-keys, axis=1), axis=1)
    scored = ranks < rng.integers(3, 6, num_items)[:, None]
    truth = (rng.random(num_items) < 0.3).astype("float32")
    right = rng.random(scored.shape) < 0.8
    vote = np.where(right, truth[:, None], 1 - truth[:, None])
    scores = (0.5 * vote + 0.5 * rng.random(scored.shape)).astype("float32")
    scores[~scored] = nan
    labelled = rng.random(num_items) < 0.1
    table = {
        "x": np.arange(num_items, dtype="float32"),
        "label": np.where(labelled, truth, nan).astype("float32"),
    }
    names = [f"w{k}" for k in range(num_workers)]
    for k, name in enumerate(names):
        table[name] = scores[:, k]
    return table, keras_t2t.TeacherVocabulary(names)


def every_pair(table, names, threshold=0.5):
    """Rows both scored and rows whose votes differ, `(N, N)`, by a dense
    product (the test may afford it; the report must not)."""
    scores = np.stack([table[name] for name in names], axis=1)
    present = ~np.isnan(scores)
    with np.errstate(invalid="ignore"):
        positive = (present & (scores >= threshold)).astype(np.int64)
    negative = (present & (scores < threshold)).astype(np.int64)
    present = present.astype(np.int64)
    both = present.T @ present
    differ = positive.T @ negative + negative.T @ positive
    return both, differ


def arrays_in(value):
    """Every numpy array reachable from `value`'s attributes, dicts, lists
    and tuples."""
    if isinstance(value, np.ndarray):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from arrays_in(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from arrays_in(item)
    elif hasattr(value, "__dict__") and not isinstance(value, type):
        yield from arrays_in(vars(value))


class SparsePairsTest(TestCase):
    def test_pairs_match_a_dense_count(self):
        table = wide_table(num_rows=300, num_labels=2, seed=7)
        names = list(VOCABULARY.teachers)
        report = teacher_report(
            table, VOCABULARY, inputs=["row", "text"], ground_truth="label"
        )
        for label in range(2):
            column = {name: table[name][:, label] for name in names}
            both, differ = every_pair(column, names)
            self.assertAllEqual(report.pair_scored[:, :, label], both)
            with np.errstate(invalid="ignore"):
                self.assertAllClose(
                    report.pair_conflict[:, :, label],
                    np.where(both > 0, differ / both, nan),
                )
            pairs = report.co_scored
            j, k = pairs["teachers"].T
            self.assertTrue((j < k).all())
            self.assertAllEqual(pairs["scored"][:, label], both[j, k])
            self.assertAllEqual(pairs["differ"][:, label], differ[j, k])

    def test_agreement_with_the_others_majority_by_hand(self):
        table = hand_table()
        del table["label"]
        report = teacher_report(table, ABC, inputs="text")
        # Votes: a 1, 0, 1, -, 0; b 1, 1, -, 0, 0; c -, 0, -, 1. The others
        # have a majority for a on rows 0 and 4 (b agrees both times), for b
        # on 0, 1 (a and c vote 0), 3, 4, for c on row 3 (b votes 0).
        self.assertAllEqual(report.agreement_rows[:, 0], [2, 4, 1])
        self.assertAllEqual(report.agreement[:, 0], [2, 2, 0])
        self.assertEqual(report.skill["basis"], "agreement")
        self.assertAllEqual(report.correct, np.zeros((3, 1)))

    def test_a_block_cap_gives_the_same_report(self):
        table = wide_table(num_rows=60, seed=1)
        options = dict(inputs=["row", "text"], ground_truth="label")
        expected = teacher_report(table, VOCABULARY, **options)
        # 8 values a block: 2 rows of 1 + 3 sources.
        with mock.patch.object(report_module, "_BLOCK_VALUES", 8):
            report = teacher_report(table, VOCABULARY, **options)
        base.TeacherReportTest.assertSameReport(self, report, expected)
        self.assertAllEqual(report.agreement, expected.agreement)


class SkillTest(TestCase):
    def test_a_teacher_with_few_labels_is_not_ranked_first(self):
        # "few" is right on its 3 labelled rows, "many" on 45 of 50,
        # "poor" on 25 of 50.
        truth = np.tile([1.0, 0.0], 25).astype("float32")
        table = {"text": np.array([f"r{i}" for i in range(50)])}
        table["label"] = truth
        table["many"] = np.where(np.arange(50) < 45, truth, 1 - truth)
        table["poor"] = np.where(np.arange(50) < 25, truth, 1 - truth)
        table["few"] = np.where(np.arange(50) < 3, truth, nan)
        vocabulary = keras_t2t.TeacherVocabulary(["few", "many", "poor"])
        report = teacher_report(
            table, vocabulary, inputs="text", ground_truth="label"
        )
        skill = report.skill
        self.assertEqual(skill["basis"], "ground truth")
        self.assertAllEqual(skill["labelled"], [3, 50, 50])
        self.assertAllEqual(skill["correct"], [3, 45, 25])
        self.assertAllClose(skill["accuracy"], [1.0, 0.9, 0.5])
        pooled = 73 / 103
        self.assertAllClose(
            skill["accuracy_shrunk"],
            [(c + 10 * pooled) / (n + 10) for c, n in [(3, 3), (45, 50)]]
            + [(25 + 10 * pooled) / 60],
        )
        self.assertEqual(
            [vocabulary.teachers[k] for k in skill["order"]],
            ["many", "few", "poor"],
        )
        # The interval of 3 labels is wide; of 50, narrow.
        width = skill["accuracy_high"] - skill["accuracy_low"]
        self.assertGreater(width[0], 2 * width[1])
        frame = report.skill_frame()
        self.assertEqual(frame["teacher"].tolist(), ["many", "few", "poor"])
        self.assertAllEqual(frame["labelled"], [50, 3, 50])
        # No shrinkage: the raw rates, "few" first.
        raw = teacher_report(
            table, vocabulary, inputs="text", ground_truth="label", shrinkage=0
        )
        self.assertEqual(int(raw.skill["order"][0]), 0)


class SummaryTest(TestCase):
    def test_a_lowered_threshold_summarises_the_hand_table(self):
        options = dict(inputs="text", ground_truth="label", min_labelled=1)
        full = teacher_report(hand_table(), ABC, **options)
        self.assertFalse(full.summarized)
        report = teacher_report(
            hand_table(), ABC, **options, summarize_above=2, min_overlap=2
        )
        self.assertTrue(report.summarized)
        self.assertIsNone(report.pair_scored)
        self.assertIsNone(report.pair_conflict)
        for name in ARRAYS[:8]:  # The per-teacher arrays are the same.
            self.assertAllClose(getattr(report, name), getattr(full, name))
        self.assertEqual(report.to_frame().to_dict(), full.to_frame().to_dict())
        self.assertAllClose(report.conflict_matrix(), full.conflict_matrix())
        # Pairs: a-b 3 rows, 1 differs; a-c 1 row (below min_overlap=2);
        # b-c 2 rows, both differ.
        self.assertEqual(
            report.top_conflicts,
            [
                {"teachers": ("b", "c"), "scored": 2, "conflict": 1.0},
                {"teachers": ("a", "b"), "scored": 3, "conflict": 1 / 3},
            ],
        )
        pairs = report.conflict_pairs_frame()
        self.assertEqual(pairs["scored"].tolist(), [2, 3, 1])
        self.assertAllClose(pairs["conflict"], [1.0, 1 / 3, 0.0])
        coverage = report.distributions["coverage"]
        self.assertEqual(coverage["measured"], 3)
        self.assertAllClose(
            coverage["quantiles"][[0, 2, 4]], [2 / 6, 4 / 6, 4 / 6]
        )
        self.assertEqual(coverage["counts"].sum(), 3)
        markdown = report.to_markdown()
        self.assertIn("3 teachers, more than summarize_above=2", markdown)
        self.assertIn("| coverage | 3 | 0 | 0.333 |", markdown)
        self.assertIn("| b | c | 2 | 1.000 |", markdown)
        self.assertIn("**Skill**", markdown)
        self.assertNotIn("**Conflict**", markdown)
        self.assertEqual(report.notes, [])
        base.TeacherReportTest.assertPictures(
            self,
            report.plot(self.get_temp_dir()),
            ["reliability", "histograms", "conflict"],
        )

    def test_summary_of_several_labels_and_no_ground_truth(self):
        table = wide_table(num_rows=120, num_labels=2, seed=4)
        del table["label"]
        report = teacher_report(
            table, VOCABULARY, inputs=["row", "text"], summarize_above=0
        )
        self.assertEqual(report.skill["basis"], "agreement")
        self.assertAllEqual(
            report.skill["agreement_rows"], report.agreement_rows.sum(axis=1)
        )
        self.assertEqual(report.distributions["PR-AUC"]["measured"], 0)
        markdown = report.to_markdown()
        self.assertIn("match the other teachers' majority", markdown)
        self.assertIn("No row has a ground-truth label", markdown)
        self.assertPictures(report)

    def test_a_student_summary_reports_its_task_table(self):
        classifier = tiny_classifier(
            tiny_backbone(task_layout="packed"),
            teacher_vocabulary=STUDENT_VOCABULARY,
        )
        table = student_table(num_rows=48, seed=0)
        options = dict(inputs=FEATURES, ground_truth="label")
        full = teacher_report(
            table, STUDENT_VOCABULARY, **options, classifier=classifier
        )
        report = teacher_report(
            table,
            STUDENT_VOCABULARY,
            **options,
            classifier=classifier,
            summarize_above=1,
        )
        hidden = classifier.backbone.hidden_dim
        expected = {"shape": (4, hidden), "dtype": "float32"}
        expected["bytes"] = 4 * hidden * 4
        self.assertEqual(report.task_table, expected)
        self.assertEqual(full.task_table, expected)
        self.assertIsNone(report.task_similarity)
        self.assertAllClose(
            report.ground_truth_similarity, full.task_similarity[0], atol=1e-6
        )
        self.assertAllClose(report.fidelity_mae, full.fidelity_mae)
        self.assertEqual(report.distributions["fidelity r"]["measured"], 3)
        markdown = report.to_markdown()
        self.assertIn(f"**Task table**: 4 x {hidden} float32", markdown)
        self.assertIn("**Student**", markdown)
        self.assertIn("| task cosine to ground truth | 3 |", markdown)
        self.assertPictures(report)

    def assertPictures(self, report):
        base.TeacherReportTest.assertPictures(
            self,
            report.plot(self.get_temp_dir()),
            ["reliability", "histograms", "conflict"],
        )

    def test_new_arguments_are_checked(self):
        for name, value in [
            ("summarize_above", -1),
            ("top_k", 0),
            ("min_overlap", 0),
            ("min_overlap", 1.5),
            ("shrinkage", -1.0),
        ]:
            with self.assertRaisesRegex(ValueError, f"`{name}`"):
                teacher_report(
                    hand_table(), ABC, inputs="text", **{name: value}
                )


class ManyTeachersTest(TestCase):
    def test_500_workers_are_summarised_without_an_n_by_n_matrix(self):
        num_workers = 500
        table, vocabulary = crowd_table(num_workers, num_items=500)
        # Blocks of 100 rows: a block is 100 x (N + 1) floats, 200 kB.
        options = dict(inputs="x", ground_truth="label", block_size=100)
        # Once first: imports and tf.data's tracing are not the report's.
        teacher_report(table, vocabulary, **options)
        # The report's own memory: from the rows read (what `expand` holds
        # too) to the report. Reading the table is the data module's.
        read_rows = report_module.read_rows

        def read_then_reset(*args, **kwargs):
            rows = read_rows(*args, **kwargs)
            tracemalloc.reset_peak()
            held.append(tracemalloc.get_traced_memory()[0])
            return rows

        held = []
        tracemalloc.start()
        try:
            with mock.patch.object(report_module, "read_rows", read_then_reset):
                report = teacher_report(table, vocabulary, **options)
            peak = tracemalloc.get_traced_memory()[1] - held[0]
        finally:
            tracemalloc.stop()
        # One N x N float64 matrix is 2 MB; a dense pair count (two
        # N x N int64 arrays and their per-block products) is several.
        self.assertLess(peak, num_workers**2 * 8)
        self.assertTrue(report.summarized)
        for array in arrays_in(report):
            second = sorted(array.shape)[-2] if array.ndim > 1 else 0
            self.assertLess(second, num_workers, f"an array {array.shape}")
        both, differ = every_pair(table, vocabulary.teachers)
        j, k = report.co_scored["teachers"].T
        self.assertEqual(len(j), np.count_nonzero(np.triu(both, 1)))
        self.assertAllEqual(report.co_scored["scored"][:, 0], both[j, k])
        self.assertAllEqual(report.co_scored["differ"][:, 0], differ[j, k])
        # The most conflicting pairs, by the dense count.
        upper = np.triu(both, 1) >= report.min_overlap
        shares = np.where(upper, differ / np.maximum(both, 1), -1.0)
        best = np.sort(shares[upper])[::-1][: report.top_k]
        self.assertAllClose(
            [pair["conflict"] for pair in report.top_conflicts], best
        )
        self.assertTrue(
            all(p["scored"] >= report.min_overlap for p in report.top_conflicts)
        )
        markdown = report.to_markdown()
        self.assertLess(len(markdown.splitlines()), 80)
        self.assertIn("500 teachers, more than summarize_above=20", markdown)
        self.assertEqual(len(report.to_frame()), num_workers)
