import json
import os
from unittest import mock

import numpy as np
import pytest
import tensorflow as tf

import keras_t2t
from keras_t2t.data import expand
from keras_t2t.data import sources
from tests.data.tables import VOCABULARY
from tests.data.tables import collect
from tests.data.tables import expected_examples
from tests.data.tables import to_frame
from tests.data.tables import to_long
from tests.data.tables import wide_table
from tests.test_case import TestCase

INPUTS = ["row", "text"]


def expand_per_example(source, inputs=INPUTS, ground_truth="label", **kwargs):
    """`expand` with the test vocabulary, one example per (row, source)."""
    return expand(
        source,
        VOCABULARY,
        inputs,
        ground_truth,
        task_layout="per_example",
        **kwargs,
    )


def write_examples(path, features):
    """A TFRecord file of one `tf.train.Example` per dict of features."""
    with tf.io.TFRecordWriter(path) as writer:
        for feature in features:
            example = tf.train.Example(
                features=tf.train.Features(feature=feature)
            )
            writer.write(example.SerializeToString())


def write_records(path, table, drop=(), as_int=()):
    """`table` as TFRecord; `drop` holds (row, key) pairs left out."""
    rows = range(len(table["row"]))
    write_examples(path, (_features(table, i, drop, as_int) for i in rows))


def _features(table, i, drop, as_int):
    """The features of row `i`: bytes, int64 or float lists by dtype."""
    feature = {}
    for name, values in table.items():
        if (i, name) in drop:
            continue
        value = np.atleast_1d(values[i])
        if value.dtype.kind in "US":
            kind = tf.train.BytesList(value=[v.encode() for v in value])
            feature[name] = tf.train.Feature(bytes_list=kind)
        elif name in as_int and np.isnan(value).any():
            continue  # No integer for a missing value: no key.
        elif value.dtype.kind in "iu" or name in as_int:
            kind = tf.train.Int64List(value=value.astype("int64"))
            feature[name] = tf.train.Feature(int64_list=kind)
        else:
            kind = tf.train.FloatList(value=value)
            feature[name] = tf.train.Feature(float_list=kind)
    return feature


def write_tfrecord(table, path):
    """The row, text, label and teacher columns of `table` as TFRecord."""
    columns = ["row", "text", "label", *VOCABULARY.teachers]
    write_records(path, {column: table[column] for column in columns})


class TableTestCase(TestCase):
    """A small wide table, its expected examples and a temp folder."""

    num_labels = 2

    def setUp(self):
        super().setUp()
        self.table = wide_table(num_rows=15, num_labels=self.num_labels, seed=5)
        self.expected = expected_examples(self.table)
        self.directory = self.get_temp_dir()

    def path(self, name):
        return os.path.join(self.directory, name)

    def assert_expands_to_expected(self, source, **kwargs):
        dataset = expand_per_example(source, **kwargs)
        self.assertEqual(collect(dataset), self.expected)


