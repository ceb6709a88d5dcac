"""Reading multi-teacher tables into one canonical form.

Every source becomes rows of `inputs` (the model input columns) and
`targets`, a float array `(1 + N, num_labels)` per row: source 0 is the
ground truth, source k the k-th teacher of the vocabulary, NaN where that
value is missing. In-memory sources (dicts of arrays, DataFrames, CSV, JSON
Lines and Parquet files) are read and checked eagerly with numpy, so a bad
value is a `ValueError` naming its row, column and teacher. Streamed sources
(`tf.data.Dataset`s, TFRecord files, TFDS datasets) are mapped and checked
inside the `tf.data` pipeline, row by row, with the same messages.

Large CSV, JSON Lines and Parquet files (`STREAM_BYTES` and more) stream in
blocks of `_FILE_BLOCK_ROWS` rows: each block is read (pandas chunks,
pyarrow record batches), checked like an in-memory table with row numbers
counted across blocks, and handed to `tf.data`, so memory stays flat
however long the file. Smaller files are read whole, in one pandas read.
Several files of one table (a list of paths, or a glob pattern) always
stream, in the order given (a glob's matches sorted by name).
"""

import copy
import csv
import json
import os

import numpy as np
import tensorflow as tf

_FILE_FORMATS = {
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
    ".tfrecord": "tfrecord",
    ".tfrecords": "tfrecord",
}


# Files this large or larger stream in blocks (wide layout).
STREAM_BYTES = 64 * 2**20
_FILE_BLOCK_ROWS = 65_536


class TableSpec:
    """Which columns of a multi-teacher table play which role.

    Its arguments after `teachers` are the table options that
    `keras_t2t.data.expand`, `summarize` and `save_as_tfds` take as
    keywords (`**table_options`) and pass on here, documented once here.

    Args:
        vocabulary: `keras_t2t.TeacherVocabulary`.
        inputs: str or list of str. The model input columns.
        ground_truth: str or `None`. The ground-truth column (wide layout).
            Defaults to the vocabulary's ground-truth name.
        teachers: list of str, dict or `None`. The teacher columns (wide
            layout): a list of column names that are also teacher names,
            or a dict `{column: teacher_name}`. Defaults to the
            vocabulary's teachers.
        layout: `"wide"` (a column per source) or `"long"` (a row per
            item, source and score). Defaults to `"wide"`.
        item_column, source_column, score_column, label_column: the
            columns of a long table. `label_column` holds a label index
            for multi-label long tables. Defaults to `"item"`, `"source"`,
            `"score"` and `None`.
        num_labels: int or `None`. Inferred when `None`.
        rescale: dict `{teacher_name: (low, high)}` or
            `{teacher_name: "sigmoid"}` for teachers whose scores are not
            confidences in `[0, 1]`: `(low, high)` maps linearly onto
            `[0, 1]`, `"sigmoid"` treats scores as logits.
        ignore_columns: list of str or `None`. Columns of a wide table that
            are read by nobody (ids, notes). Every other column must be an
            input, the ground truth or a teacher column: an unknown one is
            an error, so that no teacher's scores are dropped unnoticed.
            Defaults to `None`.
    """

    def __init__(
        self,
        vocabulary,
        inputs,
        ground_truth=None,
        teachers=None,
        layout="wide",
        item_column="item",
        source_column="source",
        score_column="score",
        label_column=None,
        num_labels=None,
        rescale=None,
        ignore_columns=None,
    ):
        if layout not in ("wide", "long"):
            raise ValueError(
                f'`layout` must be "wide" or "long". Received: {layout!r}'
            )
        self.vocabulary = vocabulary
        self.inputs = [inputs] if isinstance(inputs, str) else list(inputs)
        if not self.inputs:
            raise ValueError("`inputs` must name at least one input column.")
        # An explicitly named ground-truth column must exist; the default
        # one may be absent (a table with teachers only).
        self.ground_truth_required = ground_truth is not None
        self.ground_truth = ground_truth or vocabulary.ground_truth_name
        if teachers is None:
            teachers = {name: name for name in vocabulary.teachers}
        elif not isinstance(teachers, dict):
            teachers = {name: name for name in teachers}
        for column, name in teachers.items():
            if name not in vocabulary or name == vocabulary.ground_truth_name:
                raise ValueError(
                    f"Teacher column {column!r} maps to {name!r}, which is "
                    "not a teacher of the vocabulary "
                    f"{list(vocabulary.teachers)}."
                )
        # Column of each teacher id 1..N (None: this table has no column).
        by_name = {name: column for column, name in teachers.items()}
        self.teacher_columns = [by_name.get(n) for n in vocabulary.teachers]
        self.layout = layout
        self.item_column = item_column
        self.source_column = source_column
        self.score_column = score_column
        self.label_column = label_column
        self.num_labels = num_labels
        self.rescale = dict(rescale or {})
        if isinstance(ignore_columns, str):
            ignore_columns = [ignore_columns]
        self.ignore_columns = list(ignore_columns or [])
        for name, rule in self.rescale.items():
            if name not in vocabulary.teachers:
                raise ValueError(
                    f"`rescale` names {name!r}, not a teacher of the "
                    f"vocabulary {list(vocabulary.teachers)}."
                )
            if rule != "sigmoid" and (
                not isinstance(rule, (tuple, list))
                or len(rule) != 2
                or not rule[1] > rule[0]
            ):
                raise ValueError(
                    f"`rescale[{name!r}]` must be (low, high) with high > "
                    f'low, or "sigmoid". Received: {rule!r}'
                )

    @property
    def source_names(self):
        return self.vocabulary.names

    def check_known_columns(self, names):
        """Raises unless every column of a wide table has a role."""
        teachers = [c for c in self.teacher_columns if c is not None]
        known = {*self.inputs, self.ground_truth, *teachers}
        known.update(self.ignore_columns)
        unknown = [name for name in names if name not in known]
        if not unknown:
            return
        name = unknown[0]
        if name == "label" and not self.ground_truth_required:
            raise ValueError(
                "Column 'label' looks like the ground truth, but "
                "`ground_truth=` was not passed, so the ground truth is read "
                f"from a column {self.ground_truth!r} (there is none). Pass "
                "`ground_truth='label'`, or list it in `ignore_columns` to "
                "train on the teachers alone."
            )
        base, _, suffix = str(name).rpartition(".")
        if suffix.isdigit() and base in known:
            raise ValueError(
                f"Column {name!r} looks like a second {base!r} column that "
                "pandas renamed (a duplicated header): its values would be "
                f"lost. Give each column its own name, or list {name!r} in "
                "`ignore_columns`."
            )
        raise ValueError(
            f"Column {name!r} is not an input ({self.inputs}), the ground "
            f"truth ({self.ground_truth!r}) or a teacher column "
            f"({teachers}) of the vocabulary {list(self.vocabulary.teachers)}"
            f"; unknown columns: {unknown}. Name it in `inputs` or "
            "`teachers`, or list it in `ignore_columns` to leave it out."
        )

    def wide_columns(self):
        """(source id, column) for every source column of a wide table."""
        columns = [(0, self.ground_truth)]
        columns += [
            (k + 1, column)
            for k, column in enumerate(self.teacher_columns)
            if column is not None
        ]
        return columns


