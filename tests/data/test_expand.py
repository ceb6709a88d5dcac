import re

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

import keras_t2t
from keras_t2t.data import expand
from tests.data.tables import VOCABULARY
from tests.data.tables import _key
from tests.data.tables import collect
from tests.data.tables import expected_examples
from tests.data.tables import wide_table
from tests.test_case import ONE_LAYER
from tests.test_case import TestCase
from tests.test_case import tiny_backbone
from tests.test_case import tiny_classifier


def expand_table(table, **kwargs):
    """`expand` of a test table, per example unless `layout` says."""
    kwargs.setdefault("task_layout", "per_example")
    return expand(table, VOCABULARY, ["row", "text"], "label", **kwargs)


class ExpandTest(TestCase):
    def test_every_present_value_exactly_once(self):
        table = wide_table(num_rows=30)
        self.assertEqual(collect(expand_table(table)), expected_examples(table))

    def test_multi_label(self):
        table = wide_table(num_rows=20, num_labels=3, seed=1)
        examples = collect(expand_table(table))
        self.assertEqual(examples, expected_examples(table))
        self.assertTrue(any("nan" in target for _, _, target in examples))

    def test_unbatched_and_batched_paths_agree(self):
        table = wide_table(num_rows=25)
        unbatched = collect(expand_table(table))
        batched = []
        for x, target, _ in expand_table(
            table, batch_size=4
        ).as_numpy_iterator():
            self.assertLessEqual(len(target), 4)
            for i in range(len(target)):
                batched.append(
                    (
                        int(x["row"][i]),
                        int(x["teacher_id"][i]),
                        tuple(
                            "nan" if np.isnan(v) else f"{v:.5f}"
                            for v in np.atleast_1d(target[i])
                        ),
                    )
                )
        self.assertEqual(sorted(batched), unbatched)

    def test_eager_iteration_matches(self):
        table = wide_table(num_rows=10)
        eager = []
        for x, target, _ in expand_table(table):
            eager.append(
                (
                    int(x["row"].numpy()),
                    int(x["teacher_id"].numpy()),
                    tuple(f"{v:.5f}" for v in target.numpy()),
                )
            )
        self.assertEqual(sorted(eager), expected_examples(table))

    def test_outputs_and_weights(self):
        table = wide_table(num_rows=10)
        dataset = expand_table(
            table, ground_truth_weight=5.0, teacher_weight={"afinn": 0.5}
        )
        x, target, weight = next(iter(dataset))
        self.assertEqual(x["teacher_id"].dtype, tf.int32)
        self.assertEqual(target.shape, (1,))
        weights = {
            int(x["teacher_id"]): float(w)
            for x, _, w in dataset.as_numpy_iterator()
        }
        self.assertEqual(weights, {0: 5.0, 1: 1.0, 2: 1.0, 3: 0.5})

    def test_shuffle_is_seeded_and_mixes_tasks(self):
        table = wide_table(num_rows=60)

        def order(seed):
            dataset = expand_table(table, shuffle_buffer=100, seed=seed)
            return [
                (int(x["row"]), int(x["teacher_id"]))
                for x, _, _ in dataset.as_numpy_iterator()
            ]

        self.assertEqual(order(3), order(3))
        self.assertNotEqual(order(3), order(4))
        plain = [
            (int(x["row"]), int(x["teacher_id"]))
            for x, _, _ in expand_table(table).as_numpy_iterator()
        ]
        self.assertNotEqual(order(3), plain)
        self.assertEqual(sorted(order(3)), sorted(plain))

    def test_repeat_is_a_stream_of_passes_with_their_own_order(self):
        table = wide_table(num_rows=40)
        expected = expected_examples(table)
        stream = expand_table(table, shuffle_buffer=100, seed=3, repeat=True)

        def passes(count):
            examples = stream.take(count * len(expected))
            examples = [
                (int(x["row"]), int(x["teacher_id"]))
                for x, _, _ in examples.as_numpy_iterator()
            ]
            size = len(expected)
            return [
                examples[i : i + size] for i in range(0, count * size, size)
            ]

        first = passes(3)
        # Each pass holds every example once, in its own order.
        for one_pass in first:
            self.assertEqual(
                sorted(one_pass), [(row, task) for row, task, _ in expected]
            )
        self.assertNotEqual(first[0], first[1])
        self.assertNotEqual(first[1], first[2])
        # A new iterator replays the stream: order depends on (seed, pass).
        self.assertEqual(passes(3), first)
        rebuilt = expand_table(table, shuffle_buffer=100, seed=3, repeat=True)
        stream = rebuilt.skip(len(expected))
        self.assertEqual(passes(2), first[1:])

    def test_balance_oversamples_the_ground_truth(self):
        table = wide_table(num_rows=200)
        dataset = expand_table(table, balance=0.5, seed=0)
        ids = np.array(
            [int(x["teacher_id"]) for x, _, _ in dataset.as_numpy_iterator()]
        )
        teacher_examples = sum(1 for e in expected_examples(table) if e[1] > 0)
        self.assertEqual(int((ids > 0).sum()), teacher_examples)
        self.assertAlmostEqual(float((ids == 0).mean()), 0.5, delta=0.1)

    def test_table_without_ground_truth(self):
        table = wide_table(num_rows=10)
        del table["label"]
        dataset = expand(
            table,
            VOCABULARY,
            ["row"],
            ignore_columns=["text"],
            task_layout="per_example",
        )
        ids = {int(x["teacher_id"]) for x, _, _ in dataset.as_numpy_iterator()}
        self.assertEqual(ids, {1, 2, 3})

    def test_feeds_fit(self):
        data = keras_t2t.datasets.make_synthetic_teachers(num_rows=64)
        table = {
            "features": data["inputs"]["features"],
            "padding_mask": data["inputs"]["padding_mask"],
            "label": data["labels"][:, 0],
            "vader": data["teacher_scores"][:, 0, 0],
            "textblob": data["teacher_scores"][:, 1, 0],
            "afinn": data["teacher_scores"][:, 2, 0],
        }
        dataset = expand(
            table,
            VOCABULARY,
            ["features", "padding_mask"],
            "label",
            shuffle_buffer=256,
            seed=0,
            batch_size=16,
            task_layout="per_example",
        )
        classifier = tiny_classifier(tiny_backbone(**ONE_LAYER))
        history = classifier.fit(dataset, epochs=2, verbose=0)
        self.assertTrue(np.isfinite(history.history["loss"]).all())


