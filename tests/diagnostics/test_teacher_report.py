import os
from unittest import mock

import numpy as np
import tensorflow as tf
from keras import ops
from sklearn.metrics import average_precision_score

import keras_t2t
from keras_t2t.data import sources
from keras_t2t.diagnostics import TeacherReport
from keras_t2t.diagnostics import teacher_report
from tests.data.tables import VOCABULARY
from tests.data.tables import to_frame
from tests.data.tables import wide_table
from tests.data.test_sources import write_tfrecord
from tests.test_case import TestCase
from tests.test_case import tiny_backbone
from tests.test_case import tiny_classifier

nan = np.nan
ABC = keras_t2t.TeacherVocabulary(["a", "b", "c"])
STUDENT_VOCABULARY = keras_t2t.TeacherVocabulary(["calm", "bold", "biased"])
FEATURES = ["features", "padding_mask"]
# A report's per-teacher statistics, in the order of its frame's columns.
PER_TEACHER = (
    "scored coverage overlap conflict mean_score labelled_scored pr_auc ece"
).split()
ARRAYS = [*PER_TEACHER, "pair_scored", "pair_conflict", "labelled", "positives"]


def hand_table():
    """Six rows, three teachers; every number of its report is worked out
    by hand in `test_six_rows_by_hand`."""
    return {
        "text": np.array([f"row {i}" for i in range(6)]),
        "label": np.array([1, 0, nan, 1, 0, nan], "float32"),
        "a": np.array([0.9, 0.2, 0.6, nan, 0.1, nan], "float32"),
        "b": np.array([0.8, 0.7, nan, 0.3, 0.1, nan], "float32"),
        "c": np.array([nan, 0.4, nan, 0.9, nan, nan], "float32"),
    }


def abc_report(table, **options):
    """The report of a table of teachers a, b, c, `text` and `label`."""
    return teacher_report(
        table, ABC, inputs="text", ground_truth="label", **options
    )


def student_table(num_rows=96, seed=0, num_labels=1):
    """A feature table from the synthetic teachers, for a tiny student."""
    data = keras_t2t.datasets.make_synthetic_teachers(
        num_rows=num_rows,
        num_labels=num_labels,
        ground_truth_fraction=0.5,
        seed=seed,
    )
    table = dict(data["inputs"], label=data["labels"])
    for k, name in enumerate(STUDENT_VOCABULARY.teachers):
        table[name] = data["teacher_scores"][:, k]
    if num_labels == 1:
        for name in ["label", *STUDENT_VOCABULARY.teachers]:
            table[name] = table[name][:, 0]
    return table


def student_classifier(task_layout):
    """A tiny classifier for the student table's three teachers."""
    return tiny_classifier(
        tiny_backbone(task_layout=task_layout),
        teacher_vocabulary=STUDENT_VOCABULARY,
    )


def trained(classifier, table):
    dataset = keras_t2t.data.expand(
        table,
        STUDENT_VOCABULARY,
        inputs=FEATURES,
        ground_truth="label",
        packed=classifier.backbone.packed,
        batch_size=32,
    )
    classifier.fit(dataset, epochs=1, verbose=0)
    return classifier


def ece_by_loop(labels, scores, num_bins):
    """ECE written out bin by bin, independent of the library's."""
    total = 0.0
    for b in range(num_bins):
        low, high = b / num_bins, (b + 1) / num_bins
        inside = (scores >= low) & (
            (scores < high) if b < num_bins - 1 else (scores <= high)
        )
        if inside.any():
            gap = abs(scores[inside].mean() - labels[inside].mean())
            total += inside.sum() * gap
    return total / len(scores)


