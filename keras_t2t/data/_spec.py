"""`TableSpec`: which columns of a multi-teacher table play which role."""

import inspect

from keras_t2t import _arguments


class TableSpec:
    """Which columns of a multi-teacher table play which role.

    Its arguments after `teachers` are the table options that
    `keras_t2t.data.expand`, `summarize` and `save_as_tfds` take as
    keywords (`**table_options`) and pass on here, documented once here.

    Args:
        vocabulary: `keras_t2t.TeacherVocabulary`.
        inputs: str or list of str. The model input columns.
        ground_truth: str or `None`. The ground-truth column (wide layout).
            Defaults to the vocabulary's ground-truth name.
        teachers: list of str, dict or `None`. The teacher columns (wide
            layout): a list of column names that are also teacher names,
            or a dict `{column: teacher_name}`. Defaults to the
            vocabulary's teachers.
        layout: `"wide"` (a column per source) or `"long"` (a row per
            item, source and score). Defaults to `"wide"`.
        item_column, source_column, score_column, label_column: the
            columns of a long table. `label_column` holds a label index
            for multi-label long tables. With `score_column=None`, each
            row's `label_column` is the class its source chose (crowd-kit's
            `task`/`worker`/`label` tables): the class's target is 1 and
            every other label's 0. Defaults to `"item"`, `"source"`,
            `"score"` and `None`.
        num_labels: int or `None`. Inferred when `None`.
        rescale: dict `{teacher_name: (low, high)}` or
            `{teacher_name: "sigmoid"}` for teachers whose scores are not
            confidences in `[0, 1]`: `(low, high)` maps linearly onto
            `[0, 1]`, `"sigmoid"` treats scores as logits.
        ignore_columns: list of str or `None`. Columns of a wide table that
            are read by nobody (ids, notes). Every other column must be an
            input, the ground truth or a teacher column: an unknown one is
            an error, so that no teacher's scores are dropped unnoticed.
            Defaults to `None`.
    """

    @classmethod
    def of_call(
        cls, function, vocabulary, inputs, ground_truth, teachers, options
    ):
        """The spec of a call to `function`, whose `**table_options` are
        `options`: an unknown option is refused, naming the closest of
        `function`'s arguments and the table options."""
        allowed = set(inspect.signature(cls).parameters)
        allowed |= set(inspect.signature(function).parameters)
        _arguments.keywords(f"{function.__name__}()", options, allowed)
        return cls(vocabulary, inputs, ground_truth, teachers, **options)

    def __init__(
        self,
        vocabulary,
        inputs,
        ground_truth=None,
        teachers=None,
        layout="wide",
        item_column="item",
        source_column="source",
        score_column="score",
        label_column=None,
        num_labels=None,
        rescale=None,
        ignore_columns=None,
    ):
        if layout not in ("wide", "long"):
            raise ValueError(
                f'`layout` must be "wide" or "long". Received: {layout!r}'
            )
        self.vocabulary = vocabulary
        self.inputs = [inputs] if isinstance(inputs, str) else list(inputs)
        if not self.inputs:
            raise ValueError("`inputs` must name at least one input column.")
        # An explicitly named ground-truth column must exist; the default
        # one may be absent (a table with teachers only).
        self.ground_truth_required = ground_truth is not None
        self.ground_truth = ground_truth or vocabulary.ground_truth_name
        if teachers is None:
            teachers = {name: name for name in vocabulary.teachers}
        elif not isinstance(teachers, dict):
            teachers = {name: name for name in teachers}
        for column, name in teachers.items():
            if name not in vocabulary or name == vocabulary.ground_truth_name:
                raise ValueError(
                    f"Teacher column {column!r} maps to {name!r}, which is "
                    "not a teacher of the vocabulary "
                    f"{list(vocabulary.teachers)}."
                )
        # Column of each teacher id 1..N (None: this table has no column).
        by_name = {name: column for column, name in teachers.items()}
        self.teacher_columns = [by_name.get(n) for n in vocabulary.teachers]
        self.layout = layout
        self.item_column = item_column
        self.source_column = source_column
        self.score_column = score_column
        self.label_column = label_column
        self.num_labels = num_labels
        self.rescale = dict(rescale or {})
        if isinstance(ignore_columns, str):
            ignore_columns = [ignore_columns]
        self.ignore_columns = list(ignore_columns or [])
        for name, rule in self.rescale.items():
            if name not in vocabulary.teachers:
                raise ValueError(
                    f"`rescale` names {name!r}, not a teacher of the "
                    f"vocabulary {list(vocabulary.teachers)}."
                )
            if rule != "sigmoid" and (
                not isinstance(rule, (tuple, list))
                or len(rule) != 2
                or not rule[1] > rule[0]
            ):
                raise ValueError(
                    f"`rescale[{name!r}]` must be (low, high) with high > "
                    f'low, or "sigmoid". Received: {rule!r}'
                )

    @property
    def source_names(self):
        return self.vocabulary.names

    def check_known_columns(self, names):
        """Raises unless every column of a wide table has a role."""
        teachers = [c for c in self.teacher_columns if c is not None]
        known = {*self.inputs, self.ground_truth, *teachers}
        known.update(self.ignore_columns)
        unknown = [name for name in names if name not in known]
        if not unknown:
            return
        name = unknown[0]
        if name == "label" and not self.ground_truth_required:
            raise ValueError(
                "Column 'label' looks like the ground truth, but "
                "`ground_truth=` was not passed, so the ground truth is read "
                f"from a column {self.ground_truth!r} (there is none). Pass "
                "`ground_truth='label'`, or list it in `ignore_columns` to "
                "train on the teachers alone."
            )
        base, _, suffix = str(name).rpartition(".")
        if suffix.isdigit() and base in known:
            raise ValueError(
                f"Column {name!r} looks like a second {base!r} column that "
                "pandas renamed (a duplicated header): its values would be "
                f"lost. Give each column its own name, or list {name!r} in "
                "`ignore_columns`."
            )
        raise ValueError(
            f"Column {name!r} is not an input ({self.inputs}), the ground "
            f"truth ({self.ground_truth!r}) or a teacher column "
            f"({teachers}) of the vocabulary {list(self.vocabulary.teachers)}"
            f"; unknown columns: {unknown}. Name it in `inputs` or "
            "`teachers`, or list it in `ignore_columns` to leave it out."
        )

    def wide_columns(self):
        """(source id, column) for every source column of a wide table."""
        columns = [(0, self.ground_truth)]
        columns += [
            (k + 1, column)
            for k, column in enumerate(self.teacher_columns)
            if column is not None
        ]
        return columns
