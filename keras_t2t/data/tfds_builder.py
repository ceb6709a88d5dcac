import numpy as np

from keras_t2t.data.sources import MemoryRows
from keras_t2t.data.sources import TableSpec
from keras_t2t.data.sources import read_rows


def save_as_tfds(
    splits,
    vocabulary,
    inputs,
    name,
    data_dir,
    ground_truth=None,
    teachers=None,
    *,
    version="1.0.0",
    description=None,
    **table_options,
):
    """Writes a multi-teacher table as a TensorFlow Datasets dataset.

    The table is read and checked as `expand` reads it, then stored with a
    TFDS builder in the canonical wide form: the input columns, one float
    column `(num_labels,)` per source named as in the vocabulary (the
    ground truth under `vocabulary.ground_truth_name`, NaN where missing).
    Load it offline with `tfds.load(name, data_dir=data_dir, split=...)`
    and pass the result to `expand` with the same vocabulary and inputs.

    Args:
        splits: a table source (see `expand`), or a dict
            `{split_name: source}`. A single source becomes split
            `"train"`.
        vocabulary: `keras_t2t.TeacherVocabulary`.
        inputs: str or list of str. The input columns.
        name: str. The TFDS dataset name (snake_case).
        data_dir: str. Where TFDS writes (and later reads) the dataset.
        ground_truth, teachers: the table's columns, as in `expand`.
        version: str. The dataset version. Defaults to `"1.0.0"`.
        description: str. Defaults to a line listing the teachers.
        **table_options: the table's layout and columns, as `expand`
            takes them (`layout`, `item_column`, `num_labels`, `rescale`,
            ...; documented in `keras_t2t.data.sources.TableSpec`).

    Returns:
        The `tfds` builder; `builder.as_dataset(split=...)` reads it too.

    Example:
    ```python
    keras_t2t.data.save_as_tfds(
        {"train": "train.csv", "test": "test.csv"}, vocabulary,
        inputs="text", name="my_reviews", data_dir="~/tfds",
        ground_truth="label",
    )
    rows = tfds.load("my_reviews", data_dir="~/tfds", split="train")
    dataset = keras_t2t.data.expand(rows, vocabulary, "text")
    ```
    """
    import tensorflow_datasets as tfds

    if not isinstance(splits, dict):
        splits = {"train": splits}
    spec = TableSpec.of_call(
        save_as_tfds, vocabulary, inputs, ground_truth, teachers, table_options
    )
    columns = {
        split: _canonical(source, spec) for split, source in splits.items()
    }
    first = next(iter(columns.values()))
    features = {}
    for column, values in first.items():
        if values.dtype.kind in "US":
            features[column] = tfds.features.Text()
        else:
            features[column] = tfds.features.Tensor(
                shape=values.shape[1:], dtype=values.dtype
            )
    builder = tfds.dataset_builders.store_as_tfds_dataset(
        name=name,
        version=version,
        features=tfds.features.FeaturesDict(features),
        split_datasets={
            split: _examples(values) for split, values in columns.items()
        },
        data_dir=data_dir,
        description=description
        or (
            "Multi-teacher table for keras_t2t: ground truth "
            f"'{vocabulary.ground_truth_name}', teachers "
            f"{list(vocabulary.teachers)}."
        ),
        disable_shuffling=True,
    )
    return builder


def _canonical(source, spec):
    rows = read_rows(source, spec)
    if not isinstance(rows, MemoryRows):
        rows = _collect(rows)
    columns = dict(rows.inputs)
    for source_id, name in enumerate(spec.source_names):
        columns[name] = rows.targets[:, source_id].astype("float32")
    return columns


def _collect(rows):
    inputs, targets = {}, []
    for block in rows.blocks(4096).as_numpy_iterator():
        for name, value in block["inputs"].items():
            inputs.setdefault(name, []).append(value)
        targets.append(block["targets"])
    return MemoryRows(
        {name: np.concatenate(values) for name, values in inputs.items()},
        np.concatenate(targets),
        None,
    )


def _examples(columns):
    num_rows = len(next(iter(columns.values())))
    for index in range(num_rows):
        yield (
            index,
            {name: _python(values[index]) for name, values in columns.items()},
        )


def _python(value):
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.str_):
        return str(value)
    return value
