"""The table reader the command line uses: `read_table`, `read_targets`
and `read_sequences`, and the messages they share with `expand`."""

import os
import re

import numpy as np
import pytest

from keras_t2t.data import expand
from keras_t2t.data import read_sequences
from keras_t2t.data import read_table
from keras_t2t.data import read_targets
from tests.data.tables import VOCABULARY
from tests.data.tables import to_frame
from tests.data.tables import wide_table
from tests.test_case import TestCase

INPUTS = ["row", "text"]


def patches(rows=4, length=3, size=2):
    """A column whose cells are lists of `length` vectors of `size`."""
    rng = np.random.default_rng(0)
    return [rng.random((length, size)).tolist() for _ in range(rows)]


class ReadTableTest(TestCase):
    def setUp(self):
        super().setUp()
        self.directory = self.get_temp_dir()
        self.table = wide_table(num_rows=9, seed=1)

    def path(self, name):
        return os.path.join(self.directory, name)

    def test_reads_every_format_alike(self):
        frame = to_frame(self.table)
        frame.to_csv(self.path("t.csv"), index=False)
        frame.to_parquet(self.path("t.parquet"))
        frame.to_json(self.path("t.jsonl"), orient="records", lines=True)
        for name in ("t.csv", "t.parquet", "t.jsonl"):
            read = read_table(self.path(name))
            self.assertEqual(list(read.columns), list(frame.columns))
            self.assertAllClose(read["vader"], frame["vader"])

    def test_missing_file(self):
        with pytest.raises(ValueError, match="nope.csv: no such file"):
            read_table(self.path("nope.csv"))

    def test_unknown_format(self):
        open(self.path("table.xlsx"), "w").close()
        for read in (read_table, self.expand):
            with pytest.raises(
                ValueError, match="unknown table format '.xlsx'"
            ):
                read(self.path("table.xlsx"))

    def test_unreadable_file(self):
        with open(self.path("broken.parquet"), "wb") as f:
            f.write(b"not a parquet file")
        for read in (read_table, self.expand):
            with pytest.raises(ValueError, match="cannot be read as .parquet"):
                read(self.path("broken.parquet"))

    def test_text_that_is_not_utf8_names_the_file_and_the_fix(self):
        path = self.path("latin1.csv")
        with open(path, "wb") as f:
            f.write("text,label\ncaf\u00e9,1\n".encode("latin-1"))
        message = "latin1.csv: is not UTF-8 text (byte 0xe9"
        with self.assertRaisesRegex(ValueError, re.escape(message)):
            read_table(path)
        with self.assertRaisesRegex(ValueError, "save it as UTF-8"):
            expand(
                path,
                VOCABULARY,
                inputs=["text"],
                ground_truth="label",
                batch_size=2,
            )

    def test_malformed_json_lines_names_the_line(self):
        path = self.path("t.jsonl")
        with open(path, "w") as f:
            f.write('{"row": 1, "label": 0}\n\n{"row": 2, "label": 1}\n')
            f.write('{"row": 3, "label": \n')
        with self.assertRaisesRegex(ValueError, r"t\.jsonl, line 4: not a"):
            read_table(path)

    def test_a_table_without_rows(self):
        to_frame(self.table).iloc[:0].to_csv(self.path("e.csv"), index=False)
        with pytest.raises(ValueError, match="e.csv: the table has no rows"):
            read_table(self.path("e.csv"))

    def test_a_tfrecord_file_streams(self):
        open(self.path("t.tfrecord"), "w").close()
        with pytest.raises(ValueError, match="a TFRecord table streams"):
            read_table(self.path("t.tfrecord"))

    def expand(self, path):
        return expand(path, VOCABULARY, INPUTS, "label", batch_size=4)


class ReadTargetsTest(TestCase):
    def test_targets_as_expand_reads_them(self):
        table = wide_table(num_rows=6, seed=3)
        targets = read_targets(
            table, VOCABULARY, inputs=INPUTS, ground_truth="label"
        )
        self.assertEqual(targets.shape, (6, 4, 1))
        self.assertAllClose(targets[:, 0, 0], table["label"])
        self.assertAllClose(targets[:, 2, 0], table["textblob"])

    def test_a_bad_score_names_its_row(self):
        table = wide_table(num_rows=6, seed=3)
        table["afinn"][4] = 3.0
        with pytest.raises(ValueError, match="Row 4: teacher 'afinn'"):
            read_targets(table, VOCABULARY, inputs=INPUTS, ground_truth="label")


class ReadSequencesTest(TestCase):
    def test_lists_of_vectors(self):
        cells = patches()
        array = read_sequences(cells, "patches")
        self.assertEqual(array.shape, (4, 3, 2))
        self.assertAllClose(array[1], cells[1])

    def test_a_flat_list_is_a_sequence_of_scalars(self):
        array = read_sequences([[1, 2, 3], [4, 5, 6]], "x")
        self.assertEqual(array.shape, (2, 3, 1))

    def test_malformed_cells_name_their_row(self):
        def bad(row, cell):
            cells = patches()
            cells[row] = cell
            return cells

        cases = [
            (bad(2, None), "Row 2: column 'patches' holds None, not a list"),
            (bad(1, [[0.5, 0.5], 0.5, [0.5, 0.5]]), "Row 1: column 'patches' "
             "mixes numbers and vectors"),
            (bad(3, [[0.5, 0.5], [0.5], [0.5, 0.5]]), "Row 3: column "
             "'patches' holds ragged vectors: vector 0 has 2 values, vector "
             "1 has 1"),
            (bad(1, [[0.5, "a"]] * 3), "Row 1: column 'patches' holds a value "
             "that is not a number"),
            (bad(2, [[[0.5]] * 2] * 3), "Row 2: column 'patches' holds "
             "vectors of shape"),
            (bad(0, [[np.nan, 0.5]] * 3), "Row 0: column 'patches' holds NaN"),
            (bad(3, [[0.5, 0.5]] * 2), "Row 3: column 'patches' holds 2 "
             "vector(s) of 2 value(s); row 0 holds 3 of 2"),
        ]  # fmt: skip
        for cells, message in cases:
            with self.subTest(message=message):
                with pytest.raises(ValueError, match=_literal(message)):
                    read_sequences(cells, "patches")

    def test_the_shape_a_model_was_fitted_on(self):
        with pytest.raises(
            ValueError,
            match=_literal(
                "Row 0: column 'x' holds 3 vector(s) of 2 value(s); the run "
                "was fitted on 4 of 2"
            ),
        ):
            read_sequences(patches(), "x", shape=(4, 2))

    def test_expand_names_a_malformed_cell_alike(self):
        table = wide_table(num_rows=4, seed=0)
        cells = np.empty(4, object)
        cells[:] = [np.asarray(cell) for cell in patches()]
        cells[3] = [np.array([0.5, 0.5]), np.array([0.5])] * 2 + [
            np.array([0.5, 0.5])
        ]
        table["patches"] = cells
        with pytest.raises(
            ValueError,
            match=_literal(
                "Row 3: input 'patches' holds ragged vectors: vector 0 has "
                "2 values, vector 1 has 1"
            ),
        ):
            expand(
                table,
                VOCABULARY,
                ["row", "text", "patches"],
                "label",
                batch_size=4,
            )


def _literal(text):
    return re.escape(text)
