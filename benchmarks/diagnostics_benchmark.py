"""Time and memory of `keras_t2t.diagnostics.teacher_report` on a crowd.

Builds a synthetic crowd table, long layout (item, source, score, input):
~2,000 items, each scored by 3-5 of N workers drawn with Zipf-like
activity (a few workers score hundreds of items, most a handful), workers
of mixed skill (experts, average workers, spammers, adversaries), ground
truth on 5% of the items. Reports on it at N = 10, 100 and 1,000, each in
its own process so that each has its own peak memory, and prints side by
side:

- `time s`: the report, from the table to the `TeacherReport` (reading the
  long table included), the median of `--repeats` runs after one warm-up
  run (imports and tf.data's tracing are not the report's);
- `traced peak MB`: the peak of Python and numpy allocations during one
  run (`tracemalloc`; TensorFlow's own buffers are not traced), and the
  peaks of its parts above what was held when each began: reading the
  table (the data module's `read_rows`, as `expand` reads it: a long table
  becomes a dense items x (N + 1) array), counting one block (the most of
  any block) and building the report from the counts;
- `RSS MB`: the process's peak resident memory (`resource`), TensorFlow
  included;
- the table (scores, workers that scored), what the report holds (pairs
  that co-scored a row, whether it summarised, lines of Markdown) and the
  task table a student of hidden size `--hidden-dim` would hold,
  (N + 1) x hidden_dim float32.

Usage:
    python benchmarks/diagnostics_benchmark.py [--workers 10 100 1000]
"""

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
import tracemalloc

SKILLS = {
    # kind: (share of workers, probability a vote is right)
    "expert": (0.15, 0.95),
    "average": (0.55, 0.75),
    "spammer": (0.2, 0.5),
    "adversary": (0.1, 0.2),
}


def crowd_table(num_workers, num_items=2000, zipf=1.0, seed=0):
    """A long crowd table and its vocabulary.

    Returns:
        `(frame, vocabulary)`: a DataFrame with `item`, `source`, `score`
        and the input `x` (the item's number), one row per (item, worker)
        score and per labelled item (source `ground_truth`).
    """
    import numpy as np
    import pandas as pd

    import keras_t2t

    rng = np.random.default_rng(seed)
    activity = 1.0 / np.arange(1, num_workers + 1) ** zipf
    per_item = np.minimum(rng.integers(3, 6, num_items), num_workers)
    # Gumbel top-k: each item's workers, without replacement, by activity,
    # an item at a time so the draw needs no items x N array.
    items, workers = [], []
    log_activity = np.log(activity)
    for item, count in enumerate(per_item):
        keys = log_activity + rng.gumbel(size=num_workers)
        chosen = np.argpartition(-keys, count - 1)[:count]
        items.append(np.full(count, item))
        workers.append(chosen)
    items, workers = np.concatenate(items), np.concatenate(workers)
    shares, right = zip(*SKILLS.values(), strict=True)
    kind = rng.choice(len(SKILLS), num_workers, p=shares)
    truth = (rng.random(num_items) < 0.3).astype("float64")
    correct = rng.random(len(items)) < np.asarray(right)[kind[workers]]
    vote = np.where(correct, truth[items], 1 - truth[items])
    confidence = 0.5 + 0.5 * rng.random(len(items))
    score = np.where(vote == 1, confidence, 1 - confidence)
    names = np.array([f"worker_{k}" for k in range(num_workers)])
    labelled = np.flatnonzero(rng.random(num_items) < 0.05)
    frame = pd.DataFrame(
        {
            "item": np.concatenate([items, labelled]),
            "source": np.concatenate(
                [names[workers], np.full(len(labelled), "ground_truth")]
            ),
            "score": np.concatenate([score, truth[labelled]]),
        }
    )
    frame["x"] = frame["item"].astype("float32")
    return frame, keras_t2t.TeacherVocabulary(list(names))


