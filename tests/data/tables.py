"""Small multi-teacher tables for the data tests."""

import numpy as np

import keras_t2t

VOCABULARY = keras_t2t.TeacherVocabulary(["vader", "textblob", "afinn"])


def wide_table(num_rows=12, num_labels=1, seed=0):
    """A wide table: `row` and `text` inputs, `label`, one column per teacher.

    Values are NaN with probability 0.4 (a third of the rows get no ground
    truth at all), so some rows have nothing and are dropped.
    """
    rng = np.random.default_rng(seed)
    table = {
        "row": np.arange(num_rows, dtype="int64"),
        "text": np.array([f"text number {i}" for i in range(num_rows)]),
    }
    shape = (num_rows, num_labels)
    label = rng.integers(0, 2, shape).astype("float32")
    label[rng.random(shape) < 0.6] = np.nan
    table["label"] = label
    for name in VOCABULARY.teachers:
        score = rng.random(shape).astype("float32")
        score[rng.random(shape) < 0.4] = np.nan
        table[name] = score
    table["afinn"][: num_rows // 3] = np.nan  # Rows without any value.
    table["vader"][: num_rows // 3] = np.nan
    table["textblob"][: num_rows // 3] = np.nan
    table["label"][: num_rows // 3] = np.nan
    if num_labels == 1:
        for column in ["label", *VOCABULARY.teachers]:
            table[column] = table[column][:, 0]
    return table


def expected_examples(table):
    """The examples `expand` must give: (row, teacher id, target) triples."""
    columns = ["label", *VOCABULARY.teachers]
    examples = []
    for row in table["row"]:
        for teacher_id, column in enumerate(columns):
            value = np.atleast_1d(table[column][row]).astype("float32")
            if not np.isnan(value).all():
                examples.append((int(row), teacher_id, _key(value)))
    return sorted(examples)


def collect(dataset):
    """Sorted (row, teacher id, target) triples of an unbatched dataset."""
    examples = []
    for x, target, _ in dataset.as_numpy_iterator():
        examples.append((int(x["row"]), int(x["teacher_id"]), _key(target)))
    return sorted(examples)


def _key(values):
    # NaN != NaN, so compare targets through a string form.
    return tuple("nan" if np.isnan(v) else f"{v:.5f}" for v in values)


def to_frame(table):
    import pandas as pd

    return pd.DataFrame(
        {k: list(v) if v.ndim > 1 else v for k, v in table.items()}
    )


def to_long(table):
    """The same table in long layout: one row per (item, source, label)."""
    import pandas as pd

    names = {"label": "ground_truth"}
    rows = []
    for column in ["label", *VOCABULARY.teachers]:
        values = table[column]
        values = values[:, None] if values.ndim == 1 else values
        for row, text in zip(table["row"], table["text"], strict=True):
            for label, value in enumerate(values[row]):
                if not np.isnan(value):
                    rows.append(
                        {
                            "item": f"item-{row}",
                            "row": row,
                            "text": text,
                            "source": names.get(column, column),
                            "score": float(value),
                            "label": label,
                        }
                    )
    return pd.DataFrame(rows)
