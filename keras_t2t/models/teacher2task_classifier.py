import keras
import numpy as np
import tensorflow as tf
from keras import ops
from keras_hub.models import Task

from keras_t2t.losses.masked_multi_task_loss import MaskedMultiTaskLoss
from keras_t2t.metrics.pr_auc import PRAUC
from keras_t2t.models.teacher2task_backbone import Teacher2TaskBackbone


@keras.saving.register_keras_serializable(package="keras_t2t")
class Teacher2TaskClassifier(Task):
    """Teacher2Task classifier: one confidence per label, for any task id.

    A `Teacher2TaskBackbone` followed by a dense sigmoid head on the output
    at the teacher position. For an example with teacher id `k > 0` the
    model predicts teacher k's confidence (an auxiliary task); with id 0 it
    predicts the ground truth (the primary task), which is what it is used
    for at inference.

    Inputs are a dict: `teacher_id` (int32, `(batch,)`) plus the backbone's
    inputs (`token_ids` and `padding_mask`, or `features` and
    `padding_mask`). In `fit()`, `evaluate()` and `predict()`,
    `teacher_id` defaults to 0 (the ground truth) and a missing
    `padding_mask` of feature input to all ones; ids, feature sizes and
    target shapes are checked with errors that name what is wrong.
    Calling the model directly does no such checks.

    Targets are `(batch, num_labels)`, NaN where a value is missing. The
    default `compile()` uses Adam, `MaskedMultiTaskLoss` and `PRAUC`.
    Compiled metrics see only the ground-truth examples (teacher id 0).

    Args:
        backbone: a `keras_t2t.models.Teacher2TaskBackbone`.
        num_labels: int. The number of labels (sigmoid outputs). Defaults
            to 1.
        teacher_vocabulary: `keras_t2t.TeacherVocabulary` or `None`. The
            teacher names, kept with the model for lookups and export;
            must have `backbone.num_teachers` teachers. Defaults to `None`.
        dropout: float. Dropout before the head. Defaults to `0.0`.
        preprocessor: `None` or a callable applied to `x` inside the input
            pipeline. Defaults to `None`.

    Example:
    ```python
    vocabulary = keras_t2t.TeacherVocabulary(["vader", "textblob"])
    backbone = keras_t2t.models.Teacher2TaskBackbone(
        num_teachers=vocabulary.num_teachers,
        feature_dim=8,
        num_layers=2,
        num_heads=2,
        hidden_dim=16,
        intermediate_dim=32,
    )
    classifier = keras_t2t.models.Teacher2TaskClassifier(
        backbone, num_labels=1, teacher_vocabulary=vocabulary
    )
    x = {
        "teacher_id": np.array([0, 1, 2, 1]),
        "features": np.random.rand(4, 5, 8),
    }
    y = np.array([[1.0], [0.7], [0.9], [np.nan]])
    classifier.fit(x, y, epochs=2)
    classifier.predict({"features": np.random.rand(2, 5, 8)})
    ```
    """

    backbone_cls = Teacher2TaskBackbone

    def __init__(
        self,
        backbone,
        num_labels=1,
        teacher_vocabulary=None,
        dropout=0.0,
        preprocessor=None,
        **kwargs,
    ):
        if isinstance(teacher_vocabulary, dict):
            teacher_vocabulary = keras.saving.deserialize_keras_object(
                teacher_vocabulary
            )
        if teacher_vocabulary is not None and (
            teacher_vocabulary.num_teachers != backbone.num_teachers
        ):
            raise ValueError(
                f"The teacher vocabulary has {teacher_vocabulary.num_teachers}"
                f" teachers ({list(teacher_vocabulary.teachers)}) but the "
                f"backbone was built for num_teachers={backbone.num_teachers}."
            )
        if int(num_labels) < 1:
            raise ValueError(
                f"`num_labels` must be >= 1. Received: {num_labels}"
            )

        # === Layers ===
        self.backbone = backbone
        self.preprocessor = preprocessor
        self.output_dropout = keras.layers.Dropout(
            dropout, dtype=backbone.dtype_policy, name="output_dropout"
        )
        self.output_dense = keras.layers.Dense(
            num_labels,
            activation="sigmoid",
            dtype=backbone.dtype_policy,
            name="confidences",
        )

        # === Functional Model ===
        inputs = backbone.input
        x = backbone(inputs)["pooled_output"]
        x = self.output_dropout(x)
        outputs = self.output_dense(x)
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

        # === Config ===
        self.num_labels = num_labels
        self.teacher_vocabulary = teacher_vocabulary
        self.dropout = dropout

    def compile(
        self,
        optimizer="auto",
        loss="auto",
        *,
        metrics="auto",
        **kwargs,
    ):
        """Configures the model for training, with Teacher2Task defaults.

        Args:
            optimizer: `"auto"`, an optimizer name or instance. `"auto"` is
                Adam with learning rate 1e-3, suited to training from
                scratch; use a smaller rate to fine-tune a pretrained
                encoder.
            loss: `"auto"` or a Keras loss. `"auto"` is
                `MaskedMultiTaskLoss()` (masked mean squared error).
            metrics: `"auto"` or a list of metrics, computed on the
                ground-truth task only. `"auto"` is
                `[PRAUC(num_labels)]`.
            **kwargs: passed to `keras.Model.compile`.
        """
        if optimizer == "auto":
            optimizer = keras.optimizers.Adam(1e-3)
        if loss == "auto":
            loss = MaskedMultiTaskLoss()
        if metrics == "auto":
            metrics = [PRAUC(num_labels=self.output_dense.units)]
        # Keras passes sample weights only to `weighted_metrics`, and the
        # weights are how `compute_metrics` hides the teachers' tasks, so
        # every metric is compiled as a weighted one.
        weighted_metrics = list(kwargs.pop("weighted_metrics", None) or [])
        weighted_metrics = list(metrics or []) + weighted_metrics
        super().compile(
            optimizer=optimizer,
            loss=loss,
            weighted_metrics=weighted_metrics or None,
            **kwargs,
        )

    def compile_from_config(self, config):
        # Keras skips restoring the compile state of models with a custom
        # `compile()`; ours takes the same arguments, so restore it.
        config = keras.saving.deserialize_keras_object(config)
        self.compile(**config)
        if self.built and self.optimizer is not None:
            self.optimizer.build(self.trainable_variables)

    def fit(
        self,
        x=None,
        y=None,
        batch_size=None,
        sample_weight=None,
        shuffle=True,
        validation_split=None,
        validation_data=None,
        **kwargs,
    ):
        x, y = self._check_arrays(x, y)
        if _in_memory(x):
            # KerasHub's pipeline turns arrays into a dataset without
            # shuffling them; Teacher2Task examples arrive grouped by row
            # and task, so shuffle here as Keras does for arrays.
            data = keras.utils.pack_x_y_sample_weight(x, y, sample_weight)
            if validation_split and validation_data is None:
                data, validation_data = _split(data, validation_split)
            x = tf.data.Dataset.from_tensor_slices(data)
            if shuffle:
                x = x.shuffle(len(_first(data)), reshuffle_each_iteration=True)
            x = x.batch(batch_size or 32)
            y = sample_weight = batch_size = validation_split = None
        return super().fit(
            x,
            y,
            batch_size=batch_size,
            sample_weight=sample_weight,
            shuffle=False,  # Datasets come shuffled (or not) by their maker.
            validation_split=validation_split,
            validation_data=validation_data,
            **kwargs,
        )

    def evaluate(self, x=None, y=None, *args, **kwargs):
        x, y = self._check_arrays(x, y)
        return super().evaluate(x, y, *args, **kwargs)

    def predict(self, x=None, *args, **kwargs):
        x, _ = self._check_arrays(x)
        return super().predict(x, *args, **kwargs)

    def _check_arrays(self, x, y=None):
        # In-memory inputs are checked here, before batching, so that a bad
        # value is reported as a `ValueError` naming its example; datasets
        # are checked batch by batch inside the input pipeline.
        if (
            self.preprocessor is None
            and isinstance(x, dict)
            and not any(isinstance(value, tf.Tensor) for value in x.values())
        ):
            x = {name: np.asarray(value) for name, value in x.items()}
            x = self._complete_and_check_inputs(x)
            if y is not None and not isinstance(y, tf.Tensor):
                y = self._check_targets(np.asarray(y))
        return x, y

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        # The metrics measure the primary task: examples of the auxiliary
        # (teacher) tasks get weight 0.
        weight = ops.cast(
            ops.equal(ops.reshape(x["teacher_id"], (-1,)), 0), y_pred.dtype
        )
        if sample_weight is not None:
            sample_weight = ops.cast(sample_weight, y_pred.dtype)
            weight = weight * ops.reshape(sample_weight, (-1,))
        return super().compute_metrics(x, y, y_pred, sample_weight=weight)

    def preprocess_samples(self, x, y=None, sample_weight=None):
        if self.preprocessor is not None:
            x = self.preprocessor(x)
        x = self._complete_and_check_inputs(x)
        if y is not None:
            y = self._check_targets(y)
        return keras.utils.pack_x_y_sample_weight(x, y, sample_weight)

    def _complete_and_check_inputs(self, x):
        backbone = self.backbone
        sequence_name = backbone.sequence_input_name
        if not isinstance(x, dict):
            raise ValueError(
                "Teacher2TaskClassifier takes a dict of inputs with keys "
                f"'teacher_id' (optional), '{sequence_name}' and "
                f"'padding_mask'. Received: {type(x).__name__}"
            )
        expected = {"teacher_id", sequence_name, "padding_mask"}
        unexpected = sorted(set(x) - expected)
        if unexpected:
            raise ValueError(
                f"Unexpected input(s) {unexpected}: this "
                f"{backbone.input_mode} model takes {sorted(expected)}."
            )
        if sequence_name not in x:
            raise ValueError(
                f"Missing input '{sequence_name}': this {backbone.input_mode}"
                f" model takes {sorted(expected)}. Received keys: {sorted(x)}"
            )
        x = dict(x)
        backend = tf if isinstance(x[sequence_name], tf.Tensor) else np
        sequence = x[sequence_name]
        if backbone.input_mode == "features":
            shape = tuple(sequence.shape)
            if len(shape) != 3 or shape[-1] not in (None, backbone.feature_dim):
                raise ValueError(
                    f"Input 'features' must have shape (batch, seq, "
                    f"{backbone.feature_dim}) for this model "
                    f"(feature_dim={backbone.feature_dim}). Received shape "
                    f"{shape}."
                )
        elif len(sequence.shape) != 2:
            raise ValueError(
                "Input 'token_ids' must have shape (batch, seq). Received "
                f"shape {tuple(sequence.shape)}."
            )
        if "padding_mask" not in x:
            if backbone.input_mode == "text":
                raise ValueError(
                    "Missing input 'padding_mask' (1 for real tokens, 0 for "
                    "padding), needed with 'token_ids'."
                )
            x["padding_mask"] = backend.ones(
                backend.shape(sequence)[:2], dtype="int32"
            )
        if "teacher_id" not in x:
            # Inference asks for the primary task: the ground truth, id 0.
            x["teacher_id"] = backend.zeros(
                backend.shape(sequence)[:1], dtype="int32"
            )
        x["teacher_id"] = _check_teacher_ids(
            x["teacher_id"], backbone.num_teachers, backend
        )
        return x

    def _check_targets(self, y):
        shape = tuple(y.shape)
        if len(shape) == 1 and self.num_labels == 1:
            return y[:, None]
        if len(shape) != 2 or shape[-1] not in (None, self.num_labels):
            raise ValueError(
                f"Targets must have shape (batch, {self.num_labels}) for a "
                f"model with num_labels={self.num_labels}, NaN where a value "
                f"is missing. Received shape {shape}."
            )
        return y

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_labels": self.num_labels,
                "teacher_vocabulary": (
                    None
                    if self.teacher_vocabulary is None
                    else keras.saving.serialize_keras_object(
                        self.teacher_vocabulary
                    )
                ),
                "dropout": self.dropout,
            }
        )
        return config