def run(num_workers, args):
    """One measurement, in this process: prints a JSON line."""
    import keras_t2t

    frame, vocabulary = crowd_table(
        num_workers, args.items, zipf=args.zipf, seed=args.seed
    )
    options = dict(inputs="x", layout="long")
    keras_t2t.diagnostics.teacher_report(frame, vocabulary, **options)
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        keras_t2t.diagnostics.teacher_report(frame, vocabulary, **options)
        times.append(time.perf_counter() - start)
    # The whole run's traced peak, and the peaks of its parts above what
    # was held when each began: reading the table (the data module's
    # `read_rows`, as `expand` reads it), counting each block, and
    # building the report from the counts.
    module = sys.modules["keras_t2t.diagnostics.teacher_report"]
    parts = {"read": [], "block": [], "build": []}
    originals = []

    def measured(owner, name, part):
        function = getattr(owner, name)
        originals.append((owner, name, function))

        def wrapper(*args, **kwargs):
            held, peak = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
            try:
                return function(*args, **kwargs)
            finally:
                now_peak = tracemalloc.get_traced_memory()[1]
                parts[part].append(now_peak - held)
                # Keep the whole run's peak readable afterwards.
                whole.append(max(peak, now_peak))

        setattr(owner, name, wrapper)

    whole = []
    measured(module, "read_rows", "read")
    measured(module.TableStatistics, "add", "block")
    measured(module.TeacherReport, "_from_statistics", "build")
    tracemalloc.start()
    try:
        report = keras_t2t.diagnostics.teacher_report(
            frame, vocabulary, **options
        )
        whole.append(tracemalloc.get_traced_memory()[1])
    finally:
        tracemalloc.stop()
        for owner, name, function in originals:
            setattr(owner, name, function)
    scores = int(report.scored.sum())
    print(
        json.dumps(
            {
                "workers": num_workers,
                "items": report.num_rows,
                "scores": scores,
                "workers_scoring": int((report.scored.sum(1) > 0).sum()),
                "median_scores": float(
                    statistics.median(report.scored.sum(1).tolist())
                ),
                "time_s": statistics.median(times),
                "traced_peak_mb": max(whole) / 2**20,
                "read_mb": max(parts["read"]) / 2**20,
                "block_mb": max(parts["block"]) / 2**20,
                "build_mb": max(parts["build"]) / 2**20,
                "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                / 1024,
                "pairs": len(report.co_scored["teachers"]),
                "summarized": bool(report.summarized),
                "markdown_lines": len(report.to_markdown().splitlines()),
                "task_table_mb": (num_workers + 1)
                * args.hidden_dim
                * 4
                / 2**20,
            }
        )
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--workers", type=int, nargs="+", default=[10, 100, 1000]
    )
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument(
        "--zipf", type=float, default=1.0, help="Activity exponent."
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--hidden-dim", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--run", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run is not None:
        run(args.run, args)
        return
    results = []
    for num_workers in args.workers:
        command = [sys.executable, __file__, "--run", str(num_workers)]
        command += ["--items", str(args.items), "--zipf", str(args.zipf)]
        command += ["--repeats", str(args.repeats), "--seed", str(args.seed)]
        command += ["--hidden-dim", str(args.hidden_dim)]
        output = subprocess.run(
            command, check=True, capture_output=True, text=True
        ).stdout
        results.append(json.loads(output.strip().splitlines()[-1]))
    columns = [
        ("workers", "N", "{}"),
        ("items", "items", "{}"),
        ("scores", "scores", "{}"),
        ("workers_scoring", "scoring", "{}"),
        ("median_scores", "median/worker", "{:g}"),
        ("time_s", "time s", "{:.3f}"),
        ("traced_peak_mb", "traced peak MB", "{:.1f}"),
        ("read_mb", "reading MB", "{:.1f}"),
        ("block_mb", "a block MB", "{:.1f}"),
        ("build_mb", "building MB", "{:.1f}"),
        ("rss_mb", "RSS MB", "{:.0f}"),
        ("pairs", "pairs", "{}"),
        ("summarized", "summary", "{}"),
        ("markdown_lines", "md lines", "{}"),
        ("task_table_mb", f"task table MB (h={args.hidden_dim})", "{:.2f}"),
    ]
    print("| " + " | ".join(title for _, title, _ in columns) + " |")
    print("|" + "---|" * len(columns))
    for result in results:
        cells = [form.format(result[key]) for key, _, form in columns]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
