"""Timing and memory helpers shared by the benchmarks."""

import json
import os
import resource
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Printed by a child after its work: its own peak resident memory. (The
# `ru_maxrss` of `getrusage` keeps the parent's peak across fork and exec
# on Linux, so a child started from a large parent would report at least
# the parent's size.)
_PRINT_PEAK = (
    "line = [l for l in open('/proc/self/status') "
    "if l.startswith('VmHWM')][0]\n"
    "print(int(line.split()[1]) / 1024)\n"
)


def step_ms(model, data, steps):
    """Milliseconds per `train_on_batch` step, after a compiling step."""
    x, y = data
    model.train_on_batch(x, y)  # Compiled on the first call.
    start = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(x, y)
    return 1000 * (time.perf_counter() - start) / steps


def print_result(**result):
    """Prints `result` and this process's peak memory as one JSON line."""
    result["peak_mb"] = (
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    )
    print(json.dumps(result))


def child_result(module, *args):
    """Runs `python -m module *args` from the repository root in a fresh
    process; returns the JSON object of the last line it printed."""
    output = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def training_peak_rss_mb(module, args, steps):
    """Peak RSS (MB) of a fresh process training `module.build(*args)` on
    `module.batch(*args, rng)` for `steps` steps."""
    arguments = ", ".join(map(repr, args))
    return child_peak_rss_mb(
        "import numpy as np\n"
        f"import {module} as b\n"
        f"model = b.build({arguments})\n"
        f"data = b.batch({arguments}, np.random.default_rng(0))\n"
        f"b.step_ms(model, data, {steps})"
    )


def child_peak_rss_mb(code):
    """Peak RSS (MB) of a fresh Python process running `code`."""
    result = subprocess.run(
        [sys.executable, "-c", code + "\n" + _PRINT_PEAK],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-2000:])
    return float(result.stdout.strip().splitlines()[-1])