class MemoryRows:
    """A table held in memory: `inputs`, `targets` and `row_ids`.

    It streams like `StreamRows`, its rows already checked.
    """

    def __init__(self, inputs, targets, row_ids):
        self.inputs = inputs
        self.targets = targets
        self.row_ids = row_ids

    def __len__(self):
        return len(self.targets)

    @property
    def dataset(self):
        rows = {"inputs": self.inputs, "targets": self.targets}
        return tf.data.Dataset.from_tensor_slices(rows).enumerate()

    @staticmethod
    def parse_block(index, rows):
        return rows

    def blocks(self, block_size):
        return self.dataset.batch(block_size).map(self.parse_block)

    def check_not_empty(self, spec):
        """Raises if no source has a value in any row."""
        if not np.any(~np.isnan(self.targets)):
            raise ValueError(
                f"The table ({len(self)} rows) has no value from any source "
                f"({list(spec.source_names)}): the expansion would be empty."
            )


def read_rows(source, spec, file_format=None):
    """Reads `source` into `MemoryRows` or `StreamRows`.

    CSV, JSON Lines and Parquet files of `STREAM_BYTES` or more stream in
    blocks (wide layout; a long table is always read whole, its items may
    be spread over the file). Several files (a list of paths or a glob
    pattern, one format) are one table, their rows in the order given; in
    the wide layout they always stream.
    """
    paths = _file_paths(source)
    if paths is not None:
        if file_format is None:
            formats = {_infer_format(path) for path in paths}
            if len(formats) > 1:
                raise ValueError(
                    "The files of one table must share a format; received "
                    f"{sorted(formats)} in {paths}."
                )
            file_format = formats.pop()
        if file_format == "tfrecord":
            return _tfrecord_rows(paths, spec)
        if spec.layout == "wide" and (
            len(paths) > 1 or tf.io.gfile.stat(paths[0]).length >= STREAM_BYTES
        ):
            return _file_block_rows(paths, file_format, spec)
        source = _read_files(paths, file_format)
    if isinstance(source, tf.data.Dataset):
        if spec.layout == "long":
            raise ValueError(
                "A long table cannot be streamed: pass it as a DataFrame, "
                "a dict of arrays or a CSV/JSON Lines/Parquet file."
            )
        return _stream_rows(source, spec)
    columns = _columns(source)
    if spec.layout == "long":
        return _long_rows(columns, spec)
    return _wide_rows(columns, spec)


def read_table(path, file_format=None):
    """Reads a CSV, JSON Lines or Parquet table into a pandas DataFrame.

    The reader `keras_t2t.data.expand` uses for a whole file, with its
    checks: a missing file, an unknown suffix, a file pandas cannot read,
    a CSV header naming a column twice and a table without rows are each
    a `ValueError` naming the file.

    Args:
        path: str or `os.PathLike`. The file; a glob pattern or a list of
            paths (one format) reads several files as one table, their
            rows in order.
        file_format: `"csv"`, `"jsonl"`, `"parquet"` or `None` to tell the
            format from the suffix (`.csv`, `.jsonl` or `.json`,
            `.parquet`). Defaults to `None`.

    Returns:
        A `pandas.DataFrame`, a row per table row.
    """
    paths = _file_paths(path)
    if paths is None:
        raise ValueError(
            "`path` must be a path, a glob pattern or a list of paths. "
            f"Received: {type(path).__name__}"
        )
    formats = {file_format or _infer_format(name) for name in paths}
    if len(formats) > 1:
        raise ValueError(
            "The files of one table must share a format; received "
            f"{sorted(formats)} in {paths}."
        )
    file_format = formats.pop()
    if file_format == "tfrecord":
        raise ValueError(
            f"{paths[0]}: `read_table` reads CSV, JSON Lines and Parquet "
            "files; a TFRecord table streams: pass it to "
            "`keras_t2t.data.expand`."
        )
    frame = _read_files(paths, file_format)
    if len(frame) == 0:
        where = paths[0] if len(paths) == 1 else paths
        raise ValueError(f"{where}: the table has no rows.")
    return frame