class SourcesTest(TableTestCase):
    """Every source and layout gives the same expanded set."""

    def test_dict_of_arrays(self):
        self.assert_expands_to_expected(self.table)

    def test_dataframe(self):
        self.assert_expands_to_expected(to_frame(self.table))

    def test_csv_with_json_list_cells(self):
        frame = to_frame(self.table)
        for column in ["label", *VOCABULARY.teachers]:
            frame[column] = [
                json.dumps([None if np.isnan(v) else float(v) for v in cell])
                for cell in frame[column]
            ]
        frame.to_csv(self.path("table.csv"), index=False)
        self.assert_expands_to_expected(self.path("table.csv"))

    def test_single_label_csv_with_empty_cells(self):
        table = wide_table(num_rows=15, seed=2)
        to_frame(table).to_csv(self.path("single.csv"), index=False)
        with open(self.path("single.csv")) as f:
            self.assertIn(",,", f.read())  # NaN is written as an empty cell.
        dataset = expand_per_example(self.path("single.csv"))
        self.assertEqual(collect(dataset), expected_examples(table))

    def test_json_lines(self):
        to_frame(self.table).to_json(
            self.path("table.jsonl"), orient="records", lines=True
        )
        self.assert_expands_to_expected(self.path("table.jsonl"))

    def test_parquet(self):
        to_frame(self.table).to_parquet(self.path("table.parquet"))
        self.assert_expands_to_expected(self.path("table.parquet"))

    def test_parquet_column_of_vector_sequences(self):
        # Parquet keeps a `(seq, feature_dim)` cell as a list of lists,
        # which pandas reads back as an array of arrays.
        features = np.random.rand(15, 4, 3).astype("float32")
        table = {k: v for k, v in self.table.items() if k != "text"}
        frame = to_frame(table)
        frame["features"] = [[list(v) for v in cell] for cell in features]
        frame.to_parquet(self.path("vectors.parquet"))
        inputs = ["row", "features"]
        read = expand_per_example(self.path("vectors.parquet"), inputs=inputs)
        given = expand_per_example(
            {**table, "features": features}, inputs=inputs
        )
        read, given = list(read.as_numpy_iterator()), list(given)
        self.assertEqual(len(read), len(given))
        for batch, expected in zip(read, given, strict=True):
            x, expected_x = batch[0], expected[0]
            self.assertEqual(x["features"].shape, (4, 3))
            self.assertAllClose(x["features"], expected_x["features"])
            for part, expected_part in zip(
                batch[1:], expected[1:], strict=True
            ):
                self.assertAllClose(part, expected_part)

    def test_ragged_vectors_in_a_parquet_cell_name_the_row(self):
        features = [[[0.5, 0.5], [0.5, 0.5]] for _ in range(15)]
        features[6] = [[0.5, 0.5], [0.5]]
        frame = to_frame({k: v for k, v in self.table.items() if k != "text"})
        frame["features"] = features
        frame.to_parquet(self.path("ragged.parquet"))
        # Refused when the table is read: at once, or, streamed, when its
        # block is reached.
        with self.assertRaisesRegex(Exception, "Row 6: input 'features'"):
            collect(
                expand_per_example(
                    self.path("ragged.parquet"), inputs=["row", "features"]
                )
            )

    def test_tfrecord(self):
        write_tfrecord(self.table, self.path("table.tfrecord"))
        self.assert_expands_to_expected(self.path("table.tfrecord"))

    def test_tf_data(self):
        dataset = tf.data.Dataset.from_tensor_slices(self.table)
        self.assert_expands_to_expected(dataset)

    def test_tfds(self):
        import tensorflow_datasets as tfds

        keras_t2t.data.save_as_tfds(
            {"train": self.table, "test": to_frame(self.table)},
            VOCABULARY,
            INPUTS,
            name="keras_t2t_test_table",
            data_dir=self.directory,
            ground_truth="label",
        )
        for split in ("train", "test"):
            rows = tfds.load(
                "keras_t2t_test_table",
                data_dir=self.directory,
                split=split,
                try_gcs=False,
            )
            self.assert_expands_to_expected(rows, ground_truth=None)

    def test_long_layout(self):
        long = to_long(self.table)
        self.assert_expands_to_expected(
            long, ground_truth=None, layout="long", label_column="label"
        )
        long.to_csv(self.path("long.csv"), index=False)
        self.assert_expands_to_expected(
            self.path("long.csv"),
            ground_truth=None,
            layout="long",
            label_column="label",
            num_labels=2,
        )

    def test_teacher_columns_under_other_names(self):
        table = dict(self.table)
        table["model_a"] = table.pop("vader")
        self.assert_expands_to_expected(
            table,
            teachers={
                "model_a": "vader",
                "textblob": "textblob",
                "afinn": "afinn",
            },
        )

    def test_long_layout_duplicate_pair(self):
        long = to_long(wide_table(num_rows=6, seed=1))
        long = long.drop(columns="label")
        long.loc[len(long)] = long.iloc[2]
        with pytest.raises(
            ValueError, match=r"Row \d+: item 'item-\d+' has more than one"
        ):
            expand_per_example(long, ground_truth=None, layout="long")

    def test_long_layout_unknown_source(self):
        long = to_long(wide_table(num_rows=6, seed=1)).drop(columns="label")
        long.loc[3, "source"] = "gemini"
        with pytest.raises(ValueError, match="Row 3: source 'gemini'"):
            expand_per_example(long, ground_truth=None, layout="long")

    def test_unknown_file_format(self):
        open(self.path("table.xlsx"), "wb").close()
        with pytest.raises(ValueError, match="suffix"):
            expand_per_example(self.path("table.xlsx"), ground_truth=None)

    def test_unsupported_source(self):
        with pytest.raises(ValueError, match="dict of arrays"):
            expand_per_example([1, 2, 3], ground_truth=None)