class ExpandPropertyTest(TestCase):
    @settings(max_examples=25, deadline=None)
    @given(
        num_rows=st.integers(1, 40),
        num_labels=st.integers(1, 3),
        missing=st.floats(0.0, 1.0),
        seed=st.integers(0, 2**16),
    )
    def test_each_present_value_once(self, num_rows, num_labels, missing, seed):
        rng = np.random.default_rng(seed)
        shape = (num_rows, num_labels)
        table = {
            "row": np.arange(num_rows),
            "label": rng.integers(0, 2, shape).astype("float32"),
        }
        for name in VOCABULARY.teachers:
            table[name] = rng.random(shape).astype("float32")
        for column in ["label", *VOCABULARY.teachers]:
            table[column][rng.random(shape) < missing] = np.nan
        expected = expected_examples(table)
        if not expected:
            with pytest.raises(ValueError, match="expansion would be empty"):
                expand(
                    table, VOCABULARY, "row", "label", task_layout="per_example"
                )
            return
        dataset = expand(
            table,
            VOCABULARY,
            "row",
            "label",
            shuffle_buffer=8,
            seed=seed,
            task_layout="per_example",
        )
        self.assertEqual(collect(dataset), expected)


class ExpandBadInputTest(TestCase):
    def test_batch_size_must_be_a_positive_integer(self):
        for value in (0, -2, 2.5, True, "64"):
            with (
                self.subTest(batch_size=value),
                pytest.raises(
                    ValueError,
                    match=re.escape(f"Received: batch_size={value!r}"),
                ),
            ):
                expand_table(wide_table(num_rows=4), batch_size=value)

    def assert_bad_cell_is_refused(self, column, row, value, match):
        """A table with `value` at `row` of `column` is refused: `match`."""
        table = wide_table(num_rows=10)
        table[column][row] = value
        with pytest.raises(ValueError, match=match):
            expand_table(table)

    def test_teacher_score_outside_range(self):
        self.assert_bad_cell_is_refused(
            "textblob",
            6,
            1.5,
            r"Row 6: teacher 'textblob' \(column 'textblob'\)",
        )

    def test_rescaling_is_opt_in(self):
        table = wide_table(num_rows=10)
        table["afinn"] = table["afinn"] * 10 - 5  # AFINN-like range.
        table["vader"] = np.log(table["vader"] / (1 - table["vader"]))
        dataset = expand_table(
            table, rescale={"afinn": (-5, 5), "vader": "sigmoid"}
        )
        self.assertEqual(collect(dataset), expected_examples(wide_table(10)))

    def test_ground_truth_not_binary(self):
        self.assert_bad_cell_is_refused(
            "label", 7, 0.5, r"Row 7: ground truth \(column 'label'\) is 0.5"
        )

    def test_unknown_teacher_column(self):
        with pytest.raises(ValueError, match="'gemini'.*not a teacher"):
            expand_table(wide_table(), teachers=["vader", "gemini"])
        with pytest.raises(ValueError, match="no column 'afinn' for 'afinn'"):
            table = wide_table()
            del table["afinn"]
            expand_table(table)

    def test_missing_named_ground_truth_column(self):
        table = wide_table()
        del table["label"]
        with pytest.raises(ValueError, match="no column 'label'"):
            expand_table(table)

    def test_inconsistent_num_labels(self):
        table = wide_table(num_rows=4)
        cells = np.empty(4, dtype=object)
        cells[:] = [[0.1, 0.2], None, [0.3], [0.4, 0.5]]
        table["vader"] = cells
        with pytest.raises(
            ValueError, match=r"Row 2: column 'vader' holds 1 label"
        ):
            expand_table(table)
        table["vader"] = np.full((4, 2), 0.5)
        with pytest.raises(ValueError, match=r"disagree.*'label' 1, 'vader' 2"):
            expand_table(table)
        with pytest.raises(ValueError, match=r"'vader' holds 2 .*num_labels=1"):
            expand_table(table, num_labels=1)

    def test_inconsistent_feature_shapes(self):
        table = wide_table(num_rows=3)
        features = np.empty(3, dtype=object)
        features[:] = [np.zeros((4, 2)), np.zeros((4, 2)), np.zeros((5, 2))]
        table["features"] = features
        with pytest.raises(
            ValueError, match=r"Row 2: input 'features'.*\(5, 2\)"
        ):
            expand(
                table,
                VOCABULARY,
                "features",
                "label",
                ignore_columns=["row", "text"],
                task_layout="per_example",
            )

    def test_empty_result(self):
        table = wide_table(num_rows=5)
        for column in ["label", *VOCABULARY.teachers]:
            table[column][:] = np.nan
        with pytest.raises(
            ValueError, match="5 rows.*expansion would be empty"
        ):
            expand_table(table)

    def test_missing_values_are_not_errors(self):
        table = wide_table(num_rows=6)
        table["vader"] = np.array([None, 0.5, None, 0.1, None, None], object)
        collect(expand_table(table))

    def test_streamed_score_outside_range(self):
        table = wide_table(num_rows=10)
        table["afinn"][8] = -0.5
        dataset = tf.data.Dataset.from_tensor_slices(table)
        with pytest.raises(
            tf.errors.InvalidArgumentError,
            match=r"teacher afinn \(column afinn\).*\[0, 1\]",
        ) as error:
            collect(
                expand(
                    dataset,
                    VOCABULARY,
                    ["row", "text"],
                    "label",
                    task_layout="per_example",
                )
            )
        self.assertIn("Row] [8]", str(error.value).replace('"', ""))

    def test_balance_without_ground_truth(self):
        table = wide_table(num_rows=10)
        table["label"][:] = np.nan
        with pytest.raises(ValueError, match="balance=0.5.*'label' has none"):
            expand_table(table, balance=0.5)

    def test_bad_arguments(self):
        with pytest.raises(
            ValueError,
            match="`balance` must be a finite number > 0.0 and < 1.0",
        ):
            expand_table(wide_table(), balance=1.5)
        with pytest.raises(ValueError, match='"wide" or "long"'):
            expand_table(wide_table(), layout="tall")
        with pytest.raises(ValueError, match="no input column 'txt'"):
            expand(
                wide_table(),
                VOCABULARY,
                "txt",
                "label",
                task_layout="per_example",
            )


