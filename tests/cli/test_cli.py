"""The `keras-t2t` command line, end to end in subprocesses."""

import argparse
import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd

import keras_t2t
import keras_t2t_command
from keras_t2t import cli
from tests.markers import tensorflow_only_end_to_end
from tests.test_case import TestCase

POSITIVE = ["good", "great", "lovely", "fine", "gripping"]
NEGATIVE = ["bad", "awful", "dull", "poor", "boring"]
OTHER = ["film", "movie", "plot", "the", "a", "story"]
TINY = [
    "--steps", "20", "--eval-every", "10", "--batch-size", "16",
    "--num-layers", "1", "--num-heads", "2", "--hidden-dim", "16",
    "--intermediate-dim", "32", "--vocabulary-size", "60",
    "--sequence-length", "16",
]  # fmt: skip
TEXT_TABLE = [
    "--inputs", "text", "--ground-truth", "label",
    "--teachers", "vader,textblob,afinn",
]  # fmt: skip


def reviews(rows=160, seed=0):
    """Snippets of sentiment words; 30% labelled, one sparse teacher."""
    rng = np.random.default_rng(seed)
    records = []
    for _ in range(rows):
        positive = rng.random() < 0.5
        words = list(rng.choice(POSITIVE if positive else NEGATIVE, 2))
        words += list(rng.choice(OTHER, 3))
        rng.shuffle(words)
        score = 0.75 if positive else 0.25
        records.append(
            {
                "text": " ".join(words),
                "label": float(positive) if rng.random() < 0.3 else np.nan,
                "vader": np.clip(score + rng.normal(0, 0.2), 0, 1),
                "textblob": (
                    np.clip(score + rng.normal(0, 0.3), 0, 1)
                    if rng.random() < 0.8
                    else np.nan
                ),
                "afinn": np.clip(0.5 + rng.normal(0, 0.2), 0, 1),
            }
        )
    return pd.DataFrame(records)


