import keras
from keras import ops

from keras_t2t.layers.teacher_embedding import TeacherEmbedding


@keras.saving.register_keras_serializable(package="keras_t2t")
class TaskTokens(TeacherEmbedding):
    """Prepends every task's token to an input, for one pass over all tasks.

    The packed Teacher2Task layout: instead of one example per (input,
    task), each input carries all `num_teachers + 1` learned task vectors
    (id 0 is the ground truth) in front of its own positions. The returned
    attention mask lets the input positions attend only to input positions,
    so their encoding is the same whatever the tasks, and lets each task
    position attend to the input and to itself. The encoder's output at
    position k is then task k's reading of the input, and one forward pass
    serves every task of the row. The table of vectors, its arguments and
    its config are `TeacherEmbedding`'s; only the placement differs.

    Args:
        num_teachers: int. The number of teachers N; the layer holds N + 1
            vectors, one per task id in `[0, N]`.
        hidden_dim: int. The size of each vector, the encoder's hidden size.
        embeddings_initializer: The initializer of the vectors. Defaults to
            a truncated normal with standard deviation 0.05.
        ground_truth_token: str. `"free"` or `"mixture"` (the ground-truth
            vector as a learned mixture of the teacher vectors plus an
            offset; see `TeacherEmbedding`). Defaults to `"free"`.

    Call arguments:
        sequence: float tensor of shape `(batch, seq, hidden_dim)`.
        padding_mask: tensor of shape `(batch, seq)`, 1 for real positions.

    Returns:
        A tuple `(sequence, attention_mask)` with shapes
        `(batch, N + 1 + seq, hidden_dim)` and
        `(batch, N + 1 + seq, N + 1 + seq)` (1 where a query position may
        attend to a key position).

    Example:
    ```python
    layer = keras_t2t.layers.TaskTokens(num_teachers=3, hidden_dim=8)
    sequence, attention_mask = layer(
        np.zeros((2, 5, 8)), np.ones((2, 5), "int32")
    )
    sequence.shape  # (2, 9, 8)
    attention_mask.shape  # (2, 9, 9)
    ```
    """

    @property
    def num_tasks(self):
        return self.num_teachers + 1

    def call(self, sequence, padding_mask):
        batch = ops.shape(sequence)[0]
        tokens = ops.cast(self.task_vectors(), sequence.dtype)
        tokens = ops.broadcast_to(
            tokens[None], (batch, self.num_tasks, self.hidden_dim)
        )
        sequence = ops.concatenate([tokens, sequence], axis=1)

        # Keys: [tasks, input]. A task row sees itself and the real input
        # positions; an input row sees the real input positions only.
        keys = ops.cast(padding_mask, "int32")[:, None, :]
        tasks = self.num_tasks
        length = ops.shape(keys)[-1]
        own_task = ops.eye(tasks, dtype="int32")[None]
        task_rows = ops.concatenate(
            [
                ops.broadcast_to(own_task, (batch, tasks, tasks)),
                ops.broadcast_to(keys, (batch, tasks, length)),
            ],
            axis=2,
        )
        input_rows = ops.concatenate(
            [
                ops.zeros((batch, length, tasks), "int32"),
                ops.broadcast_to(keys, (batch, length, length)),
            ],
            axis=2,
        )
        attention_mask = ops.concatenate([task_rows, input_rows], axis=1)
        return sequence, attention_mask

    def compute_output_shape(self, sequence_shape, padding_mask_shape=None):
        batch, length = sequence_shape[0], sequence_shape[1]
        length = None if length is None else length + self.num_tasks
        return (batch, length, sequence_shape[2]), (batch, length, length)

    def compute_output_spec(self, sequence, padding_mask):
        # The sequence in the compute dtype, the attention mask int32.
        sequence_shape, mask_shape = self.compute_output_shape(
            tuple(sequence.shape)
        )
        return (
            keras.KerasTensor(sequence_shape, dtype=self.compute_dtype),
            keras.KerasTensor(mask_shape, dtype="int32"),
        )