class StreamedFilesTest(SourcesTest):
    """Large files stream in blocks: same expansion, same checks."""

    def setUp(self):
        super().setUp()
        from keras_t2t.data import sources

        patches = {"STREAM_BYTES": 0, "_FILE_BLOCK_ROWS": 4}
        for name, value in patches.items():
            original = getattr(sources, name)
            setattr(sources, name, value)
            self.addCleanup(setattr, sources, name, original)

    def test_files_stream(self):
        from keras_t2t.data import sources

        table = wide_table(num_rows=15, seed=2)
        to_frame(table).to_csv(self.path("single.csv"), index=False)
        spec = sources.TableSpec(VOCABULARY, INPUTS, "label")
        rows = sources.read_rows(self.path("single.csv"), spec)
        self.assertIsInstance(rows, sources.StreamRows)

    def test_text_that_is_not_utf8_names_the_file_when_streamed(self):
        from keras_t2t.data import sources

        spec = sources.TableSpec(VOCABULARY, ["text"], "label")
        for name, content in (
            ("body.csv", "text,label\ncaf\u00e9,1\n"),
            ("header.csv", "t\u00e9xt,label\na,1\n"),
        ):
            path = self.path(name)
            with open(path, "wb") as f:
                f.write(content.encode("latin-1"))
            with (
                self.subTest(file=name),
                pytest.raises(
                    ValueError, match=rf"{name}: is not UTF-8 text.*save it as"
                ),
            ):
                sources.read_rows(path, spec)

    def test_bad_value_in_a_later_block_names_its_row(self):
        frame = to_frame(wide_table(num_rows=15, seed=2))
        frame.loc[9, "vader"] = 7.0
        frame.to_csv(self.path("bad.csv"), index=False)
        dataset = expand_per_example(self.path("bad.csv"))
        with self.assertRaisesRegex(Exception, "Row 9: teacher 'vader'"):
            collect(dataset)

    def test_summary_streams(self):
        table = wide_table(num_rows=15, seed=2)
        to_frame(table).to_parquet(self.path("single.parquet"))
        streamed = keras_t2t.data.summarize(
            self.path("single.parquet"), VOCABULARY, INPUTS, "label"
        )
        whole = keras_t2t.data.summarize(table, VOCABULARY, INPUTS, "label")
        self.assertEqual(str(streamed), str(whole))


class SeveralFilesTest(TableTestCase):
    """A table in several files (a list or a glob) is one streamed table."""

    def write_parts(self, frame, suffix, sizes=(6, 4, 5)):
        paths, start = [], 0
        for index, size in enumerate(sizes):
            part = frame.iloc[start : start + size]
            path = self.path(f"part-{index}.{suffix}")
            if suffix == "parquet":
                part.to_parquet(path)
            elif suffix == "jsonl":
                part.to_json(path, orient="records", lines=True)
            else:
                part.to_csv(path, index=False)
            paths.append(path)
            start += size
        return paths

    def test_list_of_parquet_files(self):
        paths = self.write_parts(to_frame(self.table), "parquet")
        self.assert_expands_to_expected(paths)

    def test_glob_of_jsonl_files(self):
        self.write_parts(to_frame(self.table), "jsonl")
        self.assert_expands_to_expected(self.path("part-*.jsonl"))

    def test_several_files_stream(self):
        from keras_t2t.data import sources

        paths = self.write_parts(to_frame(self.table), "parquet")
        spec = sources.TableSpec(VOCABULARY, INPUTS, "label")
        rows = sources.read_rows(paths, spec)
        self.assertIsInstance(rows, sources.StreamRows)
        summary = keras_t2t.data.summarize(paths, VOCABULARY, INPUTS, "label")
        whole = keras_t2t.data.summarize(
            self.table, VOCABULARY, INPUTS, "label"
        )
        self.assertEqual(str(summary), str(whole))

    def test_bad_value_names_its_row_and_file(self):
        frame = to_frame(wide_table(num_rows=15, seed=2))
        frame.loc[11, "vader"] = 7.0  # Row 1 of the third file.
        paths = self.write_parts(frame, "csv")
        dataset = expand_per_example(paths)
        with self.assertRaisesRegex(
            Exception, r"Row 11: teacher 'vader'.*part-2\.csv"
        ):
            collect(dataset)

    def test_bad_column_in_the_first_file_is_raised_at_once(self):
        frame = to_frame(wide_table(num_rows=15, seed=2))
        paths = self.write_parts(frame.drop(columns="vader"), "csv")
        with pytest.raises(ValueError, match="no column 'vader'.*part-0"):
            expand_per_example(paths)

    def test_files_of_different_formats_are_an_error(self):
        frame = to_frame(self.table)
        paths = self.write_parts(frame, "csv")[:2]
        paths += self.write_parts(frame, "parquet")[2:]
        with pytest.raises(ValueError, match="share a format"):
            expand_per_example(paths)

    def test_missing_files_are_an_error(self):
        with pytest.raises(ValueError, match="No file matches"):
            expand_per_example(self.path("nothing-*.csv"))
        with pytest.raises(ValueError, match="No file"):
            expand_per_example([self.path("nothing.csv")])


