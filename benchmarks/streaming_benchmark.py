"""Peak memory and throughput of `expand` on large CSV and Parquet tables.

Writes a generated wide text table (an 8-word text, a ground-truth label
for 5% of the rows, three teachers scoring 80% of the rows each) as one CSV
file and as a Parquet table split over several files, at a small and a
large row count, then expands each, in a separate process so that each has
its own peak resident memory:

- `whole`: the CSV read whole with pandas, then expanded (today's path for
  files under `keras_t2t.data.sources.STREAM_BYTES`), small size only.
- `csv`: the CSV file streamed in blocks.
- `parquet`: the Parquet files (a list of paths) streamed in blocks.

Prints rows/s, examples/s and peak memory per run, then the two ratios the
streaming targets are about: peak memory of the large run over the small
run of the same format (flat memory: near 1), and streamed rows/s over the
whole-file rows/s at the small size.

Usage:
    python -m benchmarks.streaming_benchmark [--rows 500000 5000000]
        [--parquet-files 5]
"""

import argparse
import os
import shutil
import tempfile
import time

from benchmarks.measure import child_result
from benchmarks.measure import print_result

TEACHERS = ["vader", "textblob", "afinn"]
BATCH_SIZE = 1024
WRITE_BLOCK = 500_000


def blocks(num_rows, seed=0):
    """The generated table, as DataFrames of `WRITE_BLOCK` rows."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    words = np.array([f"w{i}" for i in range(1000)])
    for start in range(0, num_rows, WRITE_BLOCK):
        n = min(WRITE_BLOCK, num_rows - start)
        text = words[rng.integers(0, len(words), (n, 8))]
        label = rng.integers(0, 2, n).astype("float32")
        label[rng.random(n) >= 0.05] = np.nan
        frame = {"text": [" ".join(row) for row in text], "label": label}
        for name in TEACHERS:
            scores = rng.random(n).astype("float32")
            scores[rng.random(n) >= 0.8] = np.nan
            frame[name] = scores
        yield pd.DataFrame(frame)


def write_tables(directory, num_rows, parquet_files):
    """Writes `table.csv` and `parquet/part-*.parquet`; returns the paths."""
    csv = os.path.join(directory, "table.csv")
    parquet = os.path.join(directory, "parquet")
    os.makedirs(parquet)
    frames = list(blocks(num_rows)) if num_rows <= WRITE_BLOCK else None
    for index, frame in enumerate(frames or blocks(num_rows)):
        frame.to_csv(csv, mode="a", header=index == 0, index=False)
    per_file = -(-num_rows // parquet_files)
    paths, part, written = [], [], 0
    for frame in frames or blocks(num_rows):
        part.append(frame)
        written += len(frame)
        if written >= per_file * (len(paths) + 1) or written == num_rows:
            import pandas as pd

            path = os.path.join(parquet, f"part-{len(paths):03d}.parquet")
            pd.concat(part).to_parquet(path, index=False)
            paths.append(path)
            part = []
    return csv, paths


def run(mode, paths):
    """One measurement in this process: prints a JSON line."""
    import tensorflow as tf

    import keras_t2t
    from keras_t2t.data import sources

    if mode == "whole":
        sources.STREAM_BYTES = float("inf")
        source = paths[0]
    elif mode == "csv":
        sources.STREAM_BYTES = 0
        source = paths[0]
    else:
        source = paths
    vocabulary = keras_t2t.TeacherVocabulary(TEACHERS)
    start = time.perf_counter()
    dataset = keras_t2t.data.expand(
        source, vocabulary, "text", "label", batch_size=BATCH_SIZE
    ).map(lambda x, y, w: tf.shape(y)[0])
    count = dataset.reduce(
        tf.constant(0, tf.int64),
        lambda total, size: total + tf.cast(size, tf.int64),
    )
    seconds = time.perf_counter() - start
    print_result(examples=int(count), seconds=seconds)


def measure(mode, paths):
    return child_result("benchmarks.streaming_benchmark", "--run", mode, *paths)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--rows", type=int, nargs=2, default=[500_000, 5_000_000]
    )
    parser.add_argument("--parquet-files", type=int, default=5)
    parser.add_argument("--run", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        run(args.run[0], args.run[1:])
        return

    results = {}
    print(
        f"{'rows':>9} {'run':>8} {'file MB':>8} {'rows/s':>9} "
        f"{'examples/s':>11} {'peak MB':>8}"
    )
    for num_rows in args.rows:
        directory = tempfile.mkdtemp()
        try:
            start = time.perf_counter()
            csv, parquet = write_tables(directory, num_rows, args.parquet_files)
            written = time.perf_counter() - start
            modes = {"csv": [csv], "parquet": parquet}
            if num_rows == args.rows[0]:
                modes = {"whole": [csv], **modes}
            for mode, paths in modes.items():
                size = sum(os.path.getsize(p) for p in paths) / 2**20
                result = measure(mode, paths)
                results[num_rows, mode] = result
                print(
                    f"{num_rows:>9} {mode:>8} {size:>8,.0f} "
                    f"{num_rows / result['seconds']:>9,.0f} "
                    f"{result['examples'] / result['seconds']:>11,.0f} "
                    f"{result['peak_mb']:>8,.0f}",
                    flush=True,
                )
            print(f"          (tables written in {written:.0f} s)")
        finally:
            shutil.rmtree(directory)

    small, large = args.rows
    print()
    for mode in ("csv", "parquet"):
        big, base = results[large, mode], results[small, mode]
        memory = big["peak_mb"] / base["peak_mb"]
        speed = results[small, "whole"]["seconds"] / base["seconds"]
        print(
            f"{mode}: peak memory {large:,} / {small:,} rows = {memory:.2f}x; "
            f"streamed / whole-file rows/s at {small:,} rows = {speed:.2f}x"
        )


if __name__ == "__main__":
    main()
