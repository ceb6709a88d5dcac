"""Table files: finding them (a path, a glob, a list), telling their format,
and reading CSV, JSON Lines and Parquet files whole or in blocks."""

import copy
import csv
import os

import tensorflow as tf

from keras_t2t.data._layouts import _columns
from keras_t2t.data._layouts import _wide_rows
from keras_t2t.data._rows import MemoryRows
from keras_t2t.data._rows import StreamRows
from keras_t2t.data._validation import _check_unique

_FILE_FORMATS = {
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
    ".tfrecord": "tfrecord",
    ".tfrecords": "tfrecord",
}


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


def _shared_format(paths, file_format=None):
    """`file_format`, or the one format the files' suffixes name."""
    if file_format is not None:
        return file_format
    formats = {_infer_format(path) for path in paths}
    if len(formats) > 1:
        raise ValueError(
            "The files of one table must share a format; received "
            f"{sorted(formats)} in {paths}."
        )
    return formats.pop()


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
        raise _unknown_format(file_format)
    if file_format == "csv":
        _check_csv_header(path)
    try:
        return readers[file_format](path)
    except Exception as error:  # pandas and pyarrow raise many kinds.
        raise _unreadable(path, file_format, error) from error


def _unknown_format(file_format):
    return ValueError(
        f"Unknown `file_format` {file_format!r}; use one of "
        f"{sorted(set(_FILE_FORMATS.values()))}."
    )


def _unreadable(path, file_format, error):
    """A `ValueError` naming the file, the format and, where it can be
    found, the line; with the fix for text that is not UTF-8."""
    if isinstance(error, UnicodeDecodeError):
        return ValueError(
            f"{path}: is not UTF-8 text (byte {error.object[error.start]:#x} "
            f"at byte {error.start}); save it as UTF-8 and read it again."
        )
    if file_format == "jsonl":
        line = _first_bad_json_line(path)
        if line is not None:
            number, problem = line
            return ValueError(
                f"{path}, line {number}: not a JSON object ({problem})."
            )
    return ValueError(f"{path}: cannot be read as .{file_format}: {error}")


def _first_bad_json_line(path):
    """`(line number, problem)` of the first line of a JSON Lines file that
    is not a JSON object, or `None`."""
    import json

    with tf.io.gfile.GFile(path, "r") as file:
        for number, line in enumerate(file, 1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except ValueError as error:
                return number, str(error)
            if not isinstance(value, dict):
                return number, f"a {type(value).__name__}"
    return None


def _check_csv_header(path):
    """Raises if a CSV header names a column twice (pandas renames it)."""
    try:
        with tf.io.gfile.GFile(path, "r") as file:
            header = next(csv.reader([file.readline()]), [])
    except UnicodeDecodeError as error:  # Whole and streamed reads alike.
        raise _unreadable(path, "csv", error) from error
    _check_unique(header, f"The CSV header of {path!r}")


def _file_blocks(paths, file_format, block_rows):
    """Yields `(path, columns)`, the files' rows `block_rows` at a time."""
    import pandas as pd

    for path in paths:
        if file_format == "parquet":
            import pyarrow.parquet as pq

            for batch in pq.ParquetFile(path).iter_batches(block_rows):
                yield path, _columns(batch.to_pandas())
            continue
        if file_format == "csv":
            _check_csv_header(path)
            chunks = pd.read_csv(path, chunksize=block_rows)
        elif file_format == "jsonl":
            chunks = pd.read_json(path, lines=True, chunksize=block_rows)
        else:
            raise _unknown_format(file_format)
        with chunks as reader:
            while True:
                # Only pandas' reading is the file's fault; `_columns`
                # raises its own messages.
                try:
                    chunk = next(reader, None)
                except (UnicodeDecodeError, ValueError) as error:
                    raise _unreadable(path, file_format, error) from error
                if chunk is None:
                    break
                yield path, _columns(chunk)


def _file_block_rows(paths, file_format, spec, block_rows):
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

    blocks = _file_blocks(paths, file_format, block_rows)
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
        more = _file_blocks(paths, file_format, block_rows)
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
