import functools

import keras
from keras import ops
from keras_hub.models import Task

from keras_t2t import _arguments
from keras_t2t.layers.teacher_transition import LABEL_KINDS
from keras_t2t.layers.teacher_transition import TeacherTransition
from keras_t2t.losses.masked_multi_task_loss import MaskedMultiTaskLoss
from keras_t2t.metrics.pr_auc import PRAUC
from keras_t2t.models import _device_padding
from keras_t2t.models import _input_checks
from keras_t2t.models import _preset_loading
from keras_t2t.models import _training
from keras_t2t.models import _transition_loss
from keras_t2t.models import model_file
from keras_t2t.models import task_combination
from keras_t2t.models.teacher2task_backbone import Teacher2TaskBackbone
from keras_t2t.models.teacher2task_preprocessor import Teacher2TaskPreprocessor


@keras.saving.register_keras_serializable(package="keras_t2t")
class Teacher2TaskClassifier(Task):
    """Teacher2Task classifier: one confidence per label, for any task id.

    A `Teacher2TaskBackbone` followed by a dense sigmoid head on the output
    at each task position. For task id `k > 0` the model predicts teacher
    k's confidence (an auxiliary task); for id 0 the ground truth (the
    primary task), which is what it is used for at inference.

    Inputs are a dict: the backbone's (`token_ids` or `features`, and
    `padding_mask`) and, by the backbone's `task_layout`, `task_ids`
    (int32, `(batch, slots)`, -1 for an empty slot; sparse, the default),
    nothing more (packed) or `teacher_id` (int32, `(batch,)`;
    per-example). Targets are `(batch, slots, num_labels)` (sparse: slot s
    for task `task_ids[:, s]`), `(batch, num_teachers + 1, num_labels)`
    (packed) or `(batch, num_labels)` (per-example), NaN where a value is
    missing: `keras_t2t.data.expand` makes them from a table. In `fit()`,
    `evaluate()` and `predict()`, the task defaults to 0 (the ground
    truth), a feature input's `padding_mask` to all ones, and inputs,
    targets and sample weights are checked with errors that name the
    example; calling the model directly does no checks. The default
    `compile()` uses Adam, `MaskedMultiTaskLoss` and `PRAUC`, whose
    metrics see only the ground-truth task (slot 0 of a sparse model, where
    `expand` puts it).

    Args:
        backbone: a `keras_t2t.models.Teacher2TaskBackbone`.
        num_labels: int. The number of labels (sigmoid outputs). Defaults
            to 1.
        teacher_vocabulary: `keras_t2t.TeacherVocabulary` or `None`. The
            teacher names, kept with the model for lookups and export;
            must have `backbone.num_teachers` teachers. Defaults to `None`.
        dropout: float. Dropout before the head. Defaults to `0.0`.
        combination: `keras_t2t.models.TaskCombination` or `None`. If set,
            `predict` (and the exported `serving_default`) read the ground
            truth from the teacher tasks through it; set by
            `fit_combination`. Defaults to `None`.
        preprocessor: `None`, a `keras_t2t.models.Teacher2TaskPreprocessor`
            (raw text in; any KerasHub `Preprocessor` takes and returns
            `(x, y, sample_weight)`), or a callable applied to `x`, inside
            the input pipeline. Defaults to `None`.
        teacher_transition: how every teacher label also trains the
            ground-truth output. `"independent"` or `"exclusive"` (one-hot
            class labels): a `keras_t2t.layers.TeacherTransition` of that
            kind maps the row's ground-truth confidences to each teacher's
            expected label, and its distance to the teacher's target joins
            the loss beside the teacher's own task (a sparse or packed
            model reads task 0 and the teacher tasks of a row in one
            pass). A `TeacherTransition` instance sets its options
            (`shrinkage`); `None` trains the teacher tasks only, as the
            paper does. Defaults to `"auto"`: `"independent"` for a sparse
            or packed backbone, `None` for a per-example one.
        transition_weight: float >= 0. The weight of the transition's loss
            against the task loss. Defaults to `1.0`.

    Example:
    ```python
    vocabulary = keras_t2t.TeacherVocabulary(["vader", "textblob"])
    backbone = keras_t2t.models.Teacher2TaskBackbone(
        num_teachers=vocabulary.num_teachers, feature_dim=8, num_layers=2,
        num_heads=2, hidden_dim=16, intermediate_dim=32,
    )
    classifier = keras_t2t.models.Teacher2TaskClassifier(
        backbone, num_labels=1, teacher_vocabulary=vocabulary
    )
    features = np.random.rand(4, 5, 8)
    # Row 0: the ground truth and teacher 1; rows 1-3: teachers only.
    x = {
        "task_ids": np.array([[0, 1], [0, 2], [0, 1], [0, -1]]),
        "features": features,
    }
    y = np.array(
        [[[1.0], [0.7]], [[np.nan], [0.9]], [[np.nan], [0.2]],
         [[0.0], [np.nan]]]
    )
    classifier.fit(x, y, epochs=2)
    classifier.predict({"features": np.random.rand(2, 5, 8)})
    ```
    """

    backbone_cls = Teacher2TaskBackbone
    preprocessor_cls = Teacher2TaskPreprocessor

    @_arguments.suggests_keywords
    def __init__(
        self,
        backbone,
        num_labels=1,
        teacher_vocabulary=None,
        dropout=0.0,
        combination=None,
        preprocessor=None,
        teacher_transition="auto",
        transition_weight=1.0,
        **kwargs,
    ):
        if teacher_vocabulary is not None and (
            teacher_vocabulary.num_teachers != backbone.num_teachers
        ):
            raise ValueError(
                f"The teacher vocabulary has {teacher_vocabulary.num_teachers}"
                f" teachers ({list(teacher_vocabulary.teachers)}) but the "
                f"backbone was built for num_teachers={backbone.num_teachers}."
            )
        num_labels = _arguments.integer("num_labels", num_labels, 1)
        _arguments.number("dropout", dropout, 0.0, below=1.0)
        _arguments.number("transition_weight", transition_weight, 0.0)
        teacher_transition = _transition(
            teacher_transition, backbone, num_labels
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
        outputs = backbone(inputs)
        x = outputs["task_output" if backbone.packed else "pooled_output"]
        x = self.output_dropout(x)
        outputs = self.output_dense(x)
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        # Not part of the functional graph (it joins the loss only), so it
        # is tracked after the graph's layers.
        self.teacher_transition = teacher_transition
        if teacher_transition is not None and not teacher_transition.built:
            teacher_transition.build()

        # === Config ===
        self.num_labels = num_labels
        self.teacher_vocabulary = teacher_vocabulary
        self.dropout = dropout
        self.combination = combination
        self.transition_weight = float(transition_weight)

    # Defined with their documentation in their own modules.
    from_preset = classmethod(_preset_loading.from_preset)
    fit_combination = task_combination.fit_combination

    def compile(
        self, optimizer="auto", loss="auto", *, metrics="auto", **kwargs
    ):
        """Configures the model for training, with Teacher2Task defaults.

        Args:
            optimizer: `"auto"` (Adam, learning rate 1e-3, for training from
                scratch; fine-tune a pretrained encoder at a smaller rate),
                an optimizer name or instance.
            loss: `"auto"` (`MaskedMultiTaskLoss()`, masked mean squared
                error) or a Keras loss.
            metrics: `"auto"` (`[PRAUC(num_labels)]`) or a list of metrics,
                computed on the ground-truth task only.
            **kwargs: passed to `keras.Model.compile`.
        """
        if optimizer == "auto":
            optimizer = keras.optimizers.Adam(1e-3)
        if loss == "auto":
            loss = MaskedMultiTaskLoss()
        if metrics == "auto":
            metrics = [PRAUC(num_labels=self.output_dense.units)]
        if self.backbone.sparse and getattr(loss, "normalize", None) == "tasks":
            raise ValueError(
                "normalize='tasks' weighs each task by its id, and a sparse "
                "model's targets come by slot (the tasks of each row): use "
                "normalize='entries' (the default), or "
                "task_layout='packed'."
            )
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
        epochs=1,
        sample_weight=None,
        shuffle=True,
        validation_split=None,
        validation_data=None,
        initial_epoch=0,
        steps_per_epoch=None,
        callbacks=None,
        **kwargs,
    ):
        """Trains the model; see `keras.Model.fit`.

        Inputs, targets and weights are checked first, with errors that
        name the example. In-memory arrays are shuffled each epoch and
        split for `validation_split` here. With a
        `keras_t2t.callbacks.BackupAndRestore` among the callbacks, an
        interrupted run resumes at the batch after its last backup (see
        that callback).
        """
        return _training.fit(
            self,
            super().fit,
            x,
            y,
            sample_weight,
            batch_size=batch_size,
            epochs=epochs,
            shuffle=shuffle,
            validation_split=validation_split,
            validation_data=validation_data,
            initial_epoch=initial_epoch,
            steps_per_epoch=steps_per_epoch,
            callbacks=callbacks,
            **kwargs,
        )

    def evaluate(
        self, x=None, y=None, batch_size=None, sample_weight=None, **kwargs
    ):
        """Evaluates the model; see `keras.Model.evaluate`.

        Inputs, targets and weights are checked first, as in `fit`.
        """
        return _training.evaluate(
            self,
            super().evaluate,
            x,
            y,
            sample_weight,
            batch_size=batch_size,
            **kwargs,
        )

    def predict(self, x=None, batch_size=None, all_tasks=False, **kwargs):
        """Confidences of the ground-truth task, or of the tasks asked for.

        See `keras.Model.predict`. Returns `(batch, num_labels)` for the
        ground truth; with `all_tasks=True` every task's confidences,
        `(batch, num_teachers + 1, num_labels)` (task k is teacher k's
        style as the model learned it); with `all_tasks=[k1, k2, ...]`
        those tasks', `(batch, len(all_tasks), num_labels)`. The ground
        truth is task 0, or the `combination` of the teacher tasks once
        `fit_combination` kept one. A sparse model reads the tasks asked
        for (at most 64 per pass); a packed model reads all tasks in one
        pass; a per-example model runs once per task. A sparse model given
        its own `task_ids` returns every slot, `(batch, slots,
        num_labels)`. No rows (inputs of length 0, or a dataset of known
        size 0) give an empty result without running the model.
        """
        return _training.predict(
            self, super().predict, x, batch_size, all_tasks, **kwargs
        )

    def predict_step(self, *args):
        # Padded `predict` batches carry their real-row mask as the target;
        # any other target (a labelled dataset) is not `predict`'s business.
        *state, data = args
        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        outputs = super().predict_step(*state, x)
        return _device_padding.with_real_rows(outputs, y)

    def compute_loss(
        self, x=None, y=None, y_pred=None, sample_weight=None, training=True
    ):
        loss = super().compute_loss(x, y, y_pred, sample_weight, training)
        if self.teacher_transition is None or y is None:
            return loss
        transition_loss = _transition_loss.transition_loss(
            self, x, y, y_pred, sample_weight
        )
        return loss + self.transition_weight * transition_loss

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        # The metrics measure the primary task: examples of the auxiliary
        # (teacher) tasks get weight 0, or, packed, task 0 is read out.
        if self.backbone.packed:
            return super().compute_metrics(
                x, y[:, 0], y_pred[:, 0], sample_weight=sample_weight
            )
        weight = ops.cast(
            ops.equal(ops.reshape(x["teacher_id"], (-1,)), 0), y_pred.dtype
        )
        if sample_weight is not None:
            weight *= ops.reshape(ops.cast(sample_weight, weight.dtype), (-1,))
        return super().compute_metrics(x, y, y_pred, sample_weight=weight)

    def preprocess_samples(self, x, y=None, sample_weight=None):
        if self.preprocessor is not None:
            # KerasHub's contract: a `Preprocessor` takes and returns
            # `(x, y, sample_weight)`, any other callable maps `x`.
            x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(
                super().preprocess_samples(x, y, sample_weight)
            )
        x, y, sample_weight = _input_checks.check_batch(
            self, x, y, sample_weight
        )
        if y is not None:
            # Training and evaluation batches split evenly across devices.
            x, y, sample_weight = _device_padding.pad_for_devices(
                self, x, y, sample_weight
            )
        return keras.utils.pack_x_y_sample_weight(x, y, sample_weight)

    def save(self, filepath, overwrite=True, zipped=None, **kwargs):
        """Saves the model; see `keras.Model.save`.

        A `.keras` file is written beside `filepath` and renamed into
        place, so a process killed while saving leaves the previous file
        whole (`keras_t2t.models.model_file.save_atomically`).
        """
        save = functools.partial(super().save, **kwargs)
        return model_file.save_atomically(save, filepath, overwrite, zipped)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_labels": self.num_labels,
                "dropout": self.dropout,
                "transition_weight": self.transition_weight,
            }
        )
        for name in ("teacher_vocabulary", "combination", "teacher_transition"):
            value = getattr(self, name)
            config[name] = keras.saving.serialize_keras_object(value)
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        # Files saved before the transition existed trained without one.
        config.setdefault("teacher_transition", None)
        for name in ("teacher_vocabulary", "combination", "teacher_transition"):
            if isinstance(config.get(name), dict):
                config[name] = keras.saving.deserialize_keras_object(
                    config[name]
                )
        return super().from_config(config)