class TableCheckTest(TableTestCase):
    """No column, row or value is lost without a word."""

    num_labels = 1

    def test_an_unknown_column_is_an_error_unless_ignored(self):
        table = dict(self.table, note=np.array(["x"] * 15))
        frame = to_frame(table)
        frame.to_csv(self.path("table.csv"), index=False)
        stream = tf.data.Dataset.from_tensor_slices(table)
        for source in (table, frame, self.path("table.csv"), stream):
            with pytest.raises(
                ValueError,
                match=r"Column 'note' is not an input.*\['note'\].*"
                r"`ignore_columns`",
            ):
                expand_per_example(source)
            self.assert_expands_to_expected(source, ignore_columns=["note"])

    def test_a_teacher_left_out_of_teachers_is_an_error(self):
        with pytest.raises(
            ValueError, match=r"Column 'textblob' is not an input"
        ):
            expand_per_example(self.table, teachers=["vader"])

    def test_a_label_column_without_ground_truth_is_an_error(self):
        with pytest.raises(
            ValueError,
            match=r"Column 'label' looks like the ground truth.*"
            r"ground_truth='label'",
        ):
            expand_per_example(self.table, ground_truth=None)
        stream = tf.data.Dataset.from_tensor_slices(self.table)
        with pytest.raises(ValueError, match="'label' looks like the ground"):
            expand_per_example(stream, ground_truth=None)
        # Training on the teachers alone, on purpose.
        dataset = expand_per_example(
            self.table, ground_truth=None, ignore_columns="label"
        )
        teacher_only = [e for e in self.expected if e[1] > 0]
        self.assertEqual(collect(dataset), teacher_only)

    def test_blank_text_cells_are_missing_values(self):
        # An empty (or blank) cell is missing, as a CSV's empty cell is.
        table = dict(self.table, vader=self.table["vader"].astype(object))
        table["vader"][np.isnan(self.table["vader"])] = ""
        table["vader"][0] = " "
        self.assertTrue(np.isnan(self.table["vader"][0]))
        self.assert_expands_to_expected(table)

    def test_a_text_column_needs_text_in_every_row(self):
        for value in (7, None, 0.5):
            texts = self.table["text"].astype(object)
            texts[0] = value  # The first row too, not only later ones.
            with pytest.raises(
                ValueError,
                match=rf"Row 0: input 'text' is {value!r}; this column holds "
                "text",
            ):
                expand_per_example(dict(self.table, text=texts))

    def test_a_duplicated_header_is_an_error(self):
        frame = to_frame(self.table)
        frame.to_csv(self.path("table.csv"), index=False)
        with open(self.path("table.csv")) as file:
            header, rest = file.read().split("\n", 1)
        with open(self.path("twice.csv"), "w") as file:
            file.write(header.replace("afinn", "vader") + "\n" + rest)
        with pytest.raises(
            ValueError,
            match=r"CSV header of '.*twice.csv' names column 'vader' twice "
            r"\(columns \d+ and \d+\).*'vader.1'",
        ):
            expand_per_example(self.path("twice.csv"))
        renamed = frame.rename(columns={"afinn": "vader"})
        with pytest.raises(ValueError, match="DataFrame names column 'vader'"):
            expand_per_example(renamed)
        mangled = frame.assign(**{"vader.1": frame["afinn"]})
        with pytest.raises(
            ValueError, match=r"'vader.1' looks like a second 'vader' column"
        ):
            expand_per_example(mangled)

    def test_an_unknown_tfrecord_feature_is_an_error(self):
        table = dict(self.table)
        table["vader_old"] = table.pop("vader")
        write_tfrecord(dict(table, vader=table["vader_old"]), self.path("a"))
        # write_tfrecord writes the vocabulary's columns; add one more.
        with tf.io.TFRecordWriter(self.path("b.tfrecord")) as writer:
            for record in tf.data.TFRecordDataset(self.path("a")):
                example = tf.train.Example.FromString(record.numpy())
                example.features.feature["extra"].float_list.value.append(1)
                writer.write(example.SerializeToString())
        with pytest.raises(ValueError, match="Column 'extra' is not an input"):
            expand_per_example(self.path("b.tfrecord"))


