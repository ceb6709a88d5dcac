"""In-memory inputs of `Teacher2TaskClassifier`: told apart, split, batched.

`fit`, `evaluate` and `predict` take a dict of arrays or a dataset. Arrays
are checked whole (`input_checks`), split for `validation_split` and
shuffled into batches here; datasets come batched and shuffled (or not) by
their maker.
"""

import keras
import numpy as np
import tensorflow as tf


def in_memory(x):
    """Whether `x` is a dict of numpy arrays."""
    return isinstance(x, dict) and all(
        isinstance(value, np.ndarray) for value in x.values()
    )


def num_rows(data):
    """The length of the first array in `data` (any nesting)."""
    return len(next(iter(keras.tree.flatten(data))))


def no_rows(x):
    """Whether `x` (inputs or a dataset) holds no examples at all."""
    if isinstance(x, tf.data.Dataset):
        return int(x.cardinality()) == 0
    if not isinstance(x, dict) or not x:
        return False
    value = next(iter(x.values()))
    shape = value.shape if hasattr(value, "shape") else np.shape(value)
    return len(shape) > 0 and shape[0] == 0


def split(data, validation_split):
    """Splits arrays as Keras does: the last `validation_split` is held out."""
    size = num_rows(data)
    cut = int(size * (1.0 - validation_split))
    if not 0 < cut < size:
        raise ValueError(
            f"{size} examples cannot be split with validation_split="
            f"{validation_split}."
        )
    train = keras.tree.map_structure(lambda a: a[:cut], data)
    held_out = keras.tree.map_structure(lambda a: a[cut:], data)
    return train, held_out


def for_fit(x, y, sample_weight, validation_split, validation_data):
    """Packs arrays as `(x, y, sample_weight)`, the validation held out.

    Returns the packed training data and `validation_data`: the last
    `validation_split` of the rows where it is set and no `validation_data`
    is given, else `validation_data` unchanged.
    """
    data = keras.utils.pack_x_y_sample_weight(x, y, sample_weight)
    if validation_split and validation_data is None:
        data, validation_data = split(data, validation_split)
    return data, validation_data


def batches(data, batch_size=None, shuffle=True):
    """A dataset of `data`'s batches, reshuffled each epoch if `shuffle`.

    KerasHub's pipeline turns arrays into a dataset without shuffling them;
    Teacher2Task examples arrive grouped by row and task, so they are
    shuffled here as Keras shuffles arrays.
    """
    size = num_rows(data)
    dataset = tf.data.Dataset.from_tensor_slices(data)
    if shuffle:
        dataset = dataset.shuffle(size, reshuffle_each_iteration=True)
    return dataset.batch(batch_size or 32)
