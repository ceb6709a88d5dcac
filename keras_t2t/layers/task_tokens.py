import keras
from keras import ops

from keras_t2t.layers.teacher_embedding import TeacherEmbedding


@keras.saving.register_keras_serializable(package="keras_t2t")
class TaskTokens(TeacherEmbedding):
    """Prepends task tokens to an input, for one pass over several tasks.

    The packed Teacher2Task layouts: instead of one example per (input,
    task), each input carries learned task vectors (id 0 is the ground
    truth) in front of its own positions. The returned attention mask lets
    the input positions attend only to input positions, so their encoding
    is the same whatever the tasks, and lets each task position attend to
    the input and to itself. The encoder's output at task position s is
    then the reading of the input by the task in slot s, and one forward
    pass serves every task of the row. The table of vectors, its arguments
    and its config are `TeacherEmbedding`'s; only the placement differs.

    Without `task_ids`, every task is prepended, ids `0..N` in order (the
    `"packed"` layout). With `task_ids` `(batch, slots)`, each row gets the
    vectors of its own ids, gathered from the table (the `"sparse"`
    layout: a row scored by 3 of 1,000 teachers carries 4 tokens, not
    1,001); an id of -1 is an empty slot, padding a row with fewer tasks
    than the batch's longest, and attends only to itself. With
    `task_ids = [0, 1, ..., N]` on every row both placements give the same
    sequence and mask. (`Teacher2TaskBackbone`'s sparse layout also gives
    every slot the same relative positions to the input, so that a task
    reads a row alike in any slot.)

    Args:
        Those of `TeacherEmbedding`, whose table of N + 1 task vectors
        (`num_teachers`, `hidden_dim`, `embeddings_initializer`,
        `ground_truth_token`, `teacher_shrinkage`) this layer holds.

    Call arguments:
        sequence: float tensor of shape `(batch, seq, hidden_dim)`.
        padding_mask: tensor of shape `(batch, seq)`, 1 for real positions.
        task_ids: int tensor of shape `(batch, slots)` or `None` (every
            task). Ids in `[0, N]`, -1 for an empty slot.

    Returns:
        A tuple `(sequence, attention_mask)` with shapes
        `(batch, T + seq, hidden_dim)` and `(batch, T + seq, T + seq)`
        (1 where a query position may attend to a key position), where T
        is `slots`, or N + 1 without `task_ids`.

    Example:
    ```python
    layer = keras_t2t.layers.TaskTokens(num_teachers=3, hidden_dim=8)
    sequence, attention_mask = layer(
        np.zeros((2, 5, 8)), np.ones((2, 5), "int32")
    )
    sequence.shape  # (2, 9, 8)
    # Row 0 read by the ground truth and teacher 2, row 1 by the ground
    # truth alone (slot 1 empty).
    sequence, attention_mask = layer(
        np.zeros((2, 5, 8)),
        np.ones((2, 5), "int32"),
        task_ids=np.array([[0, 2], [0, -1]]),
    )
    sequence.shape  # (2, 7, 8)
    ```
    """

    @property
    def num_tasks(self):
        return self.num_teachers + 1

    def call(self, sequence, padding_mask, task_ids=None):
        batch = ops.shape(sequence)[0]
        vectors = ops.cast(self.task_vectors(), sequence.dtype)
        if task_ids is None:
            tasks = self.num_tasks
            tokens = ops.broadcast_to(
                vectors[None], (batch, tasks, self.hidden_dim)
            )
        else:
            task_ids = ops.cast(task_ids, "int32")
            tasks = ops.shape(task_ids)[1]
            # An empty slot (-1) reads row 0's vector; nothing attends to
            # it and its output is never a target.
            tokens = ops.take(vectors, ops.maximum(task_ids, 0), axis=0)
        own_task = ops.broadcast_to(
            ops.eye(tasks, dtype="int32")[None], (batch, tasks, tasks)
        )
        sequence = ops.concatenate([tokens, sequence], axis=1)

        # Keys: [tasks, input]. A task row sees itself and the real input
        # positions (an empty slot itself only); an input row sees the real
        # input positions only.
        keys = ops.cast(padding_mask, "int32")[:, None, :]
        length = ops.shape(keys)[-1]
        task_keys = ops.broadcast_to(keys, (batch, tasks, length))
        if task_ids is not None:
            filled = ops.cast(task_ids >= 0, "int32")
            task_keys = task_keys * filled[..., None]
        task_rows = ops.concatenate([own_task, task_keys], axis=2)
        input_rows = ops.concatenate(
            [
                ops.zeros((batch, length, tasks), "int32"),
                ops.broadcast_to(keys, (batch, length, length)),
            ],
            axis=2,
        )
        attention_mask = ops.concatenate([task_rows, input_rows], axis=1)
        return sequence, attention_mask

    def compute_output_shape(
        self, sequence_shape, padding_mask_shape=None, task_ids_shape=None
    ):
        batch, length = sequence_shape[0], sequence_shape[1]
        tasks = self.num_tasks if task_ids_shape is None else task_ids_shape[1]
        length = None if None in (length, tasks) else length + tasks
        return (batch, length, sequence_shape[2]), (batch, length, length)

    def compute_output_spec(self, sequence, padding_mask, task_ids=None):
        # The sequence in the compute dtype, the attention mask int32.
        sequence_shape, mask_shape = self.compute_output_shape(
            tuple(sequence.shape),
            None,
            None if task_ids is None else tuple(task_ids.shape),
        )
        return (
            keras.KerasTensor(sequence_shape, dtype=self.compute_dtype),
            keras.KerasTensor(mask_shape, dtype="int32"),
        )


