import keras
from keras import ops
from keras_hub.models import Task

from keras_t2t import _arguments
from keras_t2t.layers.input_masking import InputMasking
from keras_t2t.models.teacher2task_backbone import Teacher2TaskBackbone


@keras.saving.register_keras_serializable(package="keras_t2t")
class Teacher2TaskPretrainer(Task):
    """Self-supervised warm start of a backbone's encoder on its inputs.

    Teacher2Task students are often trained from scratch on a few thousand
    inputs, most of them without labels. Before `fit`, this task trains the
    backbone's encoder to fill in hidden parts of those inputs: masked
    tokens (text, BERT's objective, cross-entropy over the vocabulary) or
    masked feature vectors (image patches, video frames; a masked
    autoencoder's objective, mean squared error). The loss counts masked
    positions only. It needs no labels and no teacher scores, so every
    input of the table may serve, except the test rows.

    The encoder runs as it does inside the backbone (token embedding or
    feature projection, absolute positions if any, the T5 layers, the
    final norm) but without task tokens: in the packed layout the input
    positions never see them anyway. The layers are the backbone's own, so
    after `fit` the backbone holds the pretrained weights; build the
    `Teacher2TaskClassifier` on it and train as usual.

    The default `compile()` uses Adam with learning rate 1e-3 and this
    task's masked loss.

    Args:
        backbone: a `keras_t2t.models.Teacher2TaskBackbone`.
        mask_rate: float. The share of real positions masked in each input.
            Defaults to `0.15`.
        max_predictions: int. If set, only this many masked positions per
            input (the first ones) are predicted and scored, which saves
            most of the cost of a large vocabulary's head; set it above
            `mask_rate` times the sequence length (e.g. twice that) so few
            masked positions go unscored. Defaults to `None` (every
            position is predicted, masked ones scored).
        seed: int. Seeds which positions are masked. Defaults to `None`.
        preprocessor: `None`, or a preprocessor turning raw inputs into
            the backbone's (e.g. `keras_t2t.models.Teacher2TaskPreprocessor`).
            Defaults to `None`.

    Call arguments (the backbone's, without `teacher_id`):
        token_ids or features, and padding_mask.

    Returns:
        A dict: `"prediction"`, token logits `(batch, seq, vocabulary)` or
        reconstructed features `(batch, seq, feature_dim)`, and `"mask"`,
        `(batch, seq)`, 1 where the input was hidden. With
        `max_predictions`, `seq` is `max_predictions` and `"positions"`
        `(batch, max_predictions)` says which input positions they are.

    Example:
    ```python
    backbone = keras_t2t.models.Teacher2TaskBackbone(
        num_teachers=3, vocabulary_size=100, num_layers=2, num_heads=2,
        hidden_dim=16, intermediate_dim=32, task_layout="packed",
    )
    pretrainer = keras_t2t.models.Teacher2TaskPretrainer(backbone, seed=0)
    pretrainer.fit(
        {"token_ids": token_ids, "padding_mask": padding_mask},
        batch_size=64,
        epochs=5,
    )
    classifier = keras_t2t.models.Teacher2TaskClassifier(
        backbone, teacher_vocabulary=vocabulary
    )
    ```
    """

    backbone_cls = Teacher2TaskBackbone

    @_arguments.suggests_keywords
    def __init__(
        self,
        backbone,
        mask_rate=0.15,
        max_predictions=None,
        seed=None,
        preprocessor=None,
        **kwargs,
    ):
        _arguments.integer(
            "max_predictions", max_predictions, 1, allow_none=True
        )
        _arguments.number("mask_rate", mask_rate, above=0.0, below=1.0)
        text = backbone.input_mode == "text"

        # === Layers ===
        self.backbone = backbone
        self.preprocessor = preprocessor
        self.input_masking = InputMasking(
            rate=mask_rate,
            seed=seed,
            dtype=backbone.dtype_policy,
            name="input_masking",
        )
        self.reconstruction = keras.layers.Dense(
            backbone.vocabulary_size if text else backbone.feature_dim,
            dtype=backbone.dtype_policy,
            name="token_logits" if text else "feature_reconstruction",
        )

        # === Functional Model ===
        padding_mask_input = keras.Input(
            shape=(None,), dtype="int32", name="padding_mask"
        )
        if text:
            sequence_input = keras.Input(
                shape=(None,), dtype="int32", name="token_ids"
            )
            x = backbone.token_embedding(sequence_input)
        else:
            sequence_input = keras.Input(
                shape=(None, backbone.feature_dim), name="features"
            )
            x = backbone.feature_projection(sequence_input)
        x, mask = self.input_masking(x, padding_mask_input)
        if backbone.position_embedding is not None:
            x = x + backbone.position_embedding(x)
        x = backbone.encode(x, padding_mask_input[:, None, :])
        outputs = {}
        if max_predictions is not None:
            x, mask, outputs["positions"] = _MaskedPositions(
                max_predictions, dtype=backbone.dtype_policy
            )(x, mask)
        outputs.update({"prediction": self.reconstruction(x), "mask": mask})
        inputs = {
            sequence_input.name: sequence_input,
            "padding_mask": padding_mask_input,
        }
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

        # === Config ===
        self.mask_rate = mask_rate
        self.max_predictions = max_predictions
        self.seed = seed

    def compile(self, optimizer="auto", **kwargs):
        """Configures pretraining; the masked loss is built in.

        Args:
            optimizer: `"auto"`, an optimizer name or instance. `"auto"` is
                Adam with learning rate 1e-3.
            **kwargs: passed to `keras.Model.compile` (not `loss`: the
                task's own masked loss is used).
        """
        if "loss" in kwargs:
            raise ValueError(
                "`Teacher2TaskPretrainer` computes its own masked loss; do "
                f"not pass `loss`. Received: loss={kwargs['loss']!r}"
            )
        if optimizer == "auto":
            optimizer = keras.optimizers.Adam(1e-3)
        super().compile(optimizer=optimizer, **kwargs)

    def compile_from_config(self, config):
        config = keras.saving.deserialize_keras_object(config)
        config.pop("loss", None)
        self.compile(**config)
        if self.built and self.optimizer is not None:
            self.optimizer.build(self.trainable_variables)

    def compute_loss(
        self, x=None, y=None, y_pred=None, sample_weight=None, training=True
    ):
        target = x[self.backbone.sequence_input_name]
        if "positions" in y_pred:
            positions = y_pred["positions"]
            if target.ndim == 3:
                positions = positions[..., None]
            target = ops.take_along_axis(target, positions, axis=1)
        prediction = ops.cast(y_pred["prediction"], "float32")
        mask = ops.cast(y_pred["mask"], "float32")
        if self.backbone.input_mode == "text":
            per_position = keras.losses.sparse_categorical_crossentropy(
                target, prediction, from_logits=True
            )
        else:
            target = ops.cast(target, "float32")
            per_position = ops.mean(ops.square(prediction - target), axis=-1)
        loss = ops.sum(per_position * mask) / ops.maximum(ops.sum(mask), 1.0)
        losses = self.losses
        if losses:
            loss = loss + ops.sum([ops.cast(v, "float32") for v in losses])
        return loss

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "mask_rate": self.mask_rate,
                "max_predictions": self.max_predictions,
                "seed": self.seed,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="keras_t2t")