class LongTableCheckTest(TestCase):
    def long(self):
        return to_long(wide_table(num_rows=6, seed=1)).drop(columns="label")

    def test_a_non_numeric_score_is_an_error(self):
        long = self.long().astype({"score": object})
        long.loc[4, "score"] = "positive"
        with pytest.raises(
            ValueError,
            match=r"Row 4: score 'positive' in column 'score' is not a number",
        ):
            expand_per_example(long, ground_truth=None, layout="long")
        # A blank cell before it is missing, and does not hide it (the
        # property test found it hidden).
        long.loc[2, "score"] = " "
        with pytest.raises(ValueError, match=r"Row 4: score 'positive'"):
            expand_per_example(long, ground_truth=None, layout="long")
        long.loc[2, "score"] = 0.5
        long.loc[4, "score"] = "0.25"  # A number written as text is one.
        long.loc[5, "score"] = None  # Missing.
        dataset = expand_per_example(long, ground_truth=None, layout="long")
        targets = [float(y[0]) for _, y, _ in dataset.as_numpy_iterator()]
        self.assertIn(0.25, targets)
        self.assertEqual(len(targets), len(long) - 1)

    def test_a_fractional_or_missing_label_index_is_an_error(self):
        long = to_long(wide_table(num_rows=6, num_labels=2, seed=1))
        long["label"] = long["label"].astype(float)
        for bad in (0.7, np.nan):
            frame = long.copy()
            frame.loc[3, "label"] = bad
            with pytest.raises(
                ValueError,
                match=rf"Row 3: label index {bad} in column 'label' is not a "
                "whole number",
            ):
                expand_per_example(
                    frame,
                    ground_truth=None,
                    layout="long",
                    label_column="label",
                )

    def test_a_missing_item_id_is_an_error(self):
        long = self.long()
        long.loc[2, "item"] = np.nan
        with pytest.raises(
            ValueError, match=r"Row 2: the item id in column 'item' is missing"
        ):
            expand_per_example(long, ground_truth=None, layout="long")

    def test_one_item_with_two_inputs_is_an_error(self):
        long = self.long()
        item = long.loc[1, "item"]
        rows = np.flatnonzero(long["item"] == item)
        self.assertGreater(len(rows), 1)
        long.loc[rows[-1], "text"] = "another text"
        with pytest.raises(
            ValueError,
            match=rf"Item '{item}': input 'text' is '.*' in row {rows[0]} and "
            rf"'another text' in row {rows[-1]}",
        ):
            expand_per_example(long, ground_truth=None, layout="long")


