"""The wide layout (a column per source) and the long layout (a row per item,
source and score) read into `MemoryRows`, checked with numpy."""

import json

import numpy as np

from keras_t2t.data._inputs import _stack_input
from keras_t2t.data._rows import MemoryRows
from keras_t2t.data._validation import _check_targets
from keras_t2t.data._validation import _check_unique
from keras_t2t.data._validation import _display


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


def _num_rows(inputs, columns, spec):
    lengths = {name: len(value) for name, value in columns.items()}
    num_rows = lengths[spec.inputs[0]]
    _check_all_equal(
        lengths,
        num_rows,
        lambda name, length: (
            f"Column {name!r} has {length} rows; column "
            f"{spec.inputs[0]!r} has {num_rows}."
        ),
    )
    return num_rows


def _check_all_equal(values, expected, message):
    """Raises `ValueError(message(column, value))` for the first column of
    `values` whose value is not `expected`."""
    for column, value in values.items():
        if value != expected:
            raise ValueError(message(column, value))


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
    _check_all_equal(
        widths,
        num_labels,
        lambda column, width: (
            f"Column {column!r} holds {width} label(s) "
            f"per row, but num_labels={num_labels}."
        ),
    )
    return num_labels


def _long_rows(columns, spec):
    import pandas as pd

    # No score column: each row's label is a class (crowd-kit's
    # task/worker/label tables), one-hot with its negatives.
    classes = spec.score_column is None
    if classes and not spec.label_column:
        raise ValueError(
            "A long table without a score column (score_column=None) "
            "names a class in `label_column` on each row: pass "
            "label_column=, e.g. label_column='label'."
        )
    needed = [spec.item_column, spec.source_column]
    needed += [] if classes else [spec.score_column]
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
    keys += [spec.label_column] if spec.label_column and not classes else []
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
            + ". A long table holds one (item, source) pair per row"
            + (" (one class each)." if classes else ".")
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
    targets = np.full(
        (len(items), len(spec.source_names), num_labels), np.nan, "float32"
    )
    if classes:
        targets[rows, sources] = 0.0
        targets[rows, sources, labels] = 1.0
    else:
        scores = _numeric_scores(frame[spec.score_column], spec.score_column)
        _check_not_only_positives(scores, spec, num_labels)
        targets[rows, sources, labels] = scores.to_numpy(dtype="float64")
    inputs = {}
    for name in spec.inputs:
        values = np.asarray(columns[name])
        _check_one_input_per_item(values, item_index, rows, items, name)
        inputs[name] = _stack_input(values[item_index], name)
    _check_targets(targets, spec, items, "item")
    return MemoryRows(inputs, targets, items)


def _check_not_only_positives(scores, spec, num_labels):
    """Refuses a score column of 1s beside a label column: class labels
    read as scores would give positive targets only (no label's 0)."""
    given = scores.dropna().to_numpy()
    if (
        spec.label_column
        and num_labels > 1
        and len(given)
        and (given == 1).all()
    ):
        raise ValueError(
            f"Every score in column {spec.score_column!r} is 1, beside "
            f"labels in column {spec.label_column!r}: read so, each row is a "
            "positive for its label and no label is ever a negative. If "
            "each row names the one class its source chose (crowd labels), "
            "pass score_column=None: the class becomes 1 and the other "
            "labels 0."
        )


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
        # Array cells (one array of several axes): NaN matches NaN.
        both = np.isnan(values) & np.isnan(firsts)
        unequal = ~(np.asarray(values == firsts) | both)
        same = ~unequal.reshape(len(values), -1).any(axis=1)
    if not same.all():
        index = int(np.flatnonzero(~same)[0])
        first = int(first_rows[rows[index]])
        raise ValueError(
            f"Item {_display(items[rows[index]])}: input {name!r} is "
            f"{values[first]!r} in row {first} and {values[index]!r} in row "
            f"{index}. A long table repeats an item's inputs on each of its "
            "rows, so they must agree."
        )