def read_targets(source, vocabulary, **table_options):
    """Reads the targets of an in-memory table as `expand` reads them.

    Args:
        source: dict of arrays, pandas DataFrame or the path of a CSV,
            JSON Lines or Parquet file read whole (see `read_table`).
        vocabulary: `keras_t2t.TeacherVocabulary`.
        **table_options: `inputs`, `ground_truth`, `teachers`, `layout`,
            ...; documented in `keras_t2t.data.sources.TableSpec`.

    Returns:
        float32 array `(rows, 1 + N, num_labels)`: source 0 the ground
        truth, source k the k-th teacher of `vocabulary`, NaN where a
        value is missing. A bad cell or score is a `ValueError` naming its
        row and column.
    """
    if not isinstance(source, (dict, tf.data.Dataset)) and (
        _file_paths(source) is not None
    ):
        source = read_table(source)
    if isinstance(source, tf.data.Dataset):
        raise ValueError(
            "`read_targets` reads an in-memory table (a dict of arrays, a "
            "DataFrame or a CSV, JSON Lines or Parquet file). Received: a "
            "tf.data.Dataset"
        )
    spec = TableSpec(vocabulary, **table_options)
    return read_rows(source, spec).targets


def _file_paths(source):
    """The files `source` names (a path, a glob or a list), else `None`."""
    if isinstance(source, (list, tuple)) and source:
        if not all(isinstance(path, (str, os.PathLike)) for path in source):
            return None
        paths = [os.fspath(path) for path in source]
    elif isinstance(source, (str, os.PathLike)):
        paths = [os.fspath(source)]
        if not tf.io.gfile.exists(paths[0]):
            paths = sorted(tf.io.gfile.glob(paths[0]))
            if not paths:
                pattern = os.fspath(source)
                if not any(char in pattern for char in "*?["):
                    raise ValueError(f"No file {pattern}: no such file.")
                raise ValueError(f"No file matches {pattern!r}.")
    else:
        return None
    for path in paths:
        if not tf.io.gfile.exists(path):
            raise ValueError(f"No file {path}: no such file.")
    return paths


def _infer_format(path):
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in _FILE_FORMATS:
        raise ValueError(
            f"{path}: unknown table format {suffix!r}; give the file a known "
            f"suffix ({', '.join(sorted(_FILE_FORMATS))}) or pass "
            f"`file_format`, one of {sorted(set(_FILE_FORMATS.values()))}."
        )
    return _FILE_FORMATS[suffix]


def _read_files(paths, file_format):
    """Reads whole files into one DataFrame, their rows in order."""
    import pandas as pd

    frames = [_read_frame(path, file_format) for path in paths]
    if len(frames) == 1:
        return frames[0]
    return pd.concat(frames, ignore_index=True)


def _read_frame(path, file_format):
    """One CSV, JSON Lines or Parquet file as a DataFrame; a file pandas
    cannot read is a `ValueError` naming it and the format."""
    import pandas as pd

    readers = {
        "csv": pd.read_csv,
        "jsonl": lambda path: pd.read_json(path, lines=True),
        "parquet": pd.read_parquet,
    }
    if file_format not in readers:
        raise ValueError(
            f"Unknown `file_format` {file_format!r}; use one of "
            f"{sorted(set(_FILE_FORMATS.values()))}."
        )
    if file_format == "csv":
        _check_csv_header(path)
    try:
        return readers[file_format](path)
    except Exception as error:  # pandas and pyarrow raise many kinds.
        raise ValueError(
            f"{path}: cannot be read as .{file_format}: {error}"
        ) from error


def _check_csv_header(path):
    """Raises if a CSV header names a column twice (pandas renames it)."""
    with tf.io.gfile.GFile(path, "r") as file:
        header = next(csv.reader([file.readline()]), [])
    _check_unique(header, f"The CSV header of {path!r}")


def _check_unique(names, what):
    seen = {}
    for index, name in enumerate(names):
        if name in seen:
            raise ValueError(
                f"{what} names column {name!r} twice (columns {seen[name]} "
                f"and {index}); pandas would keep the second as "
                f"'{name}.1' and its values would be lost. Give each column "
                "its own name."
            )
        seen[name] = index


def _columns(source):
    if isinstance(source, dict):
        return dict(source)
    if hasattr(source, "columns") and hasattr(source, "to_numpy"):
        _check_unique(list(source.columns), "The DataFrame")
        return {column: source[column].to_numpy() for column in source.columns}
    raise ValueError(
        "A table source must be a dict of arrays, a pandas DataFrame, a "
        "tf.data.Dataset of dicts or a path to a CSV, JSON Lines, Parquet or "
        f"TFRecord file. Received: {type(source).__name__}"
    )


def _column(columns, name, role):
    if name not in columns:
        raise ValueError(
            f"The table has no {role} column {name!r}. Its columns are "
            f"{sorted(map(str, columns))}."
        )
    return columns[name]


def _wide_rows(columns, spec, first_row=0):
    inputs = {
        name: _stack_input(_column(columns, name, "input"), name, first_row)
        for name in spec.inputs
    }
    num_rows = _num_rows(inputs, columns, spec)
    present_sources = []
    for source_id, column in spec.wide_columns():
        if column not in columns:
            if source_id == 0 and not spec.ground_truth_required:
                continue
            raise ValueError(
                f"The table has no column {column!r} for "
                f"{spec.source_names[source_id]!r}. Its columns are "
                f"{sorted(map(str, columns))}."
            )
        present_sources.append((source_id, column))
    spec.check_known_columns(columns)
    values = {
        source_id: _label_matrix(columns[column], column)
        for source_id, column in present_sources
    }
    num_labels = _check_num_labels(
        {column: values[sid].shape[1] for sid, column in present_sources}, spec
    )
    targets = np.full(
        (num_rows, len(spec.source_names), num_labels), np.nan, "float32"
    )
    for source_id, _ in present_sources:
        targets[:, source_id] = values[source_id]
    row_ids = np.arange(first_row, first_row + num_rows)
    _check_targets(targets, spec, row_ids, "row")
    return MemoryRows(inputs, targets, row_ids)


