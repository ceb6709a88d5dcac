import numpy as np
import tensorflow as tf

from keras_t2t import _arguments
from keras_t2t.data.sources import MemoryRows
from keras_t2t.data.sources import TableSpec
from keras_t2t.data.sources import read_rows

# Rows are expanded in blocks: one vectorised `tf.where` per block instead
# of a `flat_map` per row.
_BLOCK_ROWS = 1024
LAYOUTS = ("sparse", "packed", "per_example")


def expand(
    source,
    vocabulary,
    inputs,
    ground_truth=None,
    teachers=None,
    *,
    file_format=None,
    ground_truth_weight=1.0,
    teacher_weight=1.0,
    balance=None,
    task_layout="sparse",
    packed=None,
    shuffle_buffer=None,
    seed=None,
    preprocessor=None,
    batch_size=None,
    drop_remainder=False,
    repeat=False,
    **table_options,
):
    """Expands a multi-teacher table into Teacher2Task examples.

    A table has one row per input, a ground-truth label for some rows and
    confidence scores from N teachers for many. Teacher2Task learns each
    source as a task: the ground truth as task 0 (the primary task),
    teacher k's confidence as task k. The `task_layout` must match the
    model's `Teacher2TaskBackbone(task_layout=...)`:
    - `"sparse"` (the default): one example per row, carrying the ids of
      its tasks, `task_ids`: the ground truth at slot 0 (its target NaN
      where the row is unlabelled), then the teachers that scored the
      row, in id order. Batches are padded to their longest row (id -1,
      target NaN). A row scored by 3 of 1,000 teachers has 4 slots.
    - `"packed"`: one example per row, a target for each of the N + 1
      tasks (NaN where a source did not score).
    - `"per_example"`: one example per (row, source) that has a value,
      with its `teacher_id`.
    Rows where no source has a value give no example (see `summarize` for
    the counts); nothing else is dropped. The expansion is a `tf.data`
    transformation: only streamed blocks of rows are ever held.

    Sources: a dict of arrays, a pandas DataFrame, a `tf.data.Dataset` of
    dicts (a TFDS dataset too), or a path to a CSV, JSON Lines, Parquet or
    TFRecord (`tf.train.Example`) file; several files of one table as a
    list of paths or a glob pattern (`"rows-*.parquet"`). Large and
    several files stream in blocks. Layouts: `"wide"` (a column per
    source; a cell holds a number, or a list/JSON list of `num_labels`
    numbers) or `"long"` (a row per item, source and score, like
    crowd-kit's task/worker/label tables). NaN, None or an empty cell is a
    missing value, never an error.

    Args:
        source: the table (see above).
        vocabulary: `keras_t2t.TeacherVocabulary`. Teacher columns are
            checked against it and its ids become `teacher_id`.
        inputs: str or list of str. The model input columns, passed on
            under their own names (e.g. `"text"`, or `"features"` and
            `"padding_mask"`).
        ground_truth: str. The ground-truth column of a wide table.
            Defaults to the vocabulary's ground-truth name; a table without
            it has no ground truth.
        teachers: list of column names (teacher names) or a dict
            `{column: teacher_name}`. Defaults to the vocabulary's
            teachers, each a column.
        file_format: `"csv"`, `"jsonl"`, `"parquet"` or `"tfrecord"`;
            inferred from the file suffix when `None`.
        ground_truth_weight: float. `sample_weight` of ground-truth
            examples. Defaults to 1.
        teacher_weight: float or dict `{teacher: weight}`. `sample_weight`
            of teacher examples. Defaults to 1.
        balance: float in `(0, 1)` or `None`. If set, ground-truth
            examples are repeated so that they make up this share of the
            stream; an epoch ends when the teacher examples run out, each
            seen once. Sparse or packed, rows with a ground-truth value are
            repeated to make up this share of the rows. Defaults to `None`
            (every example once per epoch).
        task_layout: str. `"sparse"`, `"packed"` or `"per_example"` (see
            above). Sparse needs `batch_size` (each batch is padded to its
            longest row). Sparse and packed weigh tasks in the loss, not
            with `ground_truth_weight`/`teacher_weight`. Defaults to
            `"sparse"`.
        packed: bool or `None`. The older switch between the packed
            (`True`) and per-example (`False`) layouts; `None` leaves
            `task_layout` in charge. Defaults to `None`.
        shuffle_buffer: int or `None`. Shuffles rows before and examples
            after the expansion with this buffer, so that a batch mixes
            rows and tasks. Defaults to `None` (table order).
        seed: int. Seeds the shuffling and the balancing: the same seed
            gives the same order.
        preprocessor: callable or `None`, mapping the inputs dict to model
            inputs inside the pipeline (after batching when `batch_size`
            is set), e.g. a `keras_t2t.data.TextPreprocessor`.
        batch_size: int or `None`. Batches the examples when set.
        drop_remainder: bool. Drops a last partial batch. Defaults to
            `False`.
        repeat: bool. If `True`, an endless stream of passes over the
            table (epochs; use `fit(..., steps_per_epoch=...)`), pass k
            shuffled and balanced with seeds drawn from `(seed, k)`: the
            stream is the same in every process, however often it was
            iterated before, which `keras_t2t.callbacks.BackupAndRestore`
            needs to resume exactly. (A dataset reshuffled at each pass
            draws its seeds in the order its iterators are made, which
            differs after a restart.) Defaults to `False`.
        **table_options: the table's layout and columns, documented in
            `keras_t2t.data.sources.TableSpec`: `layout` (`"wide"` or
            `"long"`), `item_column`, `source_column`, `score_column`,
            `label_column`, `num_labels`, `rescale` and `ignore_columns`.
            `summarize` and `save_as_tfds` take the same.

    Returns:
        A `tf.data.Dataset` of `(x, target, sample_weight)`: `x` holds the
        input columns and `teacher_id` (int32), `target` is
        `(num_labels,)` float32 with NaN where that label is missing.
        Sparse: `x` holds the input columns and `task_ids` (int32,
        `(batch, slots)`), `target` is `(batch, slots, num_labels)` and
        `sample_weight` is 1. Packed: `x` holds the input columns, `target`
        is `(num_teachers + 1, num_labels)` and `sample_weight` is 1.

    Example:
    ```python
    vocabulary = keras_t2t.TeacherVocabulary(["vader", "textblob"])
    dataset = keras_t2t.data.expand(
        "reviews.csv", vocabulary, inputs="text", ground_truth="label",
        shuffle_buffer=10_000, seed=0, batch_size=64,
        preprocessor=text_preprocessor,
    )
    classifier.fit(dataset, epochs=3)
    ```
    """
    spec = TableSpec.of_call(
        expand, vocabulary, inputs, ground_truth, teachers, table_options
    )
    if packed is not None:
        packed = _arguments.boolean("packed", packed)
        task_layout = "packed" if packed else "per_example"
    _arguments.choice("task_layout", task_layout, LAYOUTS)
    _arguments.number("balance", balance, above=0.0, below=1.0, allow_none=True)
    _arguments.number("ground_truth_weight", ground_truth_weight, 0.0)
    if isinstance(teacher_weight, dict):
        for name, weight in teacher_weight.items():
            _arguments.number(f"teacher_weight[{name!r}]", weight, 0.0)
    else:
        _arguments.number("teacher_weight", teacher_weight, 0.0)
    _arguments.integer("shuffle_buffer", shuffle_buffer, 1, allow_none=True)
    _arguments.integer("seed", seed, 0, allow_none=True)
    _arguments.boolean("drop_remainder", drop_remainder)
    _arguments.boolean("repeat", repeat)
    if task_layout != "per_example" and (
        ground_truth_weight != 1.0
        or isinstance(teacher_weight, dict)
        or teacher_weight != 1.0
    ):
        raise ValueError(
            f"With task_layout={task_layout!r} every task of a row is one "
            "example: weight the tasks in the loss (packed: "
            "`MaskedMultiTaskLoss(normalize='tasks', task_weights="
            "[ground_truth, teacher_1, ...])`), not with ground_truth_weight="
            f"{ground_truth_weight} / teacher_weight={teacher_weight}."
        )
    # None: unbatched examples.
    _arguments.integer("batch_size", batch_size, 1, allow_none=True)
    if task_layout == "sparse" and not batch_size:
        raise ValueError(
            "task_layout='sparse' pads each batch to its longest row (the "
            "rows carry different numbers of tasks): pass `batch_size`."
        )
    rows = read_rows(source, spec, file_format=file_format)
    if isinstance(rows, MemoryRows):
        rows.check_not_empty(spec)
        if balance is not None and np.isnan(rows.targets[:, 0]).all():
            # Balancing samples ground-truth examples; with none, every
            # epoch would end at once.
            raise ValueError(
                f"`balance={balance}` needs ground-truth values, and column "
                f"{spec.ground_truth!r} has none."
            )

    weights = _source_weights(vocabulary, ground_truth_weight, teacher_weight)
    expand_block = {
        "sparse": _sparse_block,
        "packed": _pack_block,
        "per_example": _expand_block,
    }[task_layout]

    def one_pass(seed, reshuffle):
        raw_rows = rows.dataset
        if shuffle_buffer:
            raw_rows = raw_rows.shuffle(
                shuffle_buffer, seed=seed, reshuffle_each_iteration=reshuffle
            )
        examples = (
            raw_rows.batch(_BLOCK_ROWS)
            .map(
                rows.parse_block,
                num_parallel_calls=tf.data.AUTOTUNE,
                deterministic=True,
            )
            .map(
                lambda block: expand_block(block, weights),
                num_parallel_calls=tf.data.AUTOTUNE,
                deterministic=True,
            )
            .unbatch()
        )
        if task_layout == "sparse":
            examples = examples.map(_dense_slots)
        if shuffle_buffer:
            seed_after = None if seed is None else seed + 1
            examples = examples.shuffle(
                shuffle_buffer,
                seed=seed_after,
                reshuffle_each_iteration=reshuffle,
            )
        if balance is not None:
            is_truth = _is_ground_truth
            ground = examples.filter(is_truth).repeat()
            teachers_only = examples.filter(lambda *e: ~is_truth(*e))
            examples = tf.data.Dataset.sample_from_datasets(
                [ground, teachers_only],
                weights=[balance, 1.0 - balance],
                seed=seed,
                stop_on_empty_dataset=True,
            )
        if task_layout == "sparse":
            examples = examples.padded_batch(
                batch_size,
                padding_values=_sparse_padding(examples.element_spec),
                drop_remainder=drop_remainder,
            )
        elif batch_size:
            examples = examples.batch(batch_size, drop_remainder=drop_remainder)
        return examples

    if not repeat:
        examples = one_pass(seed, reshuffle=True)
    elif seed is None:
        examples = one_pass(None, reshuffle=True).repeat()
    else:

        def pass_k(k):
            # Pass k's seed is a function of (seed, k) alone. TensorFlow
            # mixes the global seed into op seeds (and its `(0, 0)` check
            # fails on a tensor op seed when the global seed is 0), so
            # this function's graph gets a fixed graph-level seed.
            tf.compat.v1.get_default_graph().seed = 1
            return one_pass(
                tf.constant(seed, "int64") * 1_000_003 + 2 * k,
                reshuffle=False,
            )

        examples = tf.data.Dataset.counter().flat_map(pass_k)
    if preprocessor is not None:
        examples = examples.map(
            lambda x, y, w: (_preprocess(preprocessor, x), y, w),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
    return examples.prefetch(tf.data.AUTOTUNE)


def _is_ground_truth(x, target, weight):
    if "teacher_id" not in x:  # Sparse, packed: a row with a ground truth.
        return tf.reduce_any(~tf.math.is_nan(target[0]))
    return tf.equal(x["teacher_id"], 0)


def _preprocess(preprocessor, x):
    tasks = {k: v for k, v in x.items() if k in ("teacher_id", "task_ids")}
    x = dict(preprocessor({k: v for k, v in x.items() if k not in tasks}))
    x.update(tasks)
    return x


def _source_weights(vocabulary, ground_truth_weight, teacher_weight):
    if isinstance(teacher_weight, dict):
        unknown = sorted(set(teacher_weight) - set(vocabulary.teachers))
        if unknown:
            raise ValueError(
                f"`teacher_weight` names {unknown}, not teachers of the "
                f"vocabulary {list(vocabulary.teachers)}."
            )
        teacher = [
            float(teacher_weight.get(n, 1.0)) for n in vocabulary.teachers
        ]
    else:
        teacher = [float(teacher_weight)] * vocabulary.num_teachers
    return tf.constant([float(ground_truth_weight)] + teacher, tf.float32)


def _expand_block(block, weights):
    targets = block["targets"]  # (rows, 1 + N, num_labels)
    present = tf.reduce_any(~tf.math.is_nan(targets), axis=-1)
    pairs = tf.where(present)  # (examples, 2): row, source; row-major.
    rows, sources = pairs[:, 0], tf.cast(pairs[:, 1], tf.int32)
    x = {
        name: tf.gather(value, rows) for name, value in block["inputs"].items()
    }
    x["teacher_id"] = sources
    return x, tf.gather_nd(targets, pairs), tf.gather(weights, sources)


def _pack_block(block, weights):
    targets = block["targets"]  # (rows, 1 + N, num_labels)
    scored = tf.reduce_any(~tf.math.is_nan(targets), axis=(1, 2))
    x = {
        name: tf.boolean_mask(value, scored)
        for name, value in block["inputs"].items()
    }
    targets = tf.boolean_mask(targets, scored)
    return x, targets, tf.ones(tf.shape(targets)[:1], tf.float32)


def _sparse_block(block, weights):
    targets = block["targets"]  # (rows, 1 + N, num_labels)
    present = tf.reduce_any(~tf.math.is_nan(targets), axis=-1)
    scored = tf.reduce_any(present, axis=1)
    targets = tf.boolean_mask(targets, scored)
    present = tf.boolean_mask(present, scored)
    x = {
        name: tf.boolean_mask(value, scored)
        for name, value in block["inputs"].items()
    }
    # Slot 0 is the ground truth whether or not the row is labelled (its
    # target is then NaN): the task read at inference keeps its place.
    present = tf.concat([tf.ones_like(present[:, :1]), present[:, 1:]], 1)
    pairs = tf.where(present)  # (slots, 2): row, task; row-major.
    task_ids = tf.RaggedTensor.from_value_rowids(
        tf.cast(pairs[:, 1], tf.int32),
        pairs[:, 0],
        nrows=tf.shape(present, out_type=tf.int64)[0],
    )
    slot_targets = tf.RaggedTensor.from_value_rowids(
        tf.gather_nd(targets, pairs),
        pairs[:, 0],
        nrows=tf.shape(present, out_type=tf.int64)[0],
    )
    x["task_ids"] = task_ids
    return x, slot_targets, tf.ones(tf.shape(targets)[:1], tf.float32)


def _dense_slots(x, target, weight):
    """A row's slots, unbatched from a ragged block, as plain tensors."""

    def dense(value):
        return (
            value.to_tensor() if isinstance(value, tf.RaggedTensor) else value
        )

    x = {name: dense(value) for name, value in x.items()}
    return x, dense(target), weight


def _sparse_padding(element_spec):
    """`padded_batch` values: empty slots are task -1 with a NaN target;
    other inputs (fixed-size per table) keep the defaults."""
    x, _, _ = element_spec
    padding = {name: None for name in x}
    padding["task_ids"] = tf.constant(-1, tf.int32)
    return (padding, tf.constant(float("nan"), tf.float32), None)
