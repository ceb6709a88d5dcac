"""Throughput and memory of `keras_t2t.data.expand` on a TFRecord table.

Writes a generated multi-teacher table (a 16-float feature input, a
ground-truth label for 5% of the rows, three teachers scoring 80% of the
rows each) to TFRecord, then streams it, in separate processes so that
each has its own peak memory:

- `passthrough`: the same file through `TFRecordDataset`, batched and
  parsed with `parse_example`: the fastest plain read, what reading costs.
- `expand`: the same file through `keras_t2t.data.expand`, batched.

Prints rows/s, examples/s, their ratio and the peak resident memory of each
run, at 100k and 1M rows: the expansion streams, so its peak memory must not
grow with the row count.

Usage:
    python -m benchmarks.expand_benchmark [--rows 100000 1000000]
"""

import argparse
import os
import tempfile
import time

from benchmarks.measure import child_result
from benchmarks.measure import print_result

TEACHERS = ["vader", "textblob", "afinn"]
BATCH_SIZE = 1024


def write_table(path, num_rows, seed=0):
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    chunk = 100_000
    with tf.io.TFRecordWriter(path) as writer:
        for start in range(0, num_rows, chunk):
            n = min(chunk, num_rows - start)
            features = rng.normal(size=(n, 16)).astype("float32")
            label = rng.integers(0, 2, n).astype("float32")
            label[rng.random(n) >= 0.05] = np.nan
            scores = rng.random((n, 3)).astype("float32")
            scores[rng.random((n, 3)) >= 0.8] = np.nan
            for i in range(n):
                feature = {
                    "features": _floats(features[i]),
                    "label": _floats([label[i]]),
                }
                for k, name in enumerate(TEACHERS):
                    feature[name] = _floats([scores[i, k]])
                example = tf.train.Example(
                    features=tf.train.Features(feature=feature)
                )
                writer.write(example.SerializeToString())


def _floats(values):
    import tensorflow as tf

    return tf.train.Feature(float_list=tf.train.FloatList(value=values))


def run(mode, path):
    """One measurement, in this process: prints a JSON line."""
    import tensorflow as tf

    import keras_t2t

    if mode == "passthrough":
        description = {
            "features": tf.io.FixedLenFeature([16], tf.float32),
            **{
                name: tf.io.FixedLenFeature([], tf.float32)
                for name in ["label", *TEACHERS]
            },
        }
        dataset = (
            tf.data.TFRecordDataset(path)
            .batch(BATCH_SIZE)
            .map(
                lambda records: tf.io.parse_example(records, description),
                num_parallel_calls=tf.data.AUTOTUNE,
            )
            .map(lambda batch: (batch, tf.shape(batch["label"])[0]))
        )
    else:
        vocabulary = keras_t2t.TeacherVocabulary(TEACHERS)
        dataset = keras_t2t.data.expand(
            path, vocabulary, "features", "label", batch_size=BATCH_SIZE
        ).map(lambda x, y, w: (x, tf.shape(y)[0]))
    start = time.perf_counter()
    count = dataset.reduce(
        tf.constant(0, tf.int64),
        lambda total, element: total + tf.cast(element[1], tf.int64),
    )
    seconds = time.perf_counter() - start
    print_result(mode=mode, elements=int(count), seconds=seconds)


def measure(mode, path):
    return child_result("benchmarks.expand_benchmark", "--run", mode, path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--rows", type=int, nargs="+", default=[100_000, 1_000_000]
    )
    parser.add_argument("--run", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        run(*args.run)
        return

    directory = tempfile.mkdtemp()
    print(
        f"{'rows':>9} {'pass-through rows/s':>20} {'expand rows/s':>14} "
        f"{'examples/s':>11} {'ratio':>6} {'peak MB pass':>13} "
        f"{'peak MB expand':>15}"
    )
    for num_rows in args.rows:
        path = os.path.join(directory, f"table_{num_rows}.tfrecord")
        start = time.perf_counter()
        write_table(path, num_rows)
        written = time.perf_counter() - start
        base = measure("passthrough", path)
        expanded = measure("expand", path)
        assert base["elements"] == num_rows, base
        rows_base = num_rows / base["seconds"]
        rows_expand = num_rows / expanded["seconds"]
        print(
            f"{num_rows:>9} {rows_base:>20,.0f} {rows_expand:>14,.0f} "
            f"{expanded['elements'] / expanded['seconds']:>11,.0f} "
            f"{rows_expand / rows_base:>6.2f} {base['peak_mb']:>13,.0f} "
            f"{expanded['peak_mb']:>15,.0f}"
            f"   ({expanded['elements']:,} examples; file written in "
            f"{written:.0f} s)"
        )
        os.remove(path)


if __name__ == "__main__":
    main()