class _MaskedPositions(keras.layers.Layer):
    """Gathers up to `k` masked positions (first ones first) of a sequence.

    Only masked positions are scored, so the pretrainer's head, whose
    vocabulary-wide projection is most of the cost, runs on these alone.
    Returns the gathered sequence `(batch, k, hidden)`, their mask
    `(batch, k)` (0 where a row had fewer masked positions) and positions.
    """

    def __init__(self, k, **kwargs):
        super().__init__(**kwargs)
        self.k = int(k)

    def call(self, sequence, mask):
        length = ops.shape(mask)[1]
        first = ops.arange(length, dtype="float32") / ops.cast(
            length, "float32"
        )
        order = ops.cast(mask, "float32") * 2.0 - first
        _, positions = ops.top_k(order, k=self.k)
        sequence = ops.take_along_axis(sequence, positions[..., None], axis=1)
        return sequence, ops.take_along_axis(mask, positions, axis=1), positions

    def compute_output_spec(self, sequence, mask):
        batch = sequence.shape[0]
        return (
            keras.KerasTensor(
                (batch, self.k, sequence.shape[-1]), dtype=self.compute_dtype
            ),
            keras.KerasTensor((batch, self.k), dtype="int32"),
            keras.KerasTensor((batch, self.k), dtype="int32"),
        )

    def get_config(self):
        return {**super().get_config(), "k": self.k}
