"""Streamed sources: `tf.data.Dataset`s of row dicts and TFRecord files of
`tf.train.Example`s, parsed and checked a block at a time."""

import numpy as np
import tensorflow as tf

from keras_t2t import _arguments
from keras_t2t.data._layouts import _check_num_labels
from keras_t2t.data._layouts import _column
from keras_t2t.data._rows import StreamRows
from keras_t2t.data._validation import _assert_valid
from keras_t2t.data._validation import _role
from keras_t2t.data._validation import rescale_scores


def _stream_rows(dataset, spec):
    """Reads a dataset of row dicts as a `StreamRows`."""
    element = dataset.element_spec
    _arguments.require(
        isinstance(element, dict),
        f"A tf.data source must yield dicts of columns. Received elements "
        f"of {element}.",
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


# What a record without a key parses to, so that the key is found missing.
_MISSING = {
    tf.string: b"\x00keras_t2t: no such key",
    tf.int64: np.iinfo(np.int64).min,
    tf.float32: np.finfo(np.float32).min,
}


def _tfrecord_rows(files, spec, layout_records):
    """Streams TFRecord files of `tf.train.Example`s as a `StreamRows`.

    Records are parsed a block at a time with `tf.io.parse_example`. The
    feature layout (each key's kind and length; a one-value list is a
    scalar column) is read off the first `layout_records` records, so a
    key the first record lacks (a teacher that did not score it) is found.
    A source key missing from a record is a missing value (NaN); an input
    key missing from a record, or a key of another length or kind, stops
    the pipeline naming the record, counted from the first record of the
    first file.
    """
    layout = _tfrecord_layout(files, spec, layout_records)
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


def _tfrecord_layout(files, spec, layout_records):
    """`{key: (dtype, shape)}` from the first records of a TFRecord table."""
    layout, first_seen = {}, {}
    records = tf.data.TFRecordDataset(files).take(layout_records)
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
