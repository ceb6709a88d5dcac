"""Fault injection: no artefact half-written by a crash.

Each of the four writers (`Teacher2TaskClassifier.save`,
`export_saved_model`, `BackupAndRestore`'s backups, `keras-t2t fit`'s run
folder) runs in a child process killed (SIGKILL) after a delay drawn from
a seeded `random.Random`; after every kill the artefact's final path must
hold the previous whole artefact or the new one: a `.keras` file that
loads, SavedModel versions that load, a backup that training resumes
from (at the last step backed up, its weights and metadata of one step),
a run folder absent, empty (as it was) or complete. The children are
forked from `tests/fault_writers.py`, which imports TensorFlow once.

Also: a process killed between the two renames of a backup, two trainings
on one backup folder, and a backup or a save on a full disk.

Minutes long (50+ kills on the TensorFlow backend): `large`. File writes
are the same on every backend, so it runs on TensorFlow only.
"""

import json
import os
import random
import signal
import subprocess
import sys
import time

import keras
import pytest
import tensorflow as tf

from tests.test_case import TestCase

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

pytestmark = [
    pytest.mark.large,
    pytest.mark.skipif(
        keras.backend.backend() != "tensorflow",
        reason="file writes do not depend on the backend: run once, on "
        "TensorFlow (the children are forked from one TensorFlow process)",
    ),
]

# Kills per writer (53 in all: 3 of the backup's aimed between its two
# renames).
KILLS = {"save": 14, "export": 12, "train": 14, "cli_fit": 10}
BETWEEN_RENAMES = 3
TIMEOUT = 300  # Seconds any child may take to reach a point.
# What the measured counts are written to, for the record (optional).
REPORT = os.environ.get("KERAS_T2T_FAULT_REPORT")


class Zygote:
    """`tests/fault_writers.py`: forks the writers, waits for them."""

    def __init__(self):
        env = dict(
            os.environ,
            KERAS_BACKEND="tensorflow",
            PYTHONPATH=ROOT,
            TF_CPP_MIN_LOG_LEVEL="3",
        )
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.fault_writers"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.answer()  # Imported.

    def answer(self, command=None):
        if command is not None:
            self.process.stdin.write(json.dumps(command) + "\n")
            self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("tests/fault_writers.py ended (see stderr)")
        return json.loads(line)

    def fork(self, writer, log, **args):
        return self.answer({"fork": writer, "log": log, "args": args})["pid"]

    def wait(self, pid):
        return self.answer({"wait": pid})["status"]

    def close(self):
        self.process.stdin.close()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def read_events(log):
    if not os.path.exists(log):
        return []
    with open(log) as f:
        return [json.loads(line) for line in f if line.endswith("\n")]


def events_named(events, name):
    return [event for event in events if event[1] == name]