def _file_blocks(paths, file_format):
    """Yields `(path, columns)`, the files' rows a block at a time."""
    import pandas as pd

    for path in paths:
        if file_format == "parquet":
            import pyarrow.parquet as pq

            for batch in pq.ParquetFile(path).iter_batches(_FILE_BLOCK_ROWS):
                yield path, _columns(batch.to_pandas())
            continue
        if file_format == "csv":
            _check_csv_header(path)
            chunks = pd.read_csv(path, chunksize=_FILE_BLOCK_ROWS)
        elif file_format == "jsonl":
            chunks = pd.read_json(path, lines=True, chunksize=_FILE_BLOCK_ROWS)
        else:
            raise ValueError(
                f"Unknown `file_format` {file_format!r}; use one of "
                f"{sorted(set(_FILE_FORMATS.values()))}."
            )
        with chunks as reader:
            for chunk in reader:
                yield path, _columns(chunk)


def _file_block_rows(paths, file_format, spec):
    """Streams wide CSV, JSON Lines or Parquet files as `StreamRows`.

    The first block is read here, so a bad column or value in it is a
    `ValueError` at once; later blocks are checked as they are read, with
    row numbers counted from the start of the first file (a bad value
    stops the pipeline with the same message, and the file it is in when
    there are several).
    """

    def check(path, columns, start):
        try:
            return _wide_rows(columns, spec, start)
        except ValueError as error:
            if len(paths) == 1:
                raise
            raise ValueError(f"{error} (in {path!r})") from error

    blocks = _file_blocks(paths, file_format)
    first = next(blocks, None)
    if first is None:
        raise ValueError(f"The files {paths} hold no rows.")
    first = check(*first, 0)
    num_labels = first.targets.shape[-1]
    spec = copy.copy(spec)
    spec.num_labels = num_labels  # Every block must hold as many labels.

    def signature(value):
        return tf.TensorSpec(
            (None, *value.shape[1:]),
            tf.string
            if value.dtype.kind in "USO"
            else tf.as_dtype(value.dtype),
        )

    element = (
        tf.TensorSpec((None,), tf.int64),
        {
            "inputs": {k: signature(v) for k, v in first.inputs.items()},
            "targets": signature(first.targets),
        },
    )

    def generate():
        rows = first
        more = _file_blocks(paths, file_format)
        next(more)  # The first block, already read.
        start = 0
        while rows is not None:
            yield rows.row_ids, {"inputs": rows.inputs, "targets": rows.targets}
            start += len(rows.row_ids)
            block = next(more, None)
            rows = None if block is None else check(*block, start)

    dataset = tf.data.Dataset.from_generator(
        generate, output_signature=element
    ).unbatch()
    return StreamRows(dataset, MemoryRows.parse_block)


def _long_rows(columns, spec):
    import pandas as pd

    needed = [spec.item_column, spec.source_column, spec.score_column]
    needed += [spec.label_column] if spec.label_column else []
    for name in needed:
        _column(columns, name, "long-layout")
    frame = pd.DataFrame({name: columns[name] for name in needed})
    frame["_order"] = np.arange(len(frame))
    no_item = frame[spec.item_column].isna().to_numpy()
    if no_item.any():
        index = int(np.flatnonzero(no_item)[0])
        raise ValueError(
            f"Row {index}: the item id in column {spec.item_column!r} is "
            "missing; every row of a long table names its item."
        )
    known = frame[spec.source_column].isin(spec.source_names)
    if not known.all():
        index = int(np.flatnonzero(~known.to_numpy())[0])
        raise ValueError(
            f"Row {index}: source {frame[spec.source_column].iloc[index]!r} "
            f"in column {spec.source_column!r} is not in the vocabulary "
            f"{list(spec.source_names)}."
        )
    keys = [spec.item_column, spec.source_column]
    keys += [spec.label_column] if spec.label_column else []
    duplicated = frame.duplicated(keys, keep="first")
    if duplicated.any():
        index = int(np.flatnonzero(duplicated.to_numpy())[0])
        row = frame.iloc[index]
        raise ValueError(
            f"Row {index}: item {row[spec.item_column]!r} has more than one "
            f"score from source {row[spec.source_column]!r}"
            + (
                f" for label {row[spec.label_column]!r}"
                if spec.label_column
                else ""
            )
            + ". A long table holds one (item, source) pair per row."
        )
    items, item_index = np.unique(
        frame[spec.item_column].to_numpy(), return_index=True
    )
    order = np.argsort(item_index)  # Items in order of first appearance.
    items, item_index = items[order], item_index[order]
    position = {item: i for i, item in enumerate(items)}
    rows = frame[spec.item_column].map(position).to_numpy()
    sources = frame[spec.source_column].map(spec.vocabulary.id_of).to_numpy()
    if spec.label_column:
        labels = _label_indices(frame[spec.label_column], spec.label_column)
        num_labels = spec.num_labels or int(labels.max()) + 1
        if labels.min() < 0 or labels.max() >= num_labels:
            index = int(
                np.flatnonzero((labels < 0) | (labels >= num_labels))[0]
            )
            raise ValueError(
                f"Row {index}: label index {labels[index]} in column "
                f"{spec.label_column!r} is outside [0, {num_labels - 1}]."
            )
    else:
        labels = np.zeros(len(frame), int)
        num_labels = spec.num_labels or 1
        if num_labels != 1:
            raise ValueError(
                f"num_labels={num_labels} needs a `label_column` in a long "
                "table, naming the label of each score."
            )
    scores = _numeric_scores(frame[spec.score_column], spec.score_column)
    targets = np.full(
        (len(items), len(spec.source_names), num_labels), np.nan, "float32"
    )
    targets[rows, sources, labels] = scores.to_numpy(dtype="float64")
    inputs = {}
    for name in spec.inputs:
        values = np.asarray(columns[name])
        _check_one_input_per_item(values, item_index, rows, items, name)
        inputs[name] = _stack_input(values[item_index], name)
    _check_targets(targets, spec, items, "item")
    return MemoryRows(inputs, targets, items)