def feature_table(rows, labelled, seed=1):
    """Three numeric features `f0..f2`, a `label` known on a `labelled`
    share of the rows, and two teachers (`model_a` reads f0, `model_b`)."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.random((rows, 3)), columns=["f0", "f1", "f2"])
    truth = (frame["f0"] > 0.5).astype(float)
    frame["label"] = np.where(rng.random(rows) < labelled, truth, np.nan)
    frame["model_a"] = np.clip(frame["f0"] + rng.normal(0, 0.1, rows), 0, 1)
    frame["model_b"] = np.clip(frame["f1"], 0, 1)
    return frame


def run_cli(*args):
    """Runs `keras-t2t ARGS` in a fresh process on this backend."""
    return subprocess.run(
        [sys.executable, "-m", "keras_t2t_command", *args],
        capture_output=True,
        text=True,
        timeout=600,
        env=dict(os.environ),
    )


class CommandLineTest(TestCase):
    @classmethod
    def setUpClass(cls):
        import tempfile

        cls.root = tempfile.mkdtemp()
        cls.csv = os.path.join(cls.root, "reviews.csv")
        reviews().to_csv(cls.csv, index=False)
        cls.run_dir = os.path.join(cls.root, "runs", "reviews")
        cls.fit = run_cli(
            "fit", cls.csv, *TEXT_TABLE, "--output", cls.run_dir, *TINY
        )

    @classmethod
    def tearDownClass(cls):
        import shutil

        shutil.rmtree(cls.root, ignore_errors=True)

    def test_fit_writes_the_run_folder(self):
        self.assertEqual(self.fit.returncode, 0, self.fit.stderr[-3000:])
        self.assertEqual(
            sorted(os.listdir(self.run_dir)),
            [
                "model.keras",
                "report.md",
                "run.json",
                "serving",
                "task_similarity.png",
                "teacher_conflict.png",
                "teacher_reliability.png",
            ],
        )
        with open(os.path.join(self.run_dir, "report.md")) as f:
            report = f.read()
        self.assertIn("## Teachers and the student (validation rows)", report)
        self.assertIn("| vader", report)
        self.assertTrue(
            os.path.exists(
                os.path.join(self.run_dir, "serving", "1", "saved_model.pb")
            )
        )
        with open(os.path.join(self.run_dir, "run.json")) as f:
            run = json.load(f)
        self.assertEqual(run["teachers"], ["vader", "textblob", "afinn"])
        self.assertEqual(run["input_mode"], "text")
        self.assertTrue(0.0 <= run["validation_pr_auc"] <= 1.0)
        self.assertIn(run["best_step"], (10, 20))
        # The summary of the training table and the validation figures.
        self.assertIn("ground_truth", self.fit.stdout)
        self.assertIn("validation PR-AUC", self.fit.stdout)
        # Nothing left beside the run folder.
        self.assertEqual(os.listdir(os.path.dirname(self.run_dir)), ["reviews"])

    def test_predict_writes_every_row(self):
        output = os.path.join(self.root, "predictions.csv")
        result = run_cli("predict", self.run_dir, self.csv, "--output", output)
        self.assertEqual(result.returncode, 0, result.stderr[-3000:])
        predictions = pd.read_csv(output)
        self.assertEqual(len(predictions), 160)
        self.assertEqual(
            list(predictions.columns),
            [
                "row",
                "confidence",
                "task_ground_truth",
                "task_vader",
                "task_textblob",
                "task_afinn",
            ],
        )
        values = predictions.drop(columns="row").to_numpy()
        self.assertTrue(((values >= 0) & (values <= 1)).all())

    def test_report_on_a_table(self):
        output = os.path.join(self.root, "report.md")
        result = run_cli("report", self.run_dir, self.csv, "--output", output)
        self.assertEqual(result.returncode, 0, result.stderr[-3000:])
        with open(output) as f:
            report = f.read()
        self.assertIn(report.strip(), result.stdout)
        for teacher in ("vader", "textblob", "afinn"):
            self.assertIn(f"| {teacher}", report)
        self.assertIn("160 rows", report)

    def test_bad_input_exits_2_with_one_line(self):
        # In a subprocess: no traceback, one line, nothing written.
        output = os.path.join(self.root, "runs", "bad")
        result = run_cli(
            "fit", self.csv, "--inputs", "text", "--ground-truth", "label",
            "--teachers", "vader,gemini", "--output", output,
        )  # fmt: skip
        self.assertEqual(result.returncode, 2)
        self.assertNotIn("Traceback", result.stderr)
        self.assertIn("no column 'gemini'", result.stderr)
        self.assertFalse(os.path.exists(output))


class StartUpTest(TestCase):
    """Help and argument errors answer before Keras loads; commands start
    without TensorFlow's log."""

    def run_python(self, code, env=None):
        return subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            timeout=600,
            env=env or dict(os.environ),
        )

    def test_help_shows_every_option_with_its_default(self):
        commands = (
            keras_t2t_command._parser()._subparsers._group_actions[0].choices
        )
        for name, command in commands.items():
            for action in command._actions:
                self.assertTrue(action.help, (name, action.dest))
        text = " ".join(commands["fit"].format_help().split())
        for default in (
            "Training steps in all. (default: 900)",
            "(default: 100)",
            "(default: 64)",
            "(default: 0.001)",
            "initial weights. (default: 0)",
        ):
            self.assertIn(default, text)
        self.assertNotIn("(default: None)", text)

    def test_help_and_bad_arguments_load_no_framework(self):
        code = (
            "import sys\n"
            "import keras_t2t_command as cli\n"
            "for argv in (['fit', '--help'], ['fit', 'table.csv']):\n"
            "    try:\n"
            "        cli.main(argv)\n"
            "    except SystemExit:\n"
            "        pass\n"
            "heavy = ('keras', 'tensorflow', 'keras_hub', 'jax', 'torch',\n"
            "         'pandas')\n"
            "print(sorted(name for name in heavy if name in sys.modules))\n"
        )
        result = self.run_python(code)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout.strip().splitlines()[-1], "[]")
        self.assertIn("--teachers", result.stderr)

    def test_a_command_starts_without_the_framework_log(self):
        env = dict(os.environ)
        env.pop("TF_CPP_MIN_LOG_LEVEL", None)
        missing = os.path.join(self.get_temp_dir(), "nope.csv")
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "keras_t2t_command",
                "fit",
                missing,
                *TEXT_TABLE,
                "--output",
                self.get_temp_dir(),
            ],  # fmt: skip
            capture_output=True,
            text=True,
            timeout=600,
            env=env,
        )
        self.assertEqual(result.returncode, 2, result.stderr)
        self.assertEqual(
            result.stderr.strip().splitlines(),
            [f"keras-t2t fit: error: No file {missing}: no such file."],
        )


