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

This module holds the readers (`read_rows`, `read_table`, `read_targets`)
and their settings; the work is split by concern in private modules:
`_spec` (`TableSpec`), `_files` (finding and reading files), `_layouts`
(wide and long tables, with numpy), `_inputs` (input columns),
`_validation` (score and label checks, numpy and tf) and `_streams`
(`tf.data` sources and TFRecord files), their rows held by `_rows`.
"""

import inspect

import tensorflow as tf

from keras_t2t import _arguments
from keras_t2t.data._files import _file_block_rows
from keras_t2t.data._files import _file_paths
from keras_t2t.data._files import _read_files
from keras_t2t.data._files import _shared_format
from keras_t2t.data._inputs import read_sequences
from keras_t2t.data._layouts import _columns
from keras_t2t.data._layouts import _long_rows
from keras_t2t.data._layouts import _wide_rows
from keras_t2t.data._rows import MemoryRows
from keras_t2t.data._rows import StreamRows
from keras_t2t.data._spec import TableSpec
from keras_t2t.data._streams import _stream_rows
from keras_t2t.data._streams import _tfrecord_rows
from keras_t2t.data._validation import rescale_scores

__all__ = [
    "MemoryRows",
    "STREAM_BYTES",
    "StreamRows",
    "TableSpec",
    "read_rows",
    "read_sequences",
    "read_table",
    "read_targets",
    "rescale_scores",
]


# Files this large or larger stream in blocks (wide layout), of this many
# rows.
STREAM_BYTES = 64 * 2**20
_FILE_BLOCK_ROWS = 65_536
# The feature layout of a TFRecord table is read off its first records.
_LAYOUT_RECORDS = 1000


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
        file_format = _shared_format(paths, file_format)
        if file_format == "tfrecord":
            return _tfrecord_rows(paths, spec, _LAYOUT_RECORDS)
        if spec.layout == "wide" and (
            len(paths) > 1 or tf.io.gfile.stat(paths[0]).length >= STREAM_BYTES
        ):
            return _file_block_rows(paths, file_format, spec, _FILE_BLOCK_ROWS)
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
    file_format = _shared_format(paths, file_format)
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
    _arguments.keywords(
        "read_targets()", table_options, inspect.signature(TableSpec).parameters
    )
    spec = TableSpec(vocabulary, **table_options)
    return read_rows(source, spec).targets