def _numeric_scores(values, column):
    """A long table's scores as floats; a non-number is an error."""
    import pandas as pd

    scores = pd.to_numeric(values, errors="coerce")
    unread = np.flatnonzero((scores.isna() & values.notna()).to_numpy())
    # A blank cell is missing; any other non-number is an error, even
    # after a blank one.
    for index in unread:
        value = values.iloc[index]
        if not (isinstance(value, str) and value.strip() == ""):
            raise ValueError(
                f"Row {index}: score {_display(value)} in column {column!r} "
                "is not a number (leave the cell empty or NaN where it is "
                "missing)."
            )
    return scores


def _label_indices(values, column):
    """A long table's label indices as ints; each a whole number."""
    import pandas as pd

    numbers = pd.to_numeric(values, errors="coerce").to_numpy("float64")
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(numbers) | (numbers != np.round(numbers))
    if bad.any():
        index = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"Row {index}: label index {_display(values.iloc[index])} in "
            f"column {column!r} is not a whole number; a label index says "
            "which label (0, 1, ...) the score is for."
        )
    return numbers.astype(int)


def _check_one_input_per_item(values, first_rows, rows, items, name):
    """Raises if the rows of one item disagree on an input."""
    firsts = values[first_rows][rows]  # Each row's item's first value.
    try:
        with np.errstate(invalid="ignore"):
            same = np.asarray(values == firsts, bool)
        if same.shape != (len(values),):
            raise ValueError
    except (ValueError, TypeError):  # Array cells: compare one by one.
        same = np.array(
            [np.array_equal(a, b) for a, b in zip(values, firsts, strict=True)]
        )
    if values.dtype.kind in "fc":
        same |= np.isnan(values) & np.isnan(firsts)
    if not same.all():
        index = int(np.flatnonzero(~same)[0])
        first = int(first_rows[rows[index]])
        raise ValueError(
            f"Item {_display(items[rows[index]])}: input {name!r} is "
            f"{values[first]!r} in row {first} and {values[index]!r} in row "
            f"{index}. A long table repeats an item's inputs on each of its "
            "rows, so they must agree."
        )


def _stack_input(values, name, first_row=0):
    """An input column as one array; errors name the row (`first_row` is
    the table row of `values[0]`)."""
    values = np.asarray(values)
    if values.dtype != object:
        return values
    first = values[0] if len(values) else None
    text = (str, bytes)
    if first is None or any(isinstance(value, text) for value in values):
        # A column with any text holds text: every row needs a string.
        for row, value in enumerate(values, first_row):
            if not isinstance(value, (str, bytes)):
                raise ValueError(
                    f"Row {row}: input {name!r} is {value!r}; this column "
                    "holds text, so every row needs a string."
                )
        return values.astype(str)
    # A column of lists of vectors: a missing, mixed, ragged or non-number
    # cell is named as such (`_vector_cell`).
    lists = _is_list(values[0])
    arrays = []
    for row, value in enumerate(values, first_row):
        try:
            array = _dense(value)
        except ValueError:  # numpy refuses ragged lists.
            array = np.empty((), object)
        odd = array.dtype == object
        odd = odd or bool(arrays) and array.shape != arrays[0].shape
        if lists and odd:
            _vector_cell(value, f"Row {row}: input {name!r}")
        arrays.append(array)
    shape = arrays[0].shape
    for row, array in enumerate(arrays, first_row):
        if array.shape != shape:
            raise ValueError(
                f"Row {row}: input {name!r} has shape {array.shape}, row "
                f"{first_row} has {shape}. Feature inputs need one shape; pad "
                "them and pass a padding mask column."
            )
        if array.dtype == object:
            raise ValueError(
                f"Row {row}: input {name!r} is not an array of numbers (its "
                "vectors differ in size, or it holds text or None); a "
                "feature cell is a number, or vectors of one size."
            )
    return np.stack(arrays)


def read_sequences(cells, name, shape=None):
    """Reads a column of sequences of vectors as one float32 array.

    Each cell is a list of vectors of one size (a Parquet list of lists,
    or a list of arrays), or a flat list of numbers, read as a sequence
    of scalars `(seq, 1)`. A malformed cell (missing, text, ragged or
    nested vectors, NaN or an infinity, another shape than row 0's or than
    `shape`) is a `ValueError` naming its row and column.

    Args:
        cells: sequence or array of cells, one per row.
        name: str. The column's name, for errors.
        shape: `(seq, feature_dim)` or `None`. The shape every cell must
            have (that of the table a model was fitted on); `None` for
            row 0's.

    Returns:
        float32 array `(rows, seq, feature_dim)`.
    """
    arrays = []
    for index, cell in enumerate(cells):
        where = f"Row {index}: column {name!r}"
        array = _vector_cell(cell, where)
        if array.ndim == 1:
            array = array[:, None]
        if array.ndim != 2:
            raise ValueError(
                f"{where} holds vectors of shape {array.shape[1:]}; a cell "
                "is a list of flat vectors (seq, feature_dim)."
            )
        if not np.isfinite(array).all():
            raise ValueError(
                f"{where} holds NaN or an infinity; input vectors must be "
                "finite."
            )
        expected, origin = shape, "the run was fitted on"
        if shape is None and arrays:
            expected, origin = arrays[0].shape, "row 0 holds"
        if expected and array.shape != tuple(expected):
            raise ValueError(
                f"{where} holds {array.shape[0]} vector(s) of "
                f"{array.shape[1]} value(s); {origin} {expected[0]} of "
                f"{expected[1]}. Every row needs the same shape (pad "
                "shorter sequences)."
            )
        arrays.append(array)
    return np.stack(arrays)