class CommandLineErrorsTest(TestCase):
    """Bad input, in this process (each case would start a backend)."""

    def setUp(self):
        super().setUp()
        self.root = self.get_temp_dir()
        self.output = os.path.join(self.root, "run")

    def table(self, frame, name="table.csv"):
        path = os.path.join(self.root, name)
        if name.endswith(".parquet"):
            frame.to_parquet(path)
        else:
            frame.to_csv(path, index=False)
        return path

    def assertExits2(self, args, message):
        from contextlib import redirect_stderr
        from io import StringIO

        stderr = StringIO()
        with redirect_stderr(stderr):
            code = keras_t2t_command.main(args)
        self.assertEqual(code, 2, stderr.getvalue())
        lines = stderr.getvalue().strip().splitlines()
        self.assertEqual(len(lines), 1, lines)
        self.assertIn(message, lines[0])
        self.assertFalse(os.path.exists(self.output))
        self.assertEqual(
            [n for n in os.listdir(self.root) if n.startswith(".keras-t2t")],
            [],
        )

    def fit_args(self, path, teachers="vader,textblob,afinn", *extra):
        return [
            "fit", path, "--inputs", "text", "--ground-truth", "label",
            "--teachers", teachers, "--output", self.output, *TINY, *extra,
        ]  # fmt: skip

    def assertRefusedByParser(self, args, message):
        from contextlib import redirect_stderr
        from io import StringIO

        stderr = StringIO()
        with redirect_stderr(stderr), self.assertRaises(SystemExit) as exit:
            keras_t2t_command.main(args)
        self.assertEqual(exit.exception.code, 2)
        self.assertIn(message, stderr.getvalue())
        self.assertFalse(os.path.exists(self.output))

    def test_numbers_out_of_range_are_refused_before_reading(self):
        path = os.path.join(self.root, "never_read.csv")
        for flag, value, message in (
            ("--steps", "0", "--steps: must be >= 1, received 0"),
            ("--batch-size", "-4", "--batch-size: must be >= 1, received -4"),
            ("--eval-every", "ten", "expected an integer, received 'ten'"),
            ("--learning-rate", "0", "--learning-rate: must be > 0"),
            ("--learning-rate", "nan", "--learning-rate: must be > 0"),
            ("--validation-share", "1.0", "between 0 and 1"),
            ("--validation-share", "0", "between 0 and 1"),
        ):
            with self.subTest(flag=flag, value=value):
                self.assertRefusedByParser(
                    self.fit_args(path, "vader", flag, value), message
                )

    def test_a_column_in_two_roles(self):
        frame = pd.DataFrame({"text": ["a"], "label": [1.0], "vader": [0.2]})
        self.assertExits2(
            self.fit_args(self.table(frame), "label,vader"),
            "column 'label' is named in --ground-truth and --teachers",
        )
        self.assertExits2(
            self.fit_args(self.table(frame), "vader,vader"),
            "column 'vader' is named twice in --teachers",
        )

    def test_eval_every_beyond_steps(self):
        frame = pd.DataFrame({"text": ["a"], "label": [1.0], "vader": [0.2]})
        self.assertExits2(
            self.fit_args(
                self.table(frame), "vader", "--steps", "5", "--eval-every", "6"
            ),
            "--eval-every 6 is more than --steps 5",
        )

    def test_a_missing_extra_is_named(self):
        from contextlib import redirect_stderr
        from io import StringIO
        from unittest import mock

        frame = pd.DataFrame({"text": ["a"], "label": [1.0], "vader": [0.2]})
        path = self.table(frame)
        stderr = StringIO()
        # As after `pip install keras-t2t` without the `data` extra.
        with mock.patch.dict(sys.modules, {"pandas": None}):
            with redirect_stderr(stderr):
                code = keras_t2t_command.main(self.fit_args(path, "vader"))
        self.assertEqual(code, 1)
        lines = stderr.getvalue().strip().splitlines()
        self.assertEqual(len(lines), 1, lines)
        self.assertIn("`pandas`", lines[0])
        self.assertIn('pip install "keras-t2t[data]"', lines[0])
        self.assertFalse(os.path.exists(self.output))

    def test_missing_file(self):
        self.assertExits2(
            self.fit_args(os.path.join(self.root, "nope.csv")),
            "nope.csv: no such file",
        )

    def test_unreadable_file(self):
        path = os.path.join(self.root, "broken.parquet")
        with open(path, "wb") as f:
            f.write(b"not a parquet file")
        self.assertExits2(self.fit_args(path), "cannot be read as .parquet")

    def test_unknown_format(self):
        path = os.path.join(self.root, "table.xlsx")
        open(path, "w").close()
        self.assertExits2(self.fit_args(path), "unknown table format '.xlsx'")

    def test_missing_column(self):
        self.assertExits2(
            self.fit_args(self.table(reviews()), "vader,gemini"),
            "no column 'gemini'",
        )

    def test_unlisted_column(self):
        self.assertExits2(
            self.fit_args(self.table(reviews()), "vader,textblob"),
            "column 'afinn' is neither an input",
        )

    def test_score_out_of_range(self):
        frame = reviews()
        frame.loc[7, "vader"] = 5.0
        self.assertExits2(
            self.fit_args(self.table(frame, "t.parquet")), "vader"
        )

    def test_an_out_of_range_score_in_command_line_terms(self):
        # The advice names the flag, the value is shown as written and
        # the row by its line in the CSV (header on line 1).
        frame = reviews()
        frame.loc[7, "vader"] = 1.7
        path = self.table(frame)
        self.assertExits2(self.fit_args(path), "--rescale")
        self.assertExits2(self.fit_args(path), "scored 1.7,")
        self.assertExits2(self.fit_args(path), f"Row 7 (line 9 of {path})")

    def test_rescale_maps_scores_onto_0_1(self):
        frame = reviews()
        frame["vader"] = frame["vader"] * 10 - 5  # [-5, 5]
        rules = keras_t2t_command._rescale("vader=-5:5, textblob=sigmoid")
        self.assertEqual(rules, {"vader": [-5.0, 5.0], "textblob": "sigmoid"})
        vocabulary = keras_t2t.TeacherVocabulary(["vader", "textblob"])
        targets = cli._targets(
            frame,
            {"text": frame["text"].to_numpy()},
            vocabulary,
            "label",
            rules,
        )
        np.testing.assert_allclose(
            targets[:, 1, 0], (frame["vader"] + 5) / 10, atol=1e-6
        )
        np.testing.assert_allclose(
            targets[:, 2, 0], 1 / (1 + np.exp(-frame["textblob"])), atol=1e-6
        )
        for bad in ("vader=5:-5", "vader=tanh", "vader=1:x"):
            with (
                self.subTest(rule=bad),
                self.assertRaises(argparse.ArgumentTypeError),
            ):
                keras_t2t_command._rescale(bad)

    def test_no_labels(self):
        frame = reviews()
        frame["label"] = np.nan
        self.assertExits2(
            self.fit_args(self.table(frame)), "has 0 labelled rows"
        )

    def test_output_not_empty(self):
        os.makedirs(self.output)
        open(os.path.join(self.output, "keep.txt"), "w").close()
        args = self.fit_args(self.table(reviews()))
        from contextlib import redirect_stderr
        from io import StringIO

        stderr = StringIO()
        with redirect_stderr(stderr):
            self.assertEqual(keras_t2t_command.main(args), 2)
        self.assertIn("exists and is not empty", stderr.getvalue())
        self.assertEqual(os.listdir(self.output), ["keep.txt"])

    def test_predict_needs_a_run_folder(self):
        self.output = os.path.join(self.root, "predictions.csv")
        self.assertExits2(
            [
                "predict",
                self.root,
                self.table(reviews()),
                "--output",
                self.output,
            ],
            "not a run folder",
        )


