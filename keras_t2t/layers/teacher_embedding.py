import keras
from keras import ops

from keras_t2t import _arguments

GROUND_TRUTH_TOKENS = ("free", "mixture")


@keras.saving.register_keras_serializable(package="keras_t2t")
class TeacherShrinkage(keras.regularizers.Regularizer):
    """Pulls the teacher vectors of a task table towards their mean.

    `strength * mean_k ||e_k - mean_j e_j||^2` over the teacher rows
    (1..N) of the table; the ground-truth row 0 is free. A teacher with
    many scores moves away from the crowd's mean vector as far as its
    scores ask; one with a few dozen stays near it, as a random-effects
    prior would keep it (annotator-embedding models under-fit annotators
    with few labels without such sharing).

    Args:
        strength: float >= 0. Defaults to `0.01`.
    """

    @_arguments.suggests_keywords
    def __init__(self, strength=0.01):
        self.strength = _arguments.number("strength", strength, 0.0)

    def __call__(self, table):
        teachers = table[1:]
        spread = teachers - ops.mean(teachers, axis=0, keepdims=True)
        return self.strength * ops.mean(ops.sum(ops.square(spread), axis=1))

    def get_config(self):
        return {"strength": self.strength}


@keras.saving.register_keras_serializable(package="keras_t2t")
class TeacherEmbedding(keras.layers.Layer):
    """Prepends a learned teacher (task) token to an embedded sequence.

    The teacher id of each example selects one of `num_teachers + 1` learned
    vectors (id 0 is the ground truth), which becomes position 0 of the
    sequence. The padding mask grows by one position that is always attended,
    so the encoder's output at position 0 can read the whole input under the
    task it was asked for.

    Args:
        num_teachers: int. The number of teachers N; the layer holds N + 1
            vectors, one per task id in `[0, N]`.
        hidden_dim: int. The size of each vector, the encoder's hidden size.
        embeddings_initializer: The initializer of the vectors. Defaults to
            a truncated normal with standard deviation 0.05.
        ground_truth_token: str. `"free"`: the ground-truth vector is a
            vector of its own, like the teachers'. `"mixture"`: it is a
            learned mixture of the teacher vectors (softmax weights, equal
            at the start) plus a learned offset that starts at zero, so the
            primary task starts as the teachers' average task and follows
            the teacher vectors as they train. Defaults to `"free"`.
        teacher_shrinkage: float. The strength of a penalty pulling each
            teacher vector towards the teachers' mean vector
            (`TeacherShrinkage`), for many teachers with few scores each.
            Defaults to `0.0` (none).

    Call arguments:
        teacher_id: int tensor of shape `(batch,)`.
        sequence: float tensor of shape `(batch, seq, hidden_dim)`.
        padding_mask: tensor of shape `(batch, seq)`, 1 for real positions.

    Returns:
        A tuple `(sequence, padding_mask)` with shapes
        `(batch, seq + 1, hidden_dim)` and `(batch, seq + 1)`.

    Example:
    ```python
    layer = keras_t2t.layers.TeacherEmbedding(num_teachers=3, hidden_dim=8)
    sequence, padding_mask = layer(
        np.array([0, 2]), np.zeros((2, 5, 8)), np.ones((2, 5), "int32")
    )
    sequence.shape  # (2, 6, 8)
    ```
    """

    @_arguments.suggests_keywords
    def __init__(
        self,
        num_teachers,
        hidden_dim,
        embeddings_initializer=None,
        ground_truth_token="free",
        teacher_shrinkage=0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if embeddings_initializer is None:
            embeddings_initializer = keras.initializers.TruncatedNormal(
                stddev=0.05
            )
        self.num_teachers = _arguments.integer("num_teachers", num_teachers, 1)
        self.hidden_dim = _arguments.integer("hidden_dim", hidden_dim, 1)
        self.ground_truth_token = _arguments.choice(
            "ground_truth_token", ground_truth_token, GROUND_TRUTH_TOKENS
        )
        self.teacher_shrinkage = _arguments.number(
            "teacher_shrinkage", teacher_shrinkage, 0.0
        )
        self.embeddings_initializer = keras.initializers.get(
            embeddings_initializer
        )

    def build(self, *args, **kwargs):
        self.embeddings = self.add_weight(
            shape=(self.num_teachers + 1, self.hidden_dim),
            initializer=self.embeddings_initializer,
            regularizer=(
                TeacherShrinkage(self.teacher_shrinkage)
                if self.teacher_shrinkage and self.num_teachers > 1
                else None
            ),
            name="embeddings",
        )
        if self.ground_truth_token == "mixture":
            # Row 0 is the offset from the mixture: zero at the start.
            self.embeddings.assign(
                ops.concatenate(
                    [
                        ops.zeros((1, self.hidden_dim), self.embeddings.dtype),
                        self.embeddings[1:],
                    ]
                )
            )
            self.mixture_logits = self.add_weight(
                shape=(self.num_teachers,),
                initializer="zeros",
                name="mixture_logits",
            )
        self.built = True

    def task_vectors(self):
        """The `(num_teachers + 1, hidden_dim)` task vectors, ground truth
        first (with `ground_truth_token="mixture"`, the mixture plus its
        offset)."""
        if self.ground_truth_token == "free":
            return self.embeddings
        teachers = self.embeddings[1:]
        weights = ops.softmax(self.mixture_logits)
        ground_truth = self.embeddings[0] + ops.matmul(weights, teachers)
        return ops.concatenate([ground_truth[None], teachers], axis=0)

    def call(self, teacher_id, sequence, padding_mask):
        teacher_id = ops.reshape(ops.cast(teacher_id, "int32"), (-1,))
        token = ops.take(self.task_vectors(), teacher_id, axis=0)
        token = ops.cast(token, sequence.dtype)
        sequence = ops.concatenate([token[:, None, :], sequence], axis=1)
        always = ops.ones_like(padding_mask[:, :1])
        padding_mask = ops.concatenate([always, padding_mask], axis=1)
        return sequence, padding_mask

    def compute_output_shape(
        self, teacher_id_shape, sequence_shape, padding_mask_shape
    ):
        batch, length = sequence_shape[0], sequence_shape[1]
        length = None if length is None else length + 1
        return (batch, length, sequence_shape[2]), (batch, length)

    def compute_output_spec(self, teacher_id, sequence, padding_mask):
        # The sequence comes out in the compute dtype, the mask in its own
        # (integer) dtype: Keras's default would give both the first.
        sequence_shape, mask_shape = self.compute_output_shape(
            None, tuple(sequence.shape), tuple(padding_mask.shape)
        )
        return (
            keras.KerasTensor(sequence_shape, dtype=self.compute_dtype),
            keras.KerasTensor(
                mask_shape,
                dtype=keras.backend.standardize_dtype(padding_mask.dtype),
            ),
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_teachers": self.num_teachers,
                "hidden_dim": self.hidden_dim,
                "ground_truth_token": self.ground_truth_token,
                "teacher_shrinkage": self.teacher_shrinkage,
                "embeddings_initializer": keras.initializers.serialize(
                    self.embeddings_initializer
                ),
            }
        )
        return config