def _is_list(value):
    return isinstance(value, (list, tuple, np.ndarray))


def _vector_cell(cell, where):
    """A cell holding a list of vectors (or of numbers) as float32; a
    missing, empty, mixed, ragged or non-number cell is an error."""
    if not _is_list(cell) or len(cell) == 0:
        raise ValueError(
            f"{where} holds {_short(cell)}, not a list of vectors; every "
            "row of a sequence input needs one (pad short ones)."
        )
    nested = [_is_list(item) for item in cell]
    if any(nested) and not all(nested):
        raise ValueError(
            f"{where} mixes numbers and vectors; a cell is a list of "
            "vectors of one size (or a list of numbers)."
        )
    if all(nested):
        sizes = [len(item) for item in cell]
        if len(set(sizes)) > 1:
            bad = next(i for i, n in enumerate(sizes) if n != sizes[0])
            raise ValueError(
                f"{where} holds ragged vectors: vector 0 has {sizes[0]} "
                f"values, vector {bad} has {sizes[bad]}. Every vector needs "
                "the same size."
            )
    try:
        return np.asarray(
            [np.asarray(item, "float32") for item in cell], "float32"
        )
    except (TypeError, ValueError):
        raise ValueError(
            f"{where} holds a value that is not a number; vectors hold numbers."
        ) from None


def _short(value):
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _dense(value):
    """A cell as one array: Parquet's list of lists arrives as an array of
    arrays (dtype object), which `np.asarray` leaves as it is."""
    if isinstance(value, np.ndarray) and value.dtype == object and len(value):
        parts = [_dense(part) for part in value]
        if len({part.shape for part in parts}) == 1:
            return np.stack(parts)
    return np.asarray(value)


def _num_rows(inputs, columns, spec):
    lengths = {name: len(value) for name, value in columns.items()}
    num_rows = lengths[spec.inputs[0]]
    for name, length in lengths.items():
        if length != num_rows:
            raise ValueError(
                f"Column {name!r} has {length} rows; column "
                f"{spec.inputs[0]!r} has {num_rows}."
            )
    return num_rows


def _label_matrix(values, column):
    """A source column as `(rows, num_labels)` floats, NaN where missing."""
    values = np.asarray(values)
    if values.dtype != object:
        matrix = values.astype("float32")
        return matrix[:, None] if matrix.ndim == 1 else matrix
    rows = [_cell(value, index, column) for index, value in enumerate(values)]
    lengths = {len(row) for row in rows if row is not None}
    if len(lengths) > 1:
        first = next(i for i, r in enumerate(rows) if r is not None)
        for index, row in enumerate(rows):
            if row is not None and len(row) != len(rows[first]):
                raise ValueError(
                    f"Row {index}: column {column!r} holds {len(row)} "
                    f"label(s), row {first} holds {len(rows[first])}. Every "
                    "row needs the same number of labels (NaN where missing)."
                )
    width = lengths.pop() if lengths else 1
    matrix = np.full((len(rows), width), np.nan, "float32")
    for index, row in enumerate(rows):
        if row is not None:
            matrix[index] = row
    return matrix


def _cell(value, index, column):
    """One cell: a number, a list of numbers (or a JSON list), or missing."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, str):
        if not value.strip():
            return None  # An empty cell, as a CSV's is.
        try:
            value = json.loads(value.replace("NaN", "null"))
        except json.JSONDecodeError:
            raise ValueError(
                f"Row {index}: column {column!r} holds {value!r}, which is "
                "not a number or a JSON list of numbers."
            ) from None
    array = np.asarray(value, dtype=object).reshape(-1)
    try:
        return np.array(
            [np.nan if v is None else float(v) for v in array], "float32"
        )
    except (TypeError, ValueError):
        raise ValueError(
            f"Row {index}: column {column!r} holds {value!r}, which is not "
            "a number or a list of numbers."
        ) from None


def _check_num_labels(widths, spec):
    """The number of labels, from `{column: labels per row}`."""
    if spec.num_labels is None and len(set(widths.values())) > 1:
        listing = ", ".join(f"{c!r} {w}" for c, w in widths.items())
        raise ValueError(
            "Source columns disagree on the number of labels per row: "
            f"{listing}. Give every source the same number of values (NaN "
            "where missing), or pass `num_labels`."
        )
    num_labels = spec.num_labels or max(widths.values(), default=1)
    for column, width in widths.items():
        if width != num_labels:
            raise ValueError(
                f"Column {column!r} holds {width} label(s) per row, but "
                f"num_labels={num_labels}."
            )
    return num_labels


def rescale_scores(values, rule):
    """Maps a teacher's raw scores onto `[0, 1]` (numpy or tf)."""
    if rule == "sigmoid":
        return (
            1.0 / (1.0 + np.exp(-values))
            if _is_numpy(values)
            else (tf.sigmoid(values))
        )
    low, high = rule
    return (values - low) / (high - low)