class _TaskSlots(keras.layers.Layer):
    """The encoder outputs at the task positions of a sparse layout.

    Private to `Teacher2TaskBackbone`, which builds it in its constructor
    (a saved backbone is rebuilt from its config, not from this layer's).

    The first `slots` positions of `sequence` (`slots` is `task_ids`'s
    second dimension). A layer because the number of slots is known only
    when the model runs (each batch is padded to its own longest row).

    Call arguments:
        sequence: float tensor `(batch, slots + seq, hidden_dim)`.
        task_ids: int tensor `(batch, slots)`.

    Returns:
        `(batch, slots, hidden_dim)`.
    """

    def call(self, sequence, task_ids):
        return sequence[:, : ops.shape(task_ids)[1]]

    def compute_output_shape(self, sequence_shape, task_ids_shape):
        return (sequence_shape[0], task_ids_shape[1], sequence_shape[2])


class _SlotPositionBias(keras.layers.Layer):
    """T5's relative position bias with every task slot at one position.

    T5 knows positions only through a learned bias per head on the
    bucketed distance between a query and a key. With task tokens at
    positions `0..slots-1`, a task's distance to the input would depend on
    its slot, so a teacher would read a row differently as the second or
    the fifth source of a row, and the ground truth differently in a
    training batch than alone at inference. This layer computes the bias
    as if every slot sat at the position just before the input (as the one
    task token of the per-example layout does), and folds the attention
    mask in, for the first encoder layer to use instead of its own.

    It reads the bias table of the encoder's first attention layer (which
    keeps owning, saving and training it) through `bias_owner`, which is
    not tracked as a sublayer: the weight is saved once, with its owner.
    So it cannot be serialized on its own: it is private to
    `Teacher2TaskBackbone`, which builds it in its constructor.

    Args:
        bias_owner: the `T5MultiHeadAttention` that owns the table.

    Call arguments:
        attention_mask: int tensor `(batch, slots + seq, slots + seq)`.
        task_ids: int tensor `(batch, slots)`.

    Returns:
        `(batch, num_heads, slots + seq, slots + seq)`, the bias plus
        -1e9 where the mask forbids attention.
    """

    def __init__(self, bias_owner, **kwargs):
        super().__init__(**kwargs)
        # Set past Keras's tracking: the table is its owner's to save.
        object.__setattr__(self, "_bias_owner", bias_owner)

    def call(self, attention_mask, task_ids):
        owner = self._bias_owner
        slots = ops.shape(task_ids)[1]
        length = ops.shape(attention_mask)[1]
        positions = ops.concatenate(
            [
                ops.zeros((slots,), "int32"),
                ops.arange(1, length - slots + 1, dtype="int32"),
            ]
        )
        relative = positions[None, :] - positions[:, None]
        # keras-hub exports no bucketing function; this is T5's own.
        buckets = owner._relative_position_bucket(
            relative,
            bidirectional=True,
            num_buckets=owner.relative_attention_buckets,
            max_distance=owner.relative_attention_max_distance,
        )
        table = ops.cast(owner.relative_attention_bias, self.compute_dtype)
        bias = ops.transpose(ops.take(table, buckets, axis=0), (2, 0, 1))
        blocked = 1.0 - ops.cast(attention_mask, self.compute_dtype)
        return bias[None] + blocked[:, None] * -1e9

    def compute_output_shape(self, attention_mask_shape, task_ids_shape):
        heads = self._bias_owner.num_heads
        batch, length = attention_mask_shape[0], attention_mask_shape[1]
        return (batch, heads, length, length)