def _transition(teacher_transition, backbone, num_labels):
    """The classifier's `TeacherTransition`, or `None`, from its argument."""
    if teacher_transition == "auto":
        teacher_transition = None if not backbone.packed else LABEL_KINDS[0]
    if teacher_transition is None:
        return None
    if isinstance(teacher_transition, str):
        _arguments.choice(
            "teacher_transition", teacher_transition, (*LABEL_KINDS, "auto")
        )
        teacher_transition = TeacherTransition(
            backbone.num_teachers,
            num_labels,
            labels=teacher_transition,
            dtype=backbone.dtype_policy,
            name="teacher_transition",
        )
    if not isinstance(teacher_transition, TeacherTransition):
        raise ValueError(
            "`teacher_transition` must be 'auto', 'independent', "
            "'exclusive', None or a `keras_t2t.layers.TeacherTransition`. "
            f"Received: teacher_transition={teacher_transition!r}"
        )
    _arguments.require(
        backbone.packed,
        "A teacher transition reads a row's ground-truth task and its "
        "teacher tasks in one pass, which a per-example backbone does not "
        "have: pass teacher_transition=None, or use task_layout='sparse'.",
    )
    sizes = (teacher_transition.num_teachers, teacher_transition.num_labels)
    _arguments.require(
        sizes == (backbone.num_teachers, num_labels),
        f"The teacher transition is for num_teachers={sizes[0]} and "
        f"num_labels={sizes[1]}; the classifier has num_teachers="
        f"{backbone.num_teachers} (its backbone's) and num_labels="
        f"{num_labels}.",
    )
    return teacher_transition