class TeacherReportTest(TestCase):
    def assertSameReport(self, report, expected):
        for name in ARRAYS:
            self.assertAllClose(
                getattr(report, name), getattr(expected, name), atol=1e-12
            )
        self.assertEqual(report.num_rows, expected.num_rows)
        self.assertEqual(report.notes, expected.notes)

    def assertPictures(self, paths, names):
        self.assertEqual(sorted(paths), sorted(names))
        for path in paths.values():
            with open(path, "rb") as file:
                data = file.read()
            self.assertTrue(data.startswith(b"\x89PNG\r\n\x1a\n"), path)
            self.assertGreater(len(data), 5_000, path)

    def test_six_rows_by_hand(self):
        report = abc_report(hand_table(), min_labelled=1)
        self.assertIsInstance(report, TeacherReport)
        self.assertEqual(report.num_rows, 6)
        self.assertEqual(report.rows_without_teacher, 1)  # Row 5.
        self.assertAllEqual(report.labelled, [4])
        self.assertAllEqual(report.positives, [2])
        # Rows scored: a 0, 1, 2, 4; b 0, 1, 3, 4; c 1, 3.
        self.assertAllEqual(report.scored[:, 0], [4, 4, 2])
        self.assertAllClose(report.coverage[:, 0], [4 / 6, 4 / 6, 2 / 6])
        # With another teacher: a on 0, 1, 4 (row 2 alone); b on all 4.
        self.assertAllClose(report.overlap[:, 0], [3 / 6, 4 / 6, 2 / 6])
        # Votes (>= 0.5): a 1, 0, 1, -, 0; b 1, 1, -, 0, 0; c -, 0, -, 1.
        # Row 1: a 0 against b 1, c 0 against b 1; row 3: b 0 against c 1.
        self.assertAllClose(report.conflict[:, 0], [1 / 6, 2 / 6, 2 / 6])
        self.assertAllClose(report.mean_score[:, 0], [0.45, 0.475, 0.65])
        # Labelled rows scored: a 0, 1, 4; b 0, 1, 3, 4; c 1, 3.
        self.assertAllEqual(report.labelled_scored[:, 0], [3, 4, 2])
        # a ranks its positive first: 1.0. b: 0.8 (1), 0.7 (0), 0.3 (1),
        # 0.1 (0): 1/2 * 1 + 1/2 * 2/3.
        self.assertAllClose(report.pr_auc[:, 0], [1.0, 5 / 6, 1.0])
        # Ten bins hold one score each: the mean absolute gap.
        self.assertAllClose(
            report.ece[:, 0], [0.4 / 3, 1.7 / 4, 0.5 / 2], atol=1e-6
        )
        # Pairs: a-b share 0, 1, 4 and differ on 1; a-c share 1 and agree;
        # b-c share 1, 3 and differ on both.
        self.assertAllEqual(
            report.pair_scored[:, :, 0], [[4, 3, 1], [3, 4, 2], [1, 2, 2]]
        )
        self.assertAllClose(
            report.conflict_matrix(),
            [[0, 1 / 3, 0], [1 / 3, 0, 1], [0, 1, 0]],
        )
        self.assertEqual(report.notes, [])
        self.assertIsNone(report.fidelity_mae)
        self.assertIsNone(report.task_similarity)

    def test_bins_threshold_and_too_few_labelled_rows(self):
        report = abc_report(
            hand_table(), num_bins=2, threshold=0.35, min_labelled=3
        )
        # b in two bins: (0.8, 0.7) against (1, 0), (0.3, 0.1) against
        # (1, 0): (|1.5 - 1| + |0.4 - 1|) / 4.
        self.assertAllClose(report.ece[:2, 0], [0.4 / 3, 0.275], atol=1e-6)
        self.assertTrue(np.isnan(report.pr_auc[2, 0]))
        self.assertTrue(np.isnan(report.ece[2, 0]))
        self.assertEqual(
            report.notes,
            [
                "Teacher 'c' scored 2 labelled row(s), fewer than "
                "min_labelled=3: PR-AUC and ECE n/a."
            ],
        )
        # At 0.35 c's 0.4 votes positive: row 1 is a 0 against b 1, c 1;
        # row 3 b 0 against c 1.
        self.assertAllClose(report.conflict[:, 0], [1 / 6, 2 / 6, 2 / 6])
        self.assertAllClose(
            report.conflict_matrix(),
            [[0, 1 / 3, 1], [1 / 3, 0, 1 / 2], [1, 1 / 2, 0]],
        )

    def test_frame_and_markdown(self):
        report = abc_report(hand_table(), min_labelled=1)
        frame = report.to_frame()
        self.assertEqual(
            list(frame.columns), ["teacher", "label", *PER_TEACHER]
        )
        self.assertEqual(frame["teacher"].tolist(), ["a", "b", "c"])
        self.assertAllClose(frame["pr_auc"], [1.0, 5 / 6, 1.0])
        self.assertAllEqual(frame["labelled_scored"], [3, 4, 2])
        markdown = report.to_markdown()
        self.assertIn(
            "| b | 4 | 0.667 | 0.667 | 0.333 | 0.475 | 4 | 0.833 | 0.425 |",
            markdown,
        )
        self.assertIn("| b | 0.333 | - | 1.000 |", markdown)
        self.assertIn("6 rows, 4 with ground truth, 2 positive", markdown)
        self.assertEqual(str(report), markdown)
        few = abc_report(hand_table(), min_labelled=3).to_markdown()
        self.assertIn(
            "| c | 2 | 0.333 | 0.333 | 0.333 | 0.650 | 2 | n/a |", few
        )
        self.assertIn("- Teacher 'c' scored 2 labelled row(s)", few)

    def test_pr_auc_and_ece_against_scikit_learn(self):
        table = wide_table(num_rows=400, seed=3)
        report = teacher_report(
            table, VOCABULARY, inputs=["row", "text"], ground_truth="label"
        )
        for k, name in enumerate(VOCABULARY.teachers):
            rows = ~np.isnan(table["label"]) & ~np.isnan(table[name])
            labels, scores = table["label"][rows], table[name][rows]
            self.assertEqual(report.labelled_scored[k, 0], rows.sum())
            self.assertGreater(rows.sum(), 50)
            self.assertAlmostEqual(
                report.pr_auc[k, 0],
                average_precision_score(labels, scores),
                places=10,
            )
            self.assertAlmostEqual(
                report.ece[k, 0], ece_by_loop(labels, scores, 10), places=6
            )
            scored = ~np.isnan(table[name])
            self.assertAlmostEqual(
                report.mean_score[k, 0], table[name][scored].mean(), places=6
            )

    def test_same_report_from_every_reader_and_block_size(self):
        table = wide_table(num_rows=60, seed=1)
        options = dict(inputs=["row", "text"], ground_truth="label")
        expected = teacher_report(table, VOCABULARY, **options)
        self.assertGreater(expected.labelled[0], 10)
        frame = to_frame(table)
        directory = self.get_temp_dir()
        csv = os.path.join(directory, "table.csv")
        parquet = os.path.join(directory, "table.parquet")
        frame.to_csv(csv, index=False)
        frame.to_parquet(parquet)
        parts = []
        for index, part in enumerate((frame[:25], frame[25:])):
            parts.append(os.path.join(directory, f"part-{index}.csv"))
            part.to_csv(parts[-1], index=False)
        records = os.path.join(directory, "table.tfrecord")
        write_tfrecord(table, records)
        for source in (
            frame,
            records,
            csv,
            parquet,
            parts,  # Several files always stream.
            os.path.join(directory, "part-*.csv"),
            tf.data.Dataset.from_tensor_slices(table),
        ):
            for block_size in (7, 4096):
                report = teacher_report(
                    source, VOCABULARY, block_size=block_size, **options
                )
                self.assertSameReport(report, expected)

    def test_a_large_file_streams_in_blocks(self):
        table = wide_table(num_rows=60, seed=2)
        expected = teacher_report(
            table, VOCABULARY, inputs=["row", "text"], ground_truth="label"
        )
        path = os.path.join(self.get_temp_dir(), "table.csv")
        to_frame(table).to_csv(path, index=False)
        read_whole = mock.patch.object(
            sources, "_read_files", side_effect=AssertionError("read whole")
        )
        # Every file counts as large: pandas reads it 8 rows at a time.
        with (
            mock.patch.object(sources, "STREAM_BYTES", 0),
            mock.patch.object(sources, "_FILE_BLOCK_ROWS", 8),
            read_whole,
        ):
            report = teacher_report(
                path,
                VOCABULARY,
                inputs=["row", "text"],
                ground_truth="label",
                block_size=5,
            )
        self.assertSameReport(report, expected)

    def test_a_teacher_that_scored_nothing(self):
        table = hand_table()
        table["c"][:] = nan
        report = abc_report(table, min_labelled=1)
        self.assertAllEqual(report.scored[:, 0], [4, 4, 0])
        self.assertAllClose(report.coverage[:, 0], [4 / 6, 4 / 6, 0])
        self.assertAllClose(report.overlap[:, 0], [3 / 6, 3 / 6, 0])
        self.assertAllClose(report.conflict[:, 0], [1 / 6, 1 / 6, 0])
        self.assertTrue(np.isnan(report.mean_score[2, 0]))
        self.assertEqual(report.labelled_scored[2, 0], 0)
        self.assertTrue(np.isnan(report.pr_auc[2, 0]))
        self.assertTrue(np.isnan(report.ece[2, 0]))
        self.assertTrue(np.isnan(report.conflict_matrix()[2]).all())
        note = (
            "Teacher 'c' scored no row: coverage 0, its other statistics n/a."
        )
        self.assertEqual(report.notes, [note])
        markdown = report.to_markdown()
        self.assertIn(
            "| c | 0 | 0.000 | 0.000 | 0.000 | n/a | 0 | n/a |", markdown
        )
        self.assertIn("| a | - | 0.333 | n/a |", markdown)
        self.assertIn(note, markdown)
        self.assertPictures(
            report.plot(self.get_temp_dir()), ["reliability", "conflict"]
        )
        # A teacher without a column at all reads the same.
        del table["c"]
        absent = teacher_report(
            table,
            ABC,
            inputs="text",
            ground_truth="label",
            teachers=["a", "b"],
            min_labelled=1,
        )
        self.assertSameReport(absent, report)

    def test_no_ground_truth(self):
        table = hand_table()
        del table["label"]
        report = teacher_report(table, ABC, inputs="text")
        self.assertAllEqual(report.labelled, [0])
        self.assertAllEqual(report.labelled_scored[:, 0], [0, 0, 0])
        self.assertTrue(np.isnan(report.pr_auc).all())
        self.assertTrue(np.isnan(report.ece).all())
        self.assertAllClose(report.coverage[:, 0], [4 / 6, 4 / 6, 2 / 6])
        self.assertEqual(len(report.notes), 1)
        self.assertTrue(
            report.notes[0].startswith("No row has a ground-truth label")
        )
        self.assertIn("6 rows, 0 with ground truth", report.to_markdown())
        self.assertPictures(
            report.plot(self.get_temp_dir()), ["reliability", "conflict"]
        )
        # An empty label column reads the same.
        table["label"] = np.full(6, nan, "float32")
        empty = abc_report(table)
        self.assertSameReport(empty, report)

    def test_no_positive_label(self):
        table = hand_table()
        table["label"] = np.where(np.isnan(table["label"]), nan, 0.0)
        report = abc_report(table, min_labelled=1)
        self.assertTrue(np.isnan(report.pr_auc).all())
        # ECE needs no positive: a's scores 0.9, 0.2, 0.1 against 0.
        self.assertAllClose(report.ece[0, 0], 1.2 / 3, atol=1e-6)
        self.assertEqual(
            report.notes, ["No ground-truth label is positive: PR-AUC is n/a."]
        )

    def test_a_table_without_values(self):
        table = {"text": np.array(["x", "y"]), "label": np.full(2, nan)}
        for name in ABC.teachers:
            table[name] = np.full(2, nan)
        report = abc_report(table)
        self.assertAllEqual(report.scored, np.zeros((3, 1)))
        self.assertEqual(report.rows_without_teacher, 2)
        self.assertEqual(len(report.notes), 4)
        with self.assertRaisesRegex(ValueError, "no rows"):
            abc_report({k: v[:0] for k, v in table.items()})

    def test_several_labels_are_each_their_own_table(self):
        table = wide_table(num_rows=200, num_labels=2, seed=4)
        options = dict(inputs=["row", "text"], ground_truth="label")
        report = teacher_report(table, VOCABULARY, **options)
        self.assertEqual(report.num_labels, 2)
        for label in range(2):
            single = teacher_report(
                {
                    k: v[:, label] if v.ndim == 2 else v
                    for k, v in table.items()
                },
                VOCABULARY,
                **options,
            )
            for name in ARRAYS:
                self.assertAllClose(
                    getattr(report, name)[..., label],
                    getattr(single, name)[..., 0],
                )
        frame = report.to_frame()
        self.assertEqual(frame["label"].tolist(), [0, 1] * 3)
        # Over labels: counts add up, the rest are means over labels.
        pooled = report.to_frame(per_label=False)
        self.assertEqual(len(pooled), 3)
        self.assertNotIn("label", pooled.columns)
        self.assertAllEqual(pooled["scored"], report.scored.sum(axis=1))
        self.assertAllClose(pooled["pr_auc"], report.pr_auc.mean(axis=1))
        self.assertAllClose(pooled["conflict"], report.conflict.mean(axis=1))
        weighted = (report.mean_score * report.scored).sum(
            1
        ) / report.scored.sum(1)
        self.assertAllClose(pooled["mean_score"], weighted)
        both = report.pair_scored.sum(axis=2)
        disagree = (report.pair_conflict * report.pair_scored).sum(axis=2)
        self.assertAllClose(report.conflict_matrix(), disagree / both)
        self.assertIn("| vader | 1 |", report.to_markdown())
        self.assertNotIn("| vader | 1 |", report.to_markdown(per_label=False))

    def test_arguments_are_checked(self):
        table = hand_table()
        options = dict(inputs="text", ground_truth="label")
        for name, value in [
            ("threshold", 1.0),
            ("threshold", 0.0),
            ("num_bins", 0),
            ("min_labelled", 0),
            ("block_size", 2.5),
        ]:
            with self.assertRaisesRegex(ValueError, f"`{name}`"):
                teacher_report(table, ABC, **options, **{name: value})
        classifier = student_classifier("packed")
        with self.assertRaisesRegex(ValueError, "trained on the teachers"):
            teacher_report(table, ABC, **options, classifier=classifier)
        two_labels = tiny_classifier(
            tiny_backbone(task_layout="packed"), num_labels=2
        )
        with self.assertRaisesRegex(ValueError, "classifier predicts 2"):
            teacher_report(
                student_table(),
                STUDENT_VOCABULARY,
                FEATURES,
                "label",
                classifier=two_labels,
            )
        four_teachers = tiny_classifier(
            tiny_backbone(num_teachers=4, task_layout="packed")
        )
        with self.assertRaisesRegex(ValueError, "4 teacher tasks"):
            teacher_report(table, ABC, **options, classifier=four_teachers)