@tensorflow_only_end_to_end
class FeatureTableTest(TestCase):
    def test_parquet_feature_columns_fit_and_predict(self):
        frame = feature_table(120, labelled=0.3)
        frame["id"] = np.arange(120)
        root = self.get_temp_dir()
        path = os.path.join(root, "table.parquet")
        frame.to_parquet(path)
        output = os.path.join(root, "run")
        result = run_cli(
            "fit", path, "--inputs", "f0,f1,f2", "--ground-truth", "label",
            "--teachers", "model_a,model_b", "--ignore-columns", "id",
            "--output", output, *TINY,
        )  # fmt: skip
        self.assertEqual(result.returncode, 0, result.stderr[-3000:])
        with open(os.path.join(output, "run.json")) as f:
            self.assertEqual(json.load(f)["input_mode"], "features")
        predictions = os.path.join(root, "predictions.csv")
        result = run_cli("predict", output, path, "--output", predictions)
        self.assertEqual(result.returncode, 0, result.stderr[-3000:])
        self.assertEqual(len(pd.read_csv(predictions)), 120)


IMAGE_TEACHERS = ("sharp", "blurred", "human")


def patch_images(rows=120, seed=0):
    """A table shaped like the image recipe's: per row a sequence of 16
    patch vectors of 4 values, 10 one-hot labels (a list per cell, None
    where unknown), teachers scoring a list of 10 confidences per row
    (`human` only some rows; None where it did not score)."""
    rng = np.random.default_rng(seed)
    digits = rng.integers(0, 10, rows)
    patches = rng.random((rows, 16, 4)).astype("float32") * 0.2
    patches[np.arange(rows), digits] += 0.8  # The digit's patch lights up.
    one_hot = np.eye(10)[digits]
    sharp = np.clip(one_hot * 0.7 + rng.random((rows, 10)) * 0.3, 0, 1)
    blurred = np.full((rows, 10), 0.1) + one_hot * rng.random((rows, 1)) * 0.5
    records = []
    for row in range(rows):
        records.append(
            {
                "patches": [list(map(float, p)) for p in patches[row]],
                "label": list(one_hot[row]) if row % 3 == 0 else None,
                "sharp": list(sharp[row]),
                "blurred": list(blurred[row]),
                "human": list(one_hot[row]) if row % 4 == 0 else None,
            }
        )
    return pd.DataFrame(records)