class StreamCheckTest(TableTestCase):
    """Streamed tables (TFRecord, tf.data) name the record or column."""

    num_labels = 1

    def test_a_key_missing_from_the_first_records_is_found_later(self):
        # The first records of a teacher that did not score them are
        # written without its key: those scores are missing, not an error.
        unscored = [(row, "afinn") for row in range(8)]
        table = dict(self.table, afinn=self.table["afinn"].copy())
        table["afinn"][:8] = np.nan
        write_records(self.path("late.tfrecord"), table, drop=unscored)
        dataset = expand_per_example(self.path("late.tfrecord"))
        self.assertEqual(collect(dataset), expected_examples(table))

    def test_a_source_key_missing_from_later_records_is_missing(self):
        table = dict(self.table, vader=self.table["vader"].copy())
        table["vader"][10] = np.nan
        write_records(self.path("gaps.tfrecord"), table, drop={(10, "vader")})
        dataset = expand_per_example(self.path("gaps.tfrecord"))
        self.assertEqual(collect(dataset), expected_examples(table))
        # An integer ground truth: a record without it is unlabelled.
        unlabelled = np.isnan(self.table["label"])
        self.assertTrue(unlabelled[5:].any() and not unlabelled.all())
        write_records(self.path("int.tfrecord"), self.table, as_int=["label"])
        dataset = expand_per_example(self.path("int.tfrecord"))
        self.assertEqual(collect(dataset), self.expected)

    def test_an_input_key_missing_from_a_later_record_names_it(self):
        for key in ("text", "row"):
            path = self.path(f"no_{key}.tfrecord")
            write_records(path, self.table, drop={(11, key)})
            dataset = expand_per_example(path, batch_size=4)
            with pytest.raises(
                tf.errors.InvalidArgumentError,
                match=rf"Record\] \[11\].*input key {key} is missing",
            ):
                list(dataset)

    def test_a_key_of_another_length_in_a_later_record_names_it(self):
        table = dict(self.table, vader=list(self.table["vader"]))
        table["vader"][12] = [0.5, 0.25]
        table["vader"] = np.array(table["vader"], dtype=object)
        write_records(self.path("longer.tfrecord"), table)
        # Past the records the layout is read off.
        with mock.patch.object(sources, "_LAYOUT_RECORDS", 5):
            dataset = expand_per_example(self.path("longer.tfrecord"))
        with pytest.raises(
            tf.errors.InvalidArgumentError,
            match=r"Name: record 12, Key: vader, .*Values size: 2",
        ):
            list(dataset)

    def test_a_key_in_none_of_the_first_records_is_an_error(self):
        drop = {(row, "textblob") for row in range(15)}
        write_records(self.path("none.tfrecord"), self.table, drop=drop)
        with pytest.raises(
            ValueError,
            match=r"None of the first 15 records of the TFRecord table "
            r"'.*none.tfrecord' has a key 'textblob' \(teacher 'textblob'\)",
        ):
            expand_per_example(self.path("none.tfrecord"))

    def test_a_key_of_two_lengths_is_an_error(self):
        vader = [[0.5, 0.5] if i == 6 else [0.5] for i in range(15)]
        table = {"row": np.arange(15), "vader": np.array(vader, dtype=object)}
        write_records(self.path("two.tfrecord"), table)
        with pytest.raises(
            ValueError,
            match=r"Record 6 of the TFRecord table .*: key 'vader' holds 2 "
            r"float32 value\(s\); record 0 holds 1 float32 value\(s\)",
        ):
            expand_per_example(
                self.path("two.tfrecord"),
                inputs="row",
                ground_truth=None,
                teachers=["vader"],
            )

    def test_a_text_score_column_is_an_error_naming_it(self):
        table = dict(self.table, vader=self.table["vader"].astype(str))
        stream = tf.data.Dataset.from_tensor_slices(table)
        with pytest.raises(
            ValueError,
            match=r"Column 'vader' \(teacher 'vader'\) of the tf.data source "
            r"holds string values; scores and labels must be numbers",
        ):
            expand_per_example(stream)
        write_records(self.path("text.tfrecord"), table)
        with pytest.raises(
            ValueError,
            match=r"Column 'vader' \(teacher 'vader'\) of the TFRecord file "
            r"'.*text.tfrecord' holds string values",
        ):
            expand_per_example(self.path("text.tfrecord"))
        truth = dict(self.table, label=self.table["label"].astype(str))
        stream = tf.data.Dataset.from_tensor_slices(truth)
        with pytest.raises(
            ValueError, match=r"Column 'label' \(the ground truth\)"
        ):
            expand_per_example(stream)