def _check_teacher_ids(teacher_id, num_teachers, backend):
    message = (
        f"'teacher_id' must be in [0, {num_teachers}]: 0 is the ground truth "
        f"and 1..{num_teachers} the model's {num_teachers} teachers."
    )
    if backend is np:
        teacher_id = np.asarray(teacher_id)
        if not np.issubdtype(teacher_id.dtype, np.integer):
            raise ValueError(f"{message} Received dtype {teacher_id.dtype}.")
        bad = (teacher_id < 0) | (teacher_id > num_teachers)
        if bad.any():
            index = int(np.flatnonzero(bad.reshape(-1))[0])
            raise ValueError(
                f"{message} Received teacher_id={teacher_id.reshape(-1)[index]}"
                f" at example {index}."
            )
        return teacher_id.astype("int32")
    if not teacher_id.dtype.is_integer:
        raise ValueError(f"{message} Received dtype {teacher_id.dtype.name}.")
    teacher_id = tf.cast(teacher_id, "int32")
    checks = [
        tf.debugging.assert_non_negative(teacher_id, message=message),
        tf.debugging.assert_less_equal(
            teacher_id, num_teachers, message=message
        ),
    ]
    with tf.control_dependencies(checks):
        return tf.identity(teacher_id)


def _in_memory(x):
    return isinstance(x, dict) and all(
        isinstance(value, np.ndarray) for value in x.values()
    )


def _first(data):
    return next(iter(keras.tree.flatten(data)))


def _split(data, validation_split):
    """Splits arrays as Keras does: the last `validation_split` is held out."""
    size = len(_first(data))
    cut = int(size * (1.0 - validation_split))
    if not 0 < cut < size:
        raise ValueError(
            f"{size} examples cannot be split with validation_split="
            f"{validation_split}."
        )
    train = keras.tree.map_structure(lambda a: a[:cut], data)
    held_out = keras.tree.map_structure(lambda a: a[cut:], data)
    return train, held_out
