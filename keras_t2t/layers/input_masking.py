import keras
from keras import ops

from keras_t2t import _arguments


@keras.saving.register_keras_serializable(package="keras_t2t")
class InputMasking(keras.layers.Layer):
    """Hides a random share of an embedded input behind a learned vector.

    The corruption of masked-input pretraining (BERT's masked tokens, a
    masked autoencoder's patches): each real position (padding mask 1) is
    chosen with probability `rate`, and a chosen position's embedding is
    replaced by one learned mask vector. Every input gets at least one
    chosen position (its first real one if the draw chose none), so each
    example has something to predict. The draw is fresh at every call, from
    the layer's own seed generator, on every backend.

    Args:
        rate: float in `(0, 1)`. The share of real positions masked.
            Defaults to `0.15`.
        seed: int. Seeds the draws. Defaults to `None`.
        mask_initializer: initializer of the mask vector. Defaults to a
            truncated normal with standard deviation 0.05.

    Call arguments:
        sequence: float tensor `(batch, seq, hidden_dim)`, the embedded
            input.
        padding_mask: tensor `(batch, seq)`, 1 for real positions.

    Returns:
        A tuple `(sequence, mask)`: the corrupted sequence, and an int32
        tensor `(batch, seq)` with 1 at the masked positions.

    Example:
    ```python
    layer = keras_t2t.layers.InputMasking(rate=0.3, seed=0)
    sequence, mask = layer(np.ones((2, 6, 8)), np.ones((2, 6), "int32"))
    ```
    """

    @_arguments.suggests_keywords
    def __init__(self, rate=0.15, seed=None, mask_initializer=None, **kwargs):
        super().__init__(**kwargs)
        self.rate = _arguments.number("rate", rate, above=0.0, below=1.0)
        self.seed = _arguments.integer("seed", seed, 0, allow_none=True)
        self.mask_initializer = keras.initializers.get(
            mask_initializer or keras.initializers.TruncatedNormal(stddev=0.05)
        )
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, sequence_shape, padding_mask_shape=None):
        self.mask_vector = self.add_weight(
            name="mask_vector",
            shape=(sequence_shape[-1],),
            initializer=self.mask_initializer,
        )

    def call(self, sequence, padding_mask):
        real = ops.cast(padding_mask, "bool")
        draws = keras.random.uniform(
            ops.shape(padding_mask), seed=self.seed_generator
        )
        chosen = ops.logical_and(draws < self.rate, real)
        # No draw on a row: mask its first real position instead.
        first_real = ops.equal(ops.cumsum(ops.cast(real, "int32"), axis=1), 1)
        first_real = ops.logical_and(first_real, real)
        none_chosen = ops.logical_not(ops.any(chosen, axis=1, keepdims=True))
        chosen = ops.logical_or(
            chosen, ops.logical_and(first_real, none_chosen)
        )
        vector = ops.cast(self.mask_vector, sequence.dtype)
        sequence = ops.where(chosen[..., None], vector, sequence)
        return sequence, ops.cast(chosen, "int32")

    def compute_output_shape(self, sequence_shape, padding_mask_shape=None):
        return tuple(sequence_shape), tuple(sequence_shape[:2])

    def compute_output_spec(self, sequence, padding_mask):
        return (
            keras.KerasTensor(sequence.shape, dtype=self.compute_dtype),
            keras.KerasTensor(sequence.shape[:2], dtype="int32"),
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "rate": self.rate,
                "seed": self.seed,
                "mask_initializer": keras.initializers.serialize(
                    self.mask_initializer
                ),
            }
        )
        return config
