import numpy as np

from keras_t2t.data.sources import MemoryRows
from keras_t2t.data.sources import TableSpec
from keras_t2t.data.sources import read_rows

_SUMMARY_BLOCK = 4096


class ExpansionSummary:
    """Counts of a multi-teacher table before training.

    Attributes:
        num_rows: int. Rows (items) in the table.
        dropped_rows: int. Rows without a value from any source: they give
            no example.
        examples: dict `{task name: examples}`, one example per row where
            that source has at least one label.
        present: dict `{task name: array (num_labels,)}` of present values.
        missing: dict `{task name: array (num_labels,)}` of missing values.
        truncated_texts: int or `None`. Texts longer than the
            preprocessor's sequence length (when one was given).
    """

    def __init__(
        self,
        names,
        num_rows,
        dropped_rows,
        examples,
        present,
        truncated_texts=None,
    ):
        self.names = tuple(names)
        self.num_rows = int(num_rows)
        self.dropped_rows = int(dropped_rows)
        self.examples = dict(zip(names, map(int, examples), strict=True))
        self.present = dict(zip(names, present, strict=True))
        self.missing = {n: num_rows - p for n, p in self.present.items()}
        self.truncated_texts = truncated_texts

    @property
    def num_examples(self):
        """Examples per epoch (without balancing)."""
        return sum(self.examples.values())

    def __str__(self):
        width = max(len(name) for name in self.names) + 2
        lines = [
            f"{self.num_rows} rows -> {self.num_examples} examples "
            f"({self.dropped_rows} rows without any value dropped)",
            f"{'task':<{width}}{'examples':>10}  present per label"
            "  (missing per label)",
        ]
        for name in self.names:
            present = ", ".join(str(int(v)) for v in self.present[name])
            missing = ", ".join(str(int(v)) for v in self.missing[name])
            lines.append(
                f"{name:<{width}}{self.examples[name]:>10}  [{present}]"
                f"  ([{missing}])"
            )
        if self.truncated_texts is not None:
            lines.append(f"texts truncated: {self.truncated_texts}")
        return "\n".join(lines)

    __repr__ = __str__


def summarize(
    source,
    vocabulary,
    inputs,
    ground_truth=None,
    teachers=None,
    *,
    preprocessor=None,
    file_format=None,
    **table_options,
):
    """Counts per task and per label what `expand` will make of a table.

    Takes the same table arguments as `keras_t2t.data.expand` (the table
    options, `**table_options`, are documented in
    `keras_t2t.data.sources.TableSpec`) and reads the source once
    (streamed sources are streamed). With a `TextPreprocessor` it also
    counts the texts that will be truncated.

    Returns:
        An `ExpansionSummary`; `print()` it for a table.
    """
    spec = TableSpec.of_call(
        summarize, vocabulary, inputs, ground_truth, teachers, table_options
    )
    rows = read_rows(source, spec, file_format=file_format)
    num_sources = len(spec.source_names)
    counts = {
        "rows": 0,
        "dropped": 0,
        "examples": np.zeros(num_sources, np.int64),
        "present": None,
        "truncated": 0 if preprocessor is not None else None,
    }

    def add(block_targets, block_inputs):
        present = ~np.isnan(block_targets)  # (rows, sources, labels)
        counts["rows"] += len(block_targets)
        counts["dropped"] += int((~present.any(axis=(1, 2))).sum())
        counts["examples"] += present.any(axis=2).sum(axis=0)
        block_present = present.sum(axis=0)
        if counts["present"] is None:
            counts["present"] = block_present
        else:
            counts["present"] += block_present
        if preprocessor is not None:
            texts = block_inputs[preprocessor.text_column]
            counts["truncated"] += int(np.sum(preprocessor.truncated(texts)))

    if isinstance(rows, MemoryRows):
        rows.check_not_empty(spec)
    for block in rows.blocks(_SUMMARY_BLOCK).as_numpy_iterator():
        add(block["targets"], block["inputs"])
    if counts["present"] is None or not counts["examples"].any():
        raise ValueError(
            f"The table ({counts['rows']} rows) has no value from any source "
            f"({list(spec.source_names)}): the expansion would be empty."
        )
    return ExpansionSummary(
        spec.source_names,
        counts["rows"],
        counts["dropped"],
        counts["examples"],
        list(counts["present"]),
        counts["truncated"],
    )