IMAGE_TABLE = [
    "--inputs", "patches", "--ground-truth", "label",
    "--teachers", ",".join(IMAGE_TEACHERS),
]  # fmt: skip


@tensorflow_only_end_to_end
class ImageTableTest(TestCase):
    """A multi-label Parquet table of vector sequences: fit, predict and
    report, one subprocess each, run once for every test."""

    @classmethod
    def setUpClass(cls):
        import tempfile

        cls.root = tempfile.mkdtemp()
        cls.table = os.path.join(cls.root, "images.parquet")
        patch_images().to_parquet(cls.table)
        cls.run_dir = os.path.join(cls.root, "run")
        cls.fit = run_cli(
            "fit", cls.table, *IMAGE_TABLE, "--output", cls.run_dir, *TINY
        )
        cls.predictions = os.path.join(cls.root, "predictions.csv")
        cls.predict = run_cli(
            "predict", cls.run_dir, cls.table, "--output", cls.predictions
        )
        cls.report = run_cli("report", cls.run_dir, cls.table, "--per-label")

    @classmethod
    def tearDownClass(cls):
        import shutil

        shutil.rmtree(cls.root, ignore_errors=True)

    def test_fit_reads_labels_and_vector_sequences(self):
        self.assertEqual(self.fit.returncode, 0, self.fit.stderr[-3000:])
        with open(os.path.join(self.run_dir, "run.json")) as f:
            run = json.load(f)
        self.assertEqual(run["input_mode"], "sequence")
        self.assertEqual(run["input_shape"], [16, 4])
        self.assertEqual(run["num_labels"], 10)
        with open(os.path.join(self.run_dir, "report.md")) as f:
            report = f.read()
        for teacher in IMAGE_TEACHERS:
            self.assertIn(f"| {teacher} |", report)

    def test_predict_writes_a_column_per_label(self):
        self.assertEqual(
            self.predict.returncode, 0, self.predict.stderr[-3000:]
        )
        predictions = pd.read_csv(self.predictions)
        self.assertEqual(len(predictions), 120)
        expected = ["row"]
        for label in range(10):
            expected.append(f"confidence_{label}")
            for name in ("ground_truth", *IMAGE_TEACHERS):
                expected.append(f"task_{name}_{label}")
        self.assertEqual(list(predictions.columns), expected)
        values = predictions.drop(columns="row").to_numpy()
        self.assertTrue(((values >= 0) & (values <= 1)).all())

    def test_report_per_label(self):
        self.assertEqual(self.report.returncode, 0, self.report.stderr[-3000:])
        text = self.report.stdout
        self.assertIn("120 rows", text)
        # A row per teacher and label; `human` scored every 4th row.
        for teacher in IMAGE_TEACHERS:
            for label in (0, 9):
                self.assertIn(f"| {teacher} | {label} |", text)
        self.assertIn("| human | 0 | 30 |", text)

    def test_predict_refuses_another_shape(self):
        frame = patch_images(rows=8)
        frame.at[0, "patches"] = frame.at[0, "patches"][:15]
        path = os.path.join(self.root, "short.parquet")
        frame.to_parquet(path)
        output = os.path.join(self.root, "unused.csv")
        stderr = self.cli_exits_2(
            "predict", self.run_dir, path, "--output", output
        )
        self.assertIn(
            "Row 0: column 'patches' holds 15 vector(s) of 4 value(s); the "
            "run was fitted on 16 of 4",
            stderr,
        )
        self.assertFalse(os.path.exists(output))

    def cli_exits_2(self, *args):
        from contextlib import redirect_stderr
        from io import StringIO

        stderr = StringIO()
        with redirect_stderr(stderr):
            self.assertEqual(
                keras_t2t_command.main(list(args)), 2, stderr.getvalue()
            )
        lines = stderr.getvalue().strip().splitlines()
        self.assertEqual(len(lines), 1, lines)
        return lines[0]