def _is_numpy(values):
    return isinstance(values, np.ndarray)


def _check_targets(targets, spec, row_ids, row_word):
    """Rescales teachers in place, then checks every present value."""
    for k, name in enumerate(spec.vocabulary.teachers, start=1):
        if name in spec.rescale:
            targets[:, k] = rescale_scores(targets[:, k], spec.rescale[name])
    with np.errstate(invalid="ignore"):
        bad_truth = (
            ~np.isnan(targets[:, 0])
            & (targets[:, 0] != 0)
            & (targets[:, 0] != 1)
        )
        bad_score = (targets[:, 1:] < 0) | (targets[:, 1:] > 1)
    if bad_truth.any():
        row, label = np.argwhere(bad_truth)[0]
        raise ValueError(
            f"{row_word.capitalize()} {_display(row_ids[row])}: ground truth "
            f"{_where(spec, 0, label)} is {targets[row, 0, label]}; "
            "ground-truth labels must be 0 or 1 (NaN where unknown)."
        )
    if bad_score.any():
        row, teacher, label = np.argwhere(bad_score)[0]
        name = spec.vocabulary.teachers[teacher]
        where = f"{row_word.capitalize()} {_display(row_ids[row])}"
        column = _where(spec, teacher + 1, label)
        raise ValueError(
            f"{where}: teacher {name!r} {column} scored "
            f"{targets[row, teacher + 1, label]}, outside [0, 1]. Teachers "
            "give confidences; for logits or other ranges pass "
            f'`rescale={{{name!r}: "sigmoid"}}` or `(low, high)`.'
        )


def _display(row_id):
    row_id = row_id.item() if isinstance(row_id, np.generic) else row_id
    return repr(row_id)


def _where(spec, source_id, label):
    if spec.layout == "long":
        place = f"(column {spec.score_column!r}"
    elif source_id == 0:
        place = f"(column {spec.ground_truth!r}"
    else:
        place = f"(column {spec.teacher_columns[source_id - 1]!r}"
    return place + (f", label {label})" if label else ")")


class StreamRows:
    """A streamed table: raw rows, and how to turn a block of them into
    canonical, checked rows.

    `dataset` yields `(row_index, raw_row)`; `parse_block` maps a batch of
    those to `{"inputs": ..., "targets": (block, 1 + N, num_labels)}`.
    Working in blocks keeps the per-row cost of parsing and checking low.
    """

    def __init__(self, dataset, parse_block):
        self.dataset = dataset
        self.parse_block = parse_block

    def blocks(self, block_size):
        return self.dataset.batch(block_size).map(
            self.parse_block,
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )


def _stream_rows(dataset, spec):
    """Reads a dataset of row dicts as a `StreamRows`."""
    element = dataset.element_spec
    if not isinstance(element, dict):
        raise ValueError(
            "A tf.data source must yield dicts of columns. Received "
            f"elements of {element}."
        )
    to_block = _block_converter(element, spec, "tf.data source")
    return StreamRows(
        dataset.enumerate(), lambda index, rows: to_block(index, rows)
    )


def _block_converter(element, spec, origin):
    """Checks the columns of `element`; returns `(index, block) -> rows`."""
    for name in spec.inputs:
        _column(element, name, "input")
    sources = []
    for source_id, column in spec.wide_columns():
        if column in element:
            sources.append((source_id, column))
        elif source_id != 0 or spec.ground_truth_required:
            _column(element, column, f"{spec.source_names[source_id]!r}")
    spec.check_known_columns(element)
    for source_id, column in sources:
        dtype = element[column].dtype
        if not (dtype.is_floating or dtype.is_integer or dtype.is_bool):
            raise ValueError(
                f"Column {column!r} ({_role(spec, source_id)}) of the "
                f"{origin} holds {dtype.name} values; scores and labels must "
                "be numbers, NaN where missing. Convert the column to "
                "float32 first (e.g. with `tf.strings.to_number`)."
            )
    num_labels = _check_num_labels(
        {
            column: element[column].shape[-1]
            if element[column].shape.rank
            else 1
            for _, column in sources
        },
        spec,
    )
    num_sources = len(spec.source_names)

    def to_block(index, rows):
        size = tf.shape(index)[0]
        missing = tf.fill([size, num_labels], np.nan)
        columns = [missing] * num_sources
        for source_id, column in sources:
            value = tf.reshape(
                tf.cast(rows[column], tf.float32), [size, num_labels]
            )
            name = spec.source_names[source_id]
            if source_id > 0 and name in spec.rescale:
                value = rescale_scores(value, spec.rescale[name])
            columns[source_id] = _assert_valid(value, index, spec, source_id)
        return {
            "inputs": {name: rows[name] for name in spec.inputs},
            "targets": tf.stack(columns, axis=1),
        }

    return to_block


def _role(spec, source_id):
    if source_id == 0:
        return "the ground truth"
    return f"teacher {spec.source_names[source_id]!r}"


def _assert_valid(value, index, spec, source_id):
    """Stops the pipeline at the first row of a block with a bad value."""
    present = ~tf.math.is_nan(value)
    # No quotes in these messages: TensorFlow escapes them.
    if source_id == 0:
        bad = present & (value != 0.0) & (value != 1.0)
        message = (
            f"ground truth (column {spec.ground_truth}) must be 0 or 1 "
            "(NaN where unknown)"
        )
    else:
        name = spec.source_names[source_id]
        column = spec.teacher_columns[source_id - 1]
        bad = present & ((value < 0.0) | (value > 1.0))
        message = (
            f"teacher {name} (column {column}) must score in [0, 1]; for "
            "logits or other ranges pass `rescale`"
        )
    bad_rows = tf.reduce_any(bad, axis=-1)
    check = tf.debugging.Assert(
        ~tf.reduce_any(bad_rows),
        [
            "Row",
            tf.boolean_mask(index, bad_rows)[:1],
            ":",
            message,
            "; got",
            tf.boolean_mask(value, bad_rows)[:1],
        ],
    )
    with tf.control_dependencies([check]):
        return tf.identity(value)