class FaultInjectionTest(TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.zygote = Zygote()
        cls.rng = random.Random(25)
        cls.counts = {}

    @classmethod
    def tearDownClass(cls):
        cls.zygote.close()
        if REPORT:
            with open(REPORT, "w") as f:
                json.dump(cls.counts, f, indent=2)
        for writer, counts in sorted(cls.counts.items()):
            print(f"fault injection, {writer}: {counts}")
        super().tearDownClass()

    def setUp(self):
        super().setUp()
        self.directory = self.get_temp_dir()
        self.runs = 0

    # === Helpers ===

    def start(self, writer, **args):
        """Forks `writer`; returns its pid and its event log."""
        self.runs += 1
        log = os.path.join(self.directory, f"{writer}-{self.runs}.log")
        return self.zygote.fork(writer, log, **args), log

    def wait_until(self, log, ready):
        """Waits until `ready(events)` (or the child ends); the events."""
        deadline = time.time() + TIMEOUT
        while time.time() < deadline:
            events = read_events(log)
            if ready(events) or events_named(events, "error"):
                return events
            if events_named(events, "done"):
                return events
            time.sleep(0.005)
        self.fail(f"{log}: not ready in {TIMEOUT} s; {self.errors(log)}")

    def errors(self, log):
        path = log + ".err"
        if not os.path.exists(path):
            return ""
        with open(path) as f:
            return f.read()[-3000:]

    def finish(self, writer, **args):
        """Runs `writer` to its end; its events."""
        pid, log = self.start(writer, **args)
        status = self.zygote.wait(pid)
        events = read_events(log)
        self.assertEqual(status, 0, self.errors(log))
        self.assertTrue(events_named(events, "done"), self.errors(log))
        return events

    def kill(self, pid, log, started, window, may_end=False):
        """Kills `pid` `uniform(0, window)` s after `started(events)`.

        With `may_end`, the child may have ended by then (a late kill):
        returns `None` then, else its events.
        """
        events = self.wait_until(log, started)
        self.assertFalse(events_named(events, "error"), self.errors(log))
        time.sleep(self.rng.uniform(0, window))
        os.kill(pid, signal.SIGKILL)
        status = self.zygote.wait(pid)
        if may_end and status == 0:
            return None
        self.assertEqual(status, -signal.SIGKILL, self.errors(log))
        return read_events(log)

    def leftovers(self, folder):
        """What writers leave while they write: hidden `.keras-t2t-*`."""
        return [n for n in os.listdir(folder) if n.startswith(".keras-t2t-")]

    def record(self, writer, **counts):
        type(self).counts[writer] = counts

    # === The writers, killed ===

    def test_a_killed_save_leaves_the_previous_file_or_the_new_one(self):
        path = os.path.join(self.directory, "model.keras")
        partial, most_leftovers = [], 0
        for _ in range(KILLS["save"]):
            pid, log = self.start("save", path=path)
            # After its first save, the child saves again and again.
            self.kill(pid, log, lambda e: events_named(e, "saved"), 0.6)
            try:
                keras.saving.load_model(path, safe_mode=True)
            except Exception as error:
                partial.append(f"{type(error).__name__}: {error}"[:200])
            most_leftovers = max(
                most_leftovers, len(self.leftovers(self.directory))
            )
        # A save cleans up what the killed ones left.
        self.finish("save", path=path, count=1)
        left = self.leftovers(self.directory)
        self.record(
            "save",
            kills=KILLS["save"],
            partial_artefacts=len(partial),
            most_leftover_temporary_files=most_leftovers,
            leftovers_after_next_save=len(left),
        )
        self.assertEqual(partial, [])
        self.assertEqual(left, [])
        keras.saving.load_model(path, safe_mode=True)

    def test_a_killed_export_leaves_no_partial_version(self):
        base = os.path.join(self.directory, "serving")
        os.makedirs(base)
        checked, partial = set(), []

        def check_versions():
            for name in sorted(os.listdir(base)):
                if not name.isdigit() or name in checked:
                    continue
                checked.add(name)
                path = os.path.join(base, name)
                try:
                    loaded = tf.saved_model.load(path)
                    assert "serving_default" in loaded.signatures
                    extra = os.path.join(path, "assets.extra", "keras_t2t.json")
                    with open(extra) as f:
                        json.load(f)
                except Exception as error:
                    partial.append(f"{name}: {type(error).__name__}")

        # One whole export: how long one takes.
        events = self.finish("export", base_dir=base, count=1)
        duration = (
            events_named(events, "exported")[0][0]
            - (events_named(events, "start")[0][0])
        )
        check_versions()
        most_leftovers = 0
        for _ in range(KILLS["export"]):
            pid, log = self.start("export", base_dir=base)
            self.kill(
                pid, log, lambda e: events_named(e, "start"), duration * 1.5
            )
            check_versions()
            most_leftovers = max(most_leftovers, len(self.leftovers(base)))
        self.finish("export", base_dir=base, count=1)
        check_versions()
        left = self.leftovers(base)
        self.record(
            "export",
            kills=KILLS["export"],
            seconds_per_export=round(duration, 2),
            versions_written=len(checked),
            partial_artefacts=len(partial),
            most_leftover_staging_folders=most_leftovers,
            leftovers_after_next_export=len(left),
        )
        self.assertEqual(partial, [])
        self.assertEqual(left, [])

    def test_a_killed_training_resumes_from_its_last_backup(self):
        backup_dir = os.path.join(self.directory, "backup")
        backed_up = 0  # The last step whose backup was written.
        lost, inconsistent, refused = [], [], []

        def check_restore(events, log):
            errors = events_named(events, "error")
            if errors:
                refused.append(errors[0][2:])
                self.fail(f"no resume: {errors[0]}; {self.errors(log)}")
            _, _, step, recorded = events_named(events, "restored")[0]
            if step < backed_up:
                lost.append((backed_up, step))
            if recorded is not None and recorded != step:
                # Weights of one step, metadata of another.
                inconsistent.append((step, recorded))
            steps = [event[2] for event in events_named(events, "backed_up")]
            return max(steps, default=backed_up)

        def restored(events):
            return events_named(events, "restored")

        aimed = set(self.rng.sample(range(2, KILLS["train"]), BETWEEN_RENAMES))
        between = 0
        for run in range(KILLS["train"] + 1):
            if run in aimed:
                # Dies itself between the two renames of its 3rd backup.
                pid, log = self.start(
                    "train", backup_dir=backup_dir, kill_in_backup=3
                )
                status = self.zygote.wait(pid)
                self.assertEqual(status, -signal.SIGKILL, self.errors(log))
                events = read_events(log)
                between += 1
            elif run < KILLS["train"]:
                pid, log = self.start("train", backup_dir=backup_dir)
                events = self.kill(pid, log, restored, 1.5)
            else:
                # Ends training: 2 more epochs of 5 batches.
                epochs = backed_up // 5 + 2
                pid, log = self.start(
                    "train", backup_dir=backup_dir, epochs=epochs
                )
                self.assertEqual(self.zygote.wait(pid), 0, self.errors(log))
                events = read_events(log)
            backed_up = check_restore(events, log)
        _, _, step, backup_left = events_named(events, "trained")[0]
        self.record(
            "train",
            kills=KILLS["train"],
            of_which_between_two_renames=between,
            steps_backed_up=backed_up,
            lost_backups=len(lost),
            inconsistent_backups=len(inconsistent),
            refused_resumes=len(refused),
        )
        self.assertEqual(lost, [])
        self.assertEqual(inconsistent, [])
        self.assertEqual(step, epochs * 5)
        self.assertFalse(backup_left)

    def test_a_killed_cli_fit_leaves_no_partial_run_folder(self):
        from tests.cli.test_cli import feature_table

        frame = feature_table(80, labelled=0.4)
        table = os.path.join(self.directory, "table.csv")
        frame.to_csv(table, index=False)
        runs = os.path.join(self.directory, "runs")
        os.makedirs(runs)

        def writing(before):
            # A new staging folder: the child writes the run folder.
            return lambda events: set(self.leftovers(runs)) - before

        # One whole run: how long writing the folder takes.
        pid, log = self.start(
            "cli_fit", table=table, output=os.path.join(runs, "whole")
        )
        self.wait_until(log, writing(set()))
        began = time.time()
        self.assertEqual(self.zygote.wait(pid), 0, self.errors(log))
        duration = events_named(read_events(log), "done")[0][0] - began
        self.assertEqual(events_named(read_events(log), "exit_code")[0][2], 0)
        partial, most_leftovers, states, kills = [], 0, [], 0
        for run in range(3 * KILLS["cli_fit"]):
            if kills == KILLS["cli_fit"]:
                break
            output = os.path.join(runs, f"run-{run}")
            empty = self.rng.random() < 0.5
            if empty:
                os.mkdir(output)  # The previous state: an empty folder.
            before = set(self.leftovers(runs))
            pid, log = self.start("cli_fit", table=table, output=output)
            events = self.kill(
                pid, log, writing(before), duration, may_end=True
            )
            kills += events is not None
            state = self.run_folder_state(output)
            states.append(state)
            if state not in ("absent", "complete") and not (
                empty and state == "empty"
            ):
                partial.append((output, state))
            most_leftovers = max(most_leftovers, len(self.leftovers(runs)))
        self.finish("cli_fit", table=table, output=os.path.join(runs, "last"))
        self.assertEqual(self.run_folder_state(f"{runs}/last"), "complete")
        left = self.leftovers(runs)
        self.record(
            "cli_fit",
            kills=kills,
            ended_before_the_kill=len(states) - kills,
            seconds_writing_the_folder=round(duration, 2),
            found_after_kill={s: states.count(s) for s in set(states)},
            partial_artefacts=len(partial),
            most_leftover_staging_folders=most_leftovers,
            leftovers_after_next_run=len(left),
        )
        self.assertEqual(kills, KILLS["cli_fit"])
        self.assertEqual(partial, [])
        # Each run removes what killed ones left: one at most, the last.
        self.assertLessEqual(most_leftovers, 1)
        self.assertEqual(left, [])

    def run_folder_state(self, output):
        if not os.path.exists(output):
            return "absent"
        if not os.listdir(output):
            return "empty"
        try:
            keras.saving.load_model(
                os.path.join(output, "model.keras"), safe_mode=True
            )
            serving = os.path.join(output, "serving", "1")
            tf.saved_model.load(serving)
            with open(os.path.join(serving, "assets.extra", "keras_t2t.json")):
                pass
            with open(os.path.join(output, "run.json")) as f:
                json.load(f)
            with open(os.path.join(output, "report.md")) as f:
                assert "Teachers and the student" in f.read()
        except Exception as error:
            return f"partial ({type(error).__name__}: {error})"[:300]
        return "complete"

    # === Two trainings, a full disk ===

    def test_a_second_training_on_one_backup_folder_is_refused(self):
        backup_dir = os.path.join(self.directory, "backup")
        first, first_log = self.start("train", backup_dir=backup_dir)
        self.wait_until(first_log, lambda e: events_named(e, "backed_up"))
        # The first one trains on: the second is refused, naming both.
        events = self.finish_with_error("train", backup_dir=backup_dir)
        _, _, kind, message = events_named(events, "error")[0]
        self.assertEqual(kind, "ValueError")
        self.assertIn(f"The backup folder {backup_dir!r} is in use", message)
        self.assertIn(f"process {first} on host", message)
        self.assertNotIn("\n", message)
        # Killed, its lock is stale: the next training takes it over and
        # resumes.
        os.kill(first, signal.SIGKILL)
        self.zygote.wait(first)
        steps = [
            e[2] for e in events_named(read_events(first_log), "backed_up")
        ]
        events = self.finish("train", backup_dir=backup_dir, epochs=1)
        self.assertGreaterEqual(events_named(events, "restored")[0][2], 1)
        self.assertFalse(os.path.exists(backup_dir))
        self.record(
            "two_trainings",
            refused=1,
            stale_lock_taken_over=1,
            first_trained_steps=max(steps),
        )

    def finish_with_error(self, writer, **args):
        pid, log = self.start(writer, **args)
        self.assertEqual(self.zygote.wait(pid), 1, self.errors(log))
        events = read_events(log)
        self.assertTrue(events_named(events, "error"), self.errors(log))
        return events

    def test_a_backup_on_a_full_disk_names_the_folder_and_keeps_the_last(
        self,
    ):
        backup_dir = os.path.join(self.directory, "backup")
        # Writes past 32 kB fail from step 3 on: the backup of step
        # 4 fails (its weights are larger).
        events = self.finish_with_error(
            "train", backup_dir=backup_dir, limit_after_step=3, limit=32768
        )
        _, _, kind, message = events_named(events, "error")[0]
        self.assertEqual(kind, "OSError")
        self.assertIn(f"Could not write a backup in {backup_dir!r}", message)
        self.assertIn("File too large", message)
        self.assertIn("the previous backup there is kept", message)
        # Nothing half-written left, and training resumes from step 3.
        self.assertEqual(
            sorted(os.listdir(backup_dir)),
            ["latest.weights.h5", "training_metadata.json"],
        )
        events = self.finish("train", backup_dir=backup_dir, epochs=1)
        self.assertEqual(events_named(events, "restored")[0][2:], [3, 3])
        self.record("full_disk_backup", message=message)

    def test_a_save_on_a_full_disk_names_the_file_and_keeps_the_last(self):
        path = os.path.join(self.directory, "model.keras")
        events = self.finish_with_error("save", path=path, limit=32768)
        _, _, kind, message = events_named(events, "error")[0]
        self.assertEqual(kind, "OSError")
        self.assertIn(f"Could not save the model to {path!r}", message)
        self.assertIn("the previous file there, if any, is kept", message)
        self.assertEqual(os.listdir(self.directory).count("model.keras"), 1)
        self.assertEqual(self.leftovers(self.directory), [])
        keras.saving.load_model(path, safe_mode=True)
        self.record("full_disk_save", message=message)
