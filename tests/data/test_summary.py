import numpy as np
import pytest
import tensorflow as tf

from keras_t2t.data import summarize
from tests.data.tables import VOCABULARY
from tests.data.tables import expected_examples
from tests.data.tables import wide_table
from tests.test_case import TestCase

# The tables' text column, not read here.
IGNORE = {"ignore_columns": ["text"]}


class SummarizeTest(TestCase):
    def test_counts_match_the_expansion(self):
        table = wide_table(num_rows=30, num_labels=2)
        summary = summarize(table, VOCABULARY, "row", "label", **IGNORE)
        expected = expected_examples(table)
        self.assertEqual(summary.num_examples, len(expected))
        self.assertEqual(summary.num_rows, 30)
        present_rows = {row for row, _, _ in expected}
        self.assertEqual(summary.dropped_rows, 30 - len(present_rows))
        for teacher_id, name in enumerate(VOCABULARY.names):
            column = "label" if teacher_id == 0 else name
            values = table[column]
            self.assertEqual(
                summary.examples[name],
                sum(1 for e in expected if e[1] == teacher_id),
            )
            self.assertAllEqual(
                summary.present[name], (~np.isnan(values)).sum(0)
            )
            self.assertAllEqual(summary.missing[name], np.isnan(values).sum(0))
        text = str(summary)
        self.assertIn("30 rows", text)
        self.assertIn("textblob", text)

    def test_streamed_source_gives_the_same_counts(self):
        table = wide_table(num_rows=30)
        in_memory = summarize(table, VOCABULARY, "row", "label", **IGNORE)
        streamed = summarize(
            tf.data.Dataset.from_tensor_slices(table),
            VOCABULARY,
            "row",
            "label",
            **IGNORE,
        )
        self.assertEqual(str(streamed), str(in_memory))

    def test_empty_stream(self):
        table = wide_table(num_rows=4)
        for column in ["label", *VOCABULARY.teachers]:
            table[column][:] = np.nan
        dataset = tf.data.Dataset.from_tensor_slices(table)
        with pytest.raises(ValueError, match="expansion would be empty"):
            summarize(dataset, VOCABULARY, "row", "label", **IGNORE)
