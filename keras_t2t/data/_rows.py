"""A table read into canonical rows: held in memory, or streamed in blocks."""

import numpy as np
import tensorflow as tf


class MemoryRows:
    """A table held in memory: `inputs`, `targets` and `row_ids`.

    It streams like `StreamRows`, its rows already checked.
    """

    def __init__(self, inputs, targets, row_ids):
        self.inputs = inputs
        self.targets = targets
        self.row_ids = row_ids

    def __len__(self):
        return len(self.targets)

    @property
    def dataset(self):
        rows = {"inputs": self.inputs, "targets": self.targets}
        return tf.data.Dataset.from_tensor_slices(rows).enumerate()

    @staticmethod
    def parse_block(index, rows):
        return rows

    def blocks(self, block_size):
        return self.dataset.batch(block_size).map(self.parse_block)

    def check_not_empty(self, spec):
        """Raises if no source has a value in any row."""
        if not np.any(~np.isnan(self.targets)):
            raise ValueError(
                f"The table ({len(self)} rows) has no value from any source "
                f"({list(spec.source_names)}): the expansion would be empty."
            )


class StreamRows:
    """A streamed table: raw rows, and how to turn a block of them into
    canonical, checked rows.

    `dataset` yields `(row_index, raw_row)`; `parse_block` maps a batch of
    those to `{"inputs": ..., "targets": (block, 1 + N, num_labels)}`.
    Working in blocks keeps the per-row cost of parsing and checking low.
    """

    def __init__(self, dataset, parse_block):
        self.dataset = dataset
        self.parse_block = parse_block

    def blocks(self, block_size):
        return self.dataset.batch(block_size).map(
            self.parse_block,
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