class StudentReportTest(TestCase):
    def assertPictures(self, paths, names):
        TeacherReportTest.assertPictures(self, paths, names)

    def assertTaskSimilarity(self, report, layer):
        """The report's task similarity: cosines of the layer's embeddings."""
        embeddings = np.asarray(ops.convert_to_numpy(layer.embeddings))
        unit = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
        self.assertAllClose(report.task_similarity, unit @ unit.T, atol=1e-6)

    def check_student(self, classifier, table, report):
        scored = ~np.isnan(
            np.stack([table[n] for n in STUDENT_VOCABULARY.teachers], 1)
        )
        labels = table["label"]
        keep = scored.any(axis=1) | ~np.isnan(labels)
        inputs = {name: table[name][keep] for name in FEATURES}
        tasks = classifier.predict(inputs, all_tasks=True, verbose=0)
        for k, name in enumerate(STUDENT_VOCABULARY.teachers):
            rows = ~np.isnan(table[name][keep])
            student, teacher = tasks[rows, k + 1, 0], table[name][keep][rows]
            self.assertEqual(report.fidelity_rows[k, 0], rows.sum())
            self.assertAlmostEqual(
                report.fidelity_mae[k, 0],
                np.abs(student - teacher).mean(),
                places=5,
            )
            self.assertAlmostEqual(
                report.fidelity_corr[k, 0],
                np.corrcoef(student, teacher)[0, 1],
                places=5,
            )
        labelled = ~np.isnan(labels[keep])
        reading = classifier.predict(inputs, verbose=0)[labelled, 0]
        self.assertEqual(report.student["labelled"][0], labelled.sum())
        self.assertAlmostEqual(
            report.student["pr_auc"][0],
            average_precision_score(labels[keep][labelled], reading),
            places=5,
        )
        self.assertAlmostEqual(
            report.student["ece"][0],
            ece_by_loop(labels[keep][labelled], reading, 10),
            places=5,
        )

    def test_packed_student_with_a_combination(self):
        table = student_table(seed=0)
        classifier = trained(
            student_classifier("packed"),
            table,
        )
        labelled = ~np.isnan(table["label"])
        inputs = {name: table[name][labelled] for name in FEATURES}
        classifier.fit_combination(inputs, table["label"][labelled])
        self.assertIsNotNone(classifier.combination)
        held_out = student_table(seed=1)
        report = teacher_report(
            held_out,
            STUDENT_VOCABULARY,
            inputs=FEATURES,
            ground_truth="label",
            classifier=classifier,
            block_size=40,
        )
        self.check_student(classifier, held_out, report)
        self.assertEqual(
            report.combination_weights, classifier.combination.weights
        )
        self.assertTaskSimilarity(report, classifier.backbone.task_tokens)
        self.assertAllClose(np.diag(report.task_similarity), np.ones(4))
        frame = report.to_frame()
        self.assertAllClose(
            frame["combination_weight"], classifier.combination.weights
        )
        self.assertAllClose(frame["fidelity_mae"], report.fidelity_mae[:, 0])
        markdown = report.to_markdown()
        self.assertIn("read by learned combination", markdown)
        self.assertIn("**Task embeddings** (cosine similarity)", markdown)
        self.assertIn("| ground_truth | 1.000 |", markdown)
        self.assertPictures(
            report.plot(self.get_temp_dir()),
            ["reliability", "conflict", "task_similarity"],
        )

    def test_per_example_student(self):
        table = student_table(seed=2)
        classifier = trained(
            tiny_classifier(teacher_vocabulary=STUDENT_VOCABULARY), table
        )
        report = teacher_report(
            table,
            STUDENT_VOCABULARY,
            inputs=FEATURES,
            ground_truth="label",
            classifier=classifier,
        )
        self.check_student(classifier, table, report)
        self.assertIsNone(report.combination_weights)
        self.assertNotIn("combination_weight", report.to_frame().columns)
        self.assertIn("read by task 0", report.to_markdown())
        self.assertTaskSimilarity(report, classifier.backbone.teacher_embedding)

    def test_sparse_student_reads_each_row_s_own_tasks(self):
        table = student_table(seed=4)
        classifier = student_classifier("sparse")
        labelled = ~np.isnan(table["label"])
        classifier.fit_combination(
            {name: table[name][labelled] for name in FEATURES},
            table["label"][labelled],
        )
        options = dict(inputs=FEATURES, ground_truth="label", block_size=40)
        predict = mock.patch.object(
            classifier, "predict", wraps=classifier.predict
        )
        with predict as spy:
            report = teacher_report(
                table, STUDENT_VOCABULARY, **options, classifier=classifier
            )
        # One pass per block for the scored tasks, one for the reading: no
        # pass reads every task.
        self.assertEqual(spy.call_count, 2 * 3)
        for call in spy.call_args_list:
            self.assertNotIn("all_tasks", call.kwargs)
        self.check_student(classifier, table, report)
        self.assertIsNotNone(classifier.combination)
        self.assertTaskSimilarity(report, classifier.backbone.task_tokens)

    def test_student_on_a_table_with_no_ground_truth_and_a_silent_teacher(
        self,
    ):
        table = student_table(seed=3)
        del table["label"]
        table["bold"][:] = nan
        classifier = student_classifier("packed")
        report = teacher_report(
            table, STUDENT_VOCABULARY, inputs=FEATURES, classifier=classifier
        )
        self.assertEqual(report.fidelity_rows[1, 0], 0)
        self.assertTrue(np.isnan(report.fidelity_mae[1, 0]))
        self.assertTrue(np.isnan(report.fidelity_corr[1, 0]))
        self.assertTrue(np.isfinite(report.fidelity_mae[[0, 2], 0]).all())
        self.assertEqual(report.student["labelled"][0], 0)
        self.assertTrue(np.isnan(report.student["pr_auc"]).all())
        self.assertEqual(
            [note.split(":")[0] for note in report.notes],
            [
                "No row has a ground-truth label",
                "Teacher 'bold' scored no row",
            ],
        )
        self.assertIn("PR-AUC n/a, ECE n/a on 0 labelled rows", str(report))
        self.assertPictures(
            report.plot(self.get_temp_dir()),
            ["reliability", "conflict", "task_similarity"],
        )