class MalformedCellsTest(TestCase):
    """Malformed cells of an image-shaped table, in this process: each
    is refused before training, naming its row and column."""

    def fit_exits_2(self, frame, message):
        from contextlib import redirect_stderr
        from io import StringIO

        root = self.get_temp_dir()
        path = os.path.join(root, "images.parquet")
        frame.to_parquet(path)
        output = os.path.join(root, "run")
        stderr = StringIO()
        with redirect_stderr(stderr):
            code = keras_t2t_command.main(
                ["fit", path, *IMAGE_TABLE, "--output", output, *TINY]
            )
        self.assertEqual(code, 2, stderr.getvalue())
        lines = stderr.getvalue().strip().splitlines()
        self.assertEqual(len(lines), 1, lines)
        self.assertIn(message, lines[0])
        self.assertEqual(os.listdir(root), ["images.parquet"])

    def test_ragged_vectors(self):
        frame = patch_images(rows=12)
        frame.at[5, "patches"] = [[0.1] * 4] * 3 + [[0.1] * 3] + [[0.1] * 4]
        self.fit_exits_2(
            frame,
            "Row 5: column 'patches' holds ragged vectors: vector 0 has 4 "
            "values, vector 3 has 3",
        )

    def test_another_sequence_length(self):
        frame = patch_images(rows=12)
        frame.at[7, "patches"] = frame.at[7, "patches"][:15]
        self.fit_exits_2(
            frame,
            "Row 7: column 'patches' holds 15 vector(s) of 4 value(s); row 0 "
            "holds 16 of 4",
        )

    def test_missing_input(self):
        frame = patch_images(rows=12)
        frame.at[2, "patches"] = None
        self.fit_exits_2(frame, "Row 2: column 'patches' holds None")

    def test_a_teacher_with_another_number_of_labels(self):
        frame = patch_images(rows=12)
        frame.at[3, "sharp"] = frame.at[3, "sharp"][:9]
        self.fit_exits_2(
            frame, "Row 3: column 'sharp' holds 9 label(s), row 0 holds 10"
        )

    def test_a_score_out_of_range_in_a_list(self):
        frame = patch_images(rows=12)
        frame.at[4, "blurred"] = [0.1] * 9 + [3.0]
        self.fit_exits_2(frame, "Row 4: teacher 'blurred' (column 'blurred'")
