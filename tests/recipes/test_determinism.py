"""A recipe run is a function of its seed: two runs give the same scores."""

import argparse
import json
import os
import subprocess
import sys

import numpy as np

from recipes import common
from recipes import students
from tests.test_case import TestCase

ROOT = os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
)


def tiny_task(rows=96, length=6, vocabulary=20, num_teachers=3):
    rng = np.random.default_rng(0)
    token_ids = rng.integers(3, vocabulary, (rows, length)).astype("int32")
    labels = (token_ids[:, 0] > vocabulary // 2).astype("float32")[:, None]
    noise = rng.normal(0, 0.3, (rows, num_teachers, 1))
    scores = np.clip(labels[:, None, :] + noise, 0, 1).astype("float32")
    missing = rng.random((rows, num_teachers)) < 0.3
    missing[:, 0] = False  # Every row scored by someone.
    scores[missing] = np.nan
    return common.Task(
        name="tiny",
        inputs={
            "token_ids": token_ids,
            "padding_mask": np.ones_like(token_ids),
        },
        labels=labels,
        teacher_scores=scores,
        teacher_names=[f"t{k}" for k in range(num_teachers)],
        backbone_args={"vocabulary_size": vocabulary},
        classical=None,
        classical_name="none",
    )


def tiny_args():
    parser = argparse.ArgumentParser()
    common.add_common_flags(parser, name="tiny")
    args = parser.parse_args(
        [
            "--num-layers=1",
            "--num-heads=2",
            "--hidden-dim=16",
            "--intermediate-dim=32",
            "--batch-size=8",
            "--steps=12",
            "--eval-every=6",
            "--ground-truth-fraction=0.5",
        ]
    )
    return args


def train_twice_in_process(seed):
    """Scores of each tiny student at `seed`, as exact hex strings."""
    common.make_deterministic()
    task, args = tiny_task(), tiny_args()
    split = common.split_rows(len(task.labels), args, seed=seed)
    aggregated = {"teacher_mean": np.nanmean(task.teacher_scores, 1)}
    scores = {}
    for method in ("teacher2task_sparse", "student_teacher_mean"):
        value, _, _ = students.train_student(
            method, task, split, args, seed, aggregated
        )
        scores[method] = [float(v).hex() for v in np.ravel(value)]
    return scores


CHILD = """
import json, sys
from tests.recipes.test_determinism import train_twice_in_process
print("SCORES" + json.dumps(train_twice_in_process(int(sys.argv[1]))))
"""


def run_child(seed, hash_seed):
    """`train_twice_in_process(seed)` in a fresh process with its own
    `PYTHONHASHSEED` (string hashing, so set and dict orders, differ)."""
    env = dict(os.environ, PYTHONHASHSEED=str(hash_seed))
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    result = subprocess.run(
        [sys.executable, "-c", CHILD, str(seed)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if result.returncode:
        raise AssertionError(result.stderr[-3000:])
    line = [x for x in result.stdout.splitlines() if x.startswith("SCORES")]
    return json.loads(line[-1][len("SCORES") :])


class RecipeDeterminismTest(TestCase):
    def test_another_process_gives_the_same_scores_for_a_seed(self):
        here = train_twice_in_process(seed=1)
        # A fresh process, with another string-hash seed (so set and dict
        # orders differ): exactly the same numbers, bit for bit.
        self.assertEqual(run_child(seed=1, hash_seed=12345), here)
        for method, values in here.items():
            # Not a constant: the students learned something row by row.
            self.assertGreater(len(set(values)), 1, msg=method)