# The feature layout of a TFRecord table is read off its first records.
_LAYOUT_RECORDS = 1000
# What a record without a key parses to, so that the key is found missing.
_MISSING = {
    tf.string: b"\x00keras_t2t: no such key",
    tf.int64: np.iinfo(np.int64).min,
    tf.float32: np.finfo(np.float32).min,
}


def _tfrecord_rows(files, spec):
    """Streams TFRecord files of `tf.train.Example`s as a `StreamRows`.

    Records are parsed a block at a time with `tf.io.parse_example`. The
    feature layout (each key's kind and length; a one-value list is a
    scalar column) is read off the first `_LAYOUT_RECORDS` records, so a
    key the first record lacks (a teacher that did not score it) is found.
    A source key missing from a record is a missing value (NaN); an input
    key missing from a record, or a key of another length or kind, stops
    the pipeline naming the record, counted from the first record of the
    first file.
    """
    layout = _tfrecord_layout(files, spec)
    sources = {column for _, column in spec.wide_columns()}
    description, element, missing = {}, {}, {}
    for name, (dtype, shape) in layout.items():
        # Integer scores are read as floats, NaN where a record lacks them.
        numeric_source = name in sources and dtype == tf.int64
        element[name] = tf.TensorSpec(
            shape, tf.float32 if numeric_source else dtype
        )
        if name not in sources and name not in spec.inputs:
            continue  # Ignored (or unknown, an error below): not parsed.
        if name in sources and dtype == tf.float32:
            default = np.full(shape, np.nan, "float32")
        else:
            default = np.full(shape, _MISSING[dtype], dtype.as_numpy_dtype)
            missing[name] = _MISSING[dtype]
        description[name] = tf.io.FixedLenFeature(shape, dtype, default)
    to_block = _block_converter(element, spec, f"TFRecord file {files[0]!r}")

    def parse_block(index, records):
        # Named, a record that does not parse (a key of another length or
        # kind than in the first records) is named in TensorFlow's error.
        names = tf.strings.join(["record ", tf.strings.as_string(index)])
        rows = tf.io.parse_example(records, description, example_names=names)
        for name, sentinel in missing.items():
            value = rows[name]
            absent = tf.equal(value, sentinel)
            if name in sources:
                rows[name] = tf.where(
                    absent,
                    tf.fill(tf.shape(value), np.nan),
                    tf.cast(value, tf.float32),
                )
                continue
            rank = value.shape.rank
            if rank > 1:
                absent = tf.reduce_all(absent, axis=list(range(1, rank)))
            rows[name] = _assert_present(value, absent, index, name)
        return to_block(index, rows)

    return StreamRows(tf.data.TFRecordDataset(files).enumerate(), parse_block)


def _tfrecord_layout(files, spec):
    """`{key: (dtype, shape)}` from the first records of a TFRecord table."""
    layout, first_seen = {}, {}
    records = tf.data.TFRecordDataset(files).take(_LAYOUT_RECORDS)
    count = 0
    for count, record in enumerate(records.as_numpy_iterator(), start=1):
        example = tf.train.Example.FromString(record)
        for name, feature in example.features.feature.items():
            kind = feature.WhichOneof("kind")
            if kind is None:
                continue  # An empty feature: no value in this record.
            length = len(getattr(feature, kind).value)
            dtype = {"bytes_list": tf.string, "float_list": tf.float32}.get(
                kind, tf.int64
            )
            shape = [] if length == 1 else [length]
            if name not in layout:
                layout[name], first_seen[name] = (dtype, shape), count - 1
            elif layout[name] != (dtype, shape):
                seen_dtype, seen_shape = layout[name]
                raise ValueError(
                    f"Record {count - 1} of the TFRecord table "
                    f"{files[0]!r}: key {name!r} holds {length} "
                    f"{dtype.name} value(s); record {first_seen[name]} "
                    f"holds {seen_shape[0] if seen_shape else 1} "
                    f"{seen_dtype.name} value(s). A key needs one kind and "
                    "length in every record (NaN where a score is missing)."
                )
    if count == 0:
        raise ValueError(f"The TFRecord file {files[0]!r} is empty.")
    wanted = [(name, f"input {name!r}") for name in spec.inputs]
    wanted += [
        (column, _role(spec, source_id))
        for source_id, column in spec.wide_columns()
        if source_id != 0 or spec.ground_truth_required
    ]
    for name, role in wanted:
        if name not in layout:
            raise ValueError(
                f"None of the first {count} records of the TFRecord table "
                f"{files[0]!r} has a key {name!r} ({role}); their keys are "
                f"{sorted(layout)}. Write the key in the records (a score "
                "as NaN where it is missing), or leave it out of `inputs` / "
                "`teachers`."
            )
    return layout


def _assert_present(value, absent, index, name):
    """Stops the pipeline at the first record of a block without `name`."""
    # No quotes in this message: TensorFlow escapes them.
    check = tf.debugging.Assert(
        ~tf.reduce_any(absent),
        [
            "Record",
            tf.boolean_mask(index, absent)[:1],
            f": the input key {name} is missing (counted from record 0 of "
            "the first file); every record needs each input.",
        ],
    )
    with tf.control_dependencies([check]):
        return tf.identity(value)