class PackedExpandTest(TestCase):
    def unpack(self, dataset):
        """(row, task, target) triples of a packed dataset's present tasks."""
        examples = []
        for x, target, weight in dataset.as_numpy_iterator():
            self.assertEqual(target.shape[0], 4)  # Ground truth + 3 teachers.
            self.assertEqual(float(weight), 1.0)
            self.assertNotIn("teacher_id", x)
            for task, values in enumerate(target):
                if not np.isnan(values).all():
                    examples.append((int(x["row"]), task, _key(values)))
        return sorted(examples)

    def test_rows_stay_rows_with_every_source(self):
        for num_labels in (1, 3):
            table = wide_table(num_rows=30, num_labels=num_labels)
            dataset = expand_table(table, packed=True)
            self.assertEqual(self.unpack(dataset), expected_examples(table))
            rows = [int(x["row"]) for x, _, _ in dataset.as_numpy_iterator()]
            # Rows with no value from any source are the only ones left out.
            self.assertEqual(len(rows), len(set(rows)))
            self.assertEqual(
                sorted(rows), sorted({e[0] for e in expected_examples(table)})
            )

    def test_batched_shuffled_and_repeated(self):
        table = wide_table(num_rows=40)
        dataset = expand_table(
            table, packed=True, shuffle_buffer=100, seed=1, batch_size=8
        )
        x, target, weight = next(iter(dataset))
        self.assertEqual(tuple(target.shape), (8, 4, 1))
        stream = expand_table(
            table, packed=True, shuffle_buffer=100, seed=1, repeat=True
        )
        rows = [int(x["row"]) for x, _, _ in stream.take(60)]
        self.assertEqual(len(set(rows[:20])), 20)  # A first pass.

    def test_balance_repeats_rows_with_ground_truth(self):
        table = wide_table(num_rows=200)
        dataset = expand_table(table, packed=True, balance=0.5, seed=0)
        truth = [
            not np.isnan(target[0]).all()
            for _, target, _ in dataset.as_numpy_iterator()
        ]
        self.assertAlmostEqual(float(np.mean(truth)), 0.5, delta=0.1)

    def test_task_weights_belong_in_the_loss(self):
        with self.assertRaisesRegex(ValueError, "task_weights"):
            expand_table(wide_table(), packed=True, ground_truth_weight=5.0)
        with self.assertRaisesRegex(ValueError, "task_weights"):
            expand_table(wide_table(), packed=True, teacher_weight={"vader": 2})