class TextStudentReportTest(TestCase):
    def test_text_student_on_a_csv(self):
        from tests.data.test_text import corpus
        from tests.data.test_text import tokenizer
        from tests.models.test_teacher2task_preprocessor import text_classifier

        preprocessor = keras_t2t.models.Teacher2TaskPreprocessor(
            tokenizer(), sequence_length=8
        )
        classifier = text_classifier(preprocessor, task_layout="packed")
        table = wide_table(num_rows=40, seed=5)
        table["text"] = np.array(corpus(40, seed=5))
        del table["row"]
        path = os.path.join(self.get_temp_dir(), "reviews.csv")
        to_frame(table).to_csv(path, index=False)
        report = teacher_report(
            path,
            VOCABULARY,
            inputs="text",
            ground_truth="label",
            classifier=classifier,
            block_size=16,
        )
        tasks = classifier.predict(
            {"text": table["text"]}, all_tasks=True, verbose=0
        )
        for k, name in enumerate(VOCABULARY.teachers):
            rows = ~np.isnan(table[name])
            self.assertAlmostEqual(
                report.fidelity_mae[k, 0],
                np.abs(tasks[rows, k + 1, 0] - table[name][rows]).mean(),
                places=5,
            )


class DiagnosticsGuideTest(TestCase):
    def test_the_guide_block_and_its_excerpt(self):
        from tests.test_readme import ROOT
        from tests.test_readme import run_page_block

        page = os.path.join(ROOT, "docs", "guides", "diagnostics.md")
        heading = "## A report, before and after training"
        directory = self.get_temp_dir()
        namespace = run_page_block(page, heading, directory)
        report = namespace["report"]
        classifier = namespace["classifier"]
        self.assertEqual(report.num_rows, 500)
        self.assertEqual(
            report.combination_weights, classifier.combination.weights
        )
        self.assertTrue(np.isfinite(report.fidelity_corr).all())
        pictures = {
            name: os.path.join(directory, path)
            for name, path in namespace["pictures"].items()
        }
        TeacherReportTest.assertPictures(
            self, pictures, ["reliability", "conflict", "task_similarity"]
        )
        # The excerpt's teacher columns (up to ECE) are the table's, on any
        # backend; the student's columns vary with the backend's numerics.
        section = open(page).read().split(heading, 1)[1]
        markdown = report.to_markdown()
        for name in report.teachers:
            excerpt = next(
                line
                for line in section.splitlines()
                if line.startswith(f"| {name} | 39")
            )
            row = next(
                line
                for line in markdown.splitlines()
                if line.startswith(f"| {name} | ")
            )
            self.assertEqual(row.split("|")[:10], excerpt.split("|")[:10])
