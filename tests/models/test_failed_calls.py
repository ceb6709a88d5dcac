"""A call that fails leaves the model working: after each bad `fit`,
`evaluate` or `predict` (refused by our checks, or failing inside Keras's
loop on a bad batch), the same model object predicts as before and
trains."""

import numpy as np
import tensorflow as tf

import keras_t2t
from tests.test_case import SMALLEST
from tests.test_case import TestCase
from tests.test_case import tiny_backbone
from tests.test_case import tiny_classifier

ROWS, LENGTH, VOCABULARY = 8, 5, 20


def inputs(rows=ROWS, mask_length=LENGTH, teacher=0):
    rng = np.random.default_rng(0)
    return {
        "token_ids": rng.integers(3, VOCABULARY, (rows, LENGTH)).astype(
            "int32"
        ),
        "padding_mask": np.ones((rows, mask_length), "int32"),
        "teacher_id": np.full((rows,), teacher, "int32"),
    }


def batches(*parts):
    """A dataset whose batches are `parts` in turn: a bad batch after a
    good one fails inside Keras's loop, not in our checks up front."""
    dataset = None
    for x, y in parts:
        part = tf.data.Dataset.from_tensors((x, y))
        dataset = part if dataset is None else dataset.concatenate(part)
    return dataset


class FailedCallsTest(TestCase):
    def test_the_model_works_after_each_failed_call(self):
        model = tiny_classifier(
            tiny_backbone(vocabulary_size=VOCABULARY, **SMALLEST)
        )
        model.compile(optimizer="adam")
        x, y = inputs(), np.ones((ROWS, 1), "float32")
        model.fit(x, y, batch_size=4, epochs=1, verbose=0)
        x_predict = {k: v for k, v in x.items() if k != "teacher_id"}
        reference = model.predict(x_predict, verbose=0)

        good = (x, y)
        bad_mask = (inputs(mask_length=LENGTH + 2), y)
        bad_teacher = (inputs(teacher=99), y)
        bad_targets = (x, np.ones((ROWS, 3), "float32"))
        empty = inputs(rows=0)
        bad_calls = {
            "predict, mask of another length": lambda: model.predict(
                {**x_predict, "padding_mask": np.ones((ROWS, 7), "int32")},
                verbose=0,
            ),
            "predict, a bad second batch": lambda: model.predict(
                batches(good, bad_mask), verbose=0
            ),
            "predict, a task that does not exist": lambda: model.predict(
                x_predict, all_tasks=[99], verbose=0
            ),
            "evaluate, a bad second batch": lambda: model.evaluate(
                batches(good, bad_teacher), verbose=0
            ),
            "evaluate, targets of another width": lambda: model.evaluate(
                *bad_targets, verbose=0
            ),
            "fit, y=None on arrays": lambda: model.fit(
                x, None, epochs=1, verbose=0
            ),
            "fit, batch_size=0": lambda: model.fit(
                *good, batch_size=0, verbose=0
            ),
            "fit, a dataset that yields nothing": lambda: model.fit(
                batches(good).filter(lambda *_: False), verbose=0
            ),
            "evaluate, no rows": lambda: model.evaluate(
                empty, np.ones((0, 1), "float32"), verbose=0
            ),
            "predict, steps=-1": lambda: model.predict(
                x_predict, steps=-1, verbose=0
            ),
            "fit_combination, labels of another length": lambda: (
                model.fit_combination(x_predict, np.ones(ROWS + 1))
            ),
            "export_saved_model, version 0": lambda: (
                keras_t2t.export.export_saved_model(
                    model, self.get_temp_dir(), version=0
                )
            ),
        }
        for name, call in bad_calls.items():
            with self.subTest(call=name):
                with self.assertRaises(Exception):  # noqa: B017 (any)
                    call()
                self.assertAllClose(
                    model.predict(x_predict, verbose=0), reference
                )
        # A failure in the middle of training keeps what trained before.
        with self.assertRaises(Exception):  # noqa: B017 (any)
            model.fit(batches(good, bad_mask), epochs=1, verbose=0)
        self.assertTrue(np.isfinite(model.predict(x_predict, verbose=0)).all())
        history = model.fit(x, y, batch_size=4, epochs=1, verbose=0)
        self.assertTrue(np.isfinite(history.history["loss"][-1]))
        self.assertEqual(model.predict(x_predict, verbose=0).shape, (ROWS, 1))


class NothingToDoTest(TestCase):
    def test_data_that_yields_nothing_is_an_error(self):
        model = tiny_classifier(
            tiny_backbone(vocabulary_size=VOCABULARY, **SMALLEST)
        )
        y = np.ones((ROWS, 1), "float32")
        nothing = batches((inputs(), y)).filter(lambda *_: False)
        empty = (inputs(rows=0), np.ones((0, 1), "float32"))
        for name, call, message in [
            ("fit, no rows", lambda: model.fit(*empty), "0 rows"),
            ("evaluate, no rows", lambda: model.evaluate(*empty), "0 rows"),
            (
                "fit, a filter keeps nothing",
                lambda: model.fit(nothing),
                "no batch",
            ),
            (
                "evaluate, a filter keeps nothing",
                lambda: model.evaluate(nothing),
                "no batch",
            ),
        ]:
            with self.subTest(call=name):
                with self.assertRaisesRegex(ValueError, message):
                    call()
        # Resuming with nothing left to train is not an error.
        history = model.fit(*(inputs(), y), epochs=1, initial_epoch=1)
        self.assertEqual(history.history, {})