class RepeatSeedTest(TestCase):
    def test_stream_ignores_the_global_seed(self):
        # TF's seed check failed on a pass seed when the global seed was 0,
        # and the global seed used to enter the order.
        import keras

        table = wide_table(num_rows=40)
        streams = []
        for global_seed in (0, 5):
            keras.utils.set_random_seed(global_seed)
            stream = expand_table(
                table, shuffle_buffer=100, seed=3, repeat=True, batch_size=8
            )
            streams.append(
                [int(r) for x, _, _ in stream.take(12) for r in x["row"]]
            )
        self.assertEqual(streams[0], streams[1])


class SparseExpandTest(TestCase):
    def unpack(self, dataset):
        """(row, task, target) triples of a sparse dataset's present tasks."""
        examples = []
        for x, target, weight in dataset.as_numpy_iterator():
            self.assertNotIn("teacher_id", x)
            self.assertEqual(x["task_ids"].shape, target.shape[:2])
            self.assertAllEqual(weight, np.ones(len(weight)))
            for row, ids, values in zip(
                x["row"], x["task_ids"], target, strict=True
            ):
                self.assertEqual(ids[0], 0)  # The ground truth's slot.
                filled = ids >= 0
                # Slots: ground truth, then the scoring teachers in id
                # order, then empty slots (NaN) padding the batch.
                self.assertAllEqual(filled, np.sort(filled)[::-1])
                self.assertTrue(np.isnan(values[~filled]).all())
                self.assertAllEqual(
                    ids[1:][filled[1:]], np.sort(ids[1:][filled[1:]])
                )
                for task, value in zip(
                    ids[filled], values[filled], strict=True
                ):
                    if not np.isnan(value).all():
                        examples.append((int(row), int(task), _key(value)))
        return sorted(examples)

    def test_rows_carry_the_tasks_that_scored_them(self):
        for num_labels in (1, 3):
            table = wide_table(num_rows=30, num_labels=num_labels)
            dataset = expand_table(table, task_layout="sparse", batch_size=7)
            self.assertEqual(self.unpack(dataset), expected_examples(table))
            # A slot per source that scored the row, and the ground truth's.
            x, target, _ = next(iter(dataset.unbatch().batch(1)))
            self.assertEqual(target.shape[0], 1)

    def test_the_default_layout_and_batch_size_required(self):
        table = wide_table(num_rows=20)
        dataset = expand(
            table, VOCABULARY, ["row", "text"], "label", batch_size=4
        )
        x, target, _ = next(iter(dataset))
        self.assertIn("task_ids", x)
        self.assertEqual(len(target.shape), 3)
        with self.assertRaisesRegex(ValueError, "batch_size"):
            expand(table, VOCABULARY, ["row", "text"], "label")
        with self.assertRaisesRegex(ValueError, "task_layout"):
            expand_table(table, task_layout="dense", batch_size=4)

    def test_same_tasks_as_the_packed_layout(self):
        table = wide_table(num_rows=40)
        sparse = expand_table(table, task_layout="sparse", batch_size=8)
        packed = expand_table(table, task_layout="packed", batch_size=8)
        for (xs, ys, _), (_, yp, _) in zip(sparse, packed, strict=True):
            ids = xs["task_ids"].numpy()
            dense = np.full(yp.shape, np.nan, "float32")
            for row, slots in enumerate(ids):
                for slot, task in enumerate(slots):
                    if task >= 0:
                        dense[row, task] = ys[row, slot]
            self.assertAllClose(dense, yp)

    def test_shuffled_repeated_and_balanced(self):
        table = wide_table(num_rows=200)
        stream = expand_table(
            table,
            task_layout="sparse",
            shuffle_buffer=100,
            seed=1,
            batch_size=10,
            balance=0.5,
            repeat=True,
        )
        first = [b[0]["task_ids"].numpy() for b in stream.take(3)]
        again = [b[0]["task_ids"].numpy() for b in stream.take(3)]
        for a, b in zip(first, again, strict=True):
            self.assertAllEqual(a, b)
        truth = [
            not np.isnan(target[0]).all()
            for _, targets, _ in stream.take(20).as_numpy_iterator()
            for target in targets
        ]
        self.assertAlmostEqual(float(np.mean(truth)), 0.5, delta=0.1)
