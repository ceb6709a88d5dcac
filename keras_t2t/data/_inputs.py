"""Input columns read into arrays: text, numbers, and cells holding
sequences of vectors, a malformed cell named by its row."""

import numpy as np


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
