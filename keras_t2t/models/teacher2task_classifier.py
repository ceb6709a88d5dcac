import keras
import numpy as np
import tensorflow as tf
from keras import ops
from keras_hub.models import Task
from keras_hub.src.utils.preset_utils import TOKENIZER_CONFIG_FILE
from keras_hub.src.utils.preset_utils import check_file_exists
from keras_hub.src.utils.preset_utils import get_preset_loader

from keras_t2t.callbacks.backup_and_restore import BackupAndRestore
from keras_t2t.losses.masked_multi_task_loss import MaskedMultiTaskLoss
from keras_t2t.metrics.pr_auc import PRAUC
from keras_t2t.models import device_padding
from keras_t2t.models import input_checks
from keras_t2t.models.task_combination import TaskCombination
from keras_t2t.models.teacher2task_backbone import Teacher2TaskBackbone
from keras_t2t.models.teacher2task_preprocessor import Teacher2TaskPreprocessor


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
    `padding_mask` of feature input to all ones; teacher and token ids,
    feature values and sizes, targets (NaN or in `[0, 1]`) and sample
    weights (finite, >= 0) are checked with errors that name the example
    (`keras_t2t.models.input_checks`). Calling the model directly does no
    such checks.

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
        combination: `keras_t2t.models.TaskCombination` or `None`. If set,
            `predict` (and the exported `serving_default`) read the ground
            truth from the teacher tasks through it; set by
            `fit_combination`. Defaults to `None`.
        preprocessor: `None`, a `keras_t2t.models.Teacher2TaskPreprocessor`
            (raw text in; any KerasHub `Preprocessor` takes and returns
            `(x, y, sample_weight)`), or a callable applied to `x`, inside
            the input pipeline. Defaults to `None`.

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
    preprocessor_cls = Teacher2TaskPreprocessor

    def __init__(
        self,
        backbone,
        num_labels=1,
        teacher_vocabulary=None,
        dropout=0.0,
        combination=None,
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
        outputs = backbone(inputs)
        x = outputs["task_output" if backbone.packed else "pooled_output"]
        x = self.output_dropout(x)
        outputs = self.output_dense(x)
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

        # === Config ===
        self.num_labels = num_labels
        self.teacher_vocabulary = teacher_vocabulary
        self.dropout = dropout
        self.combination = combination

    @classmethod
    def from_preset(
        cls,
        preset,
        num_teachers=None,
        teacher_vocabulary=None,
        load_weights=True,
        sequence_length=None,
        num_labels=1,
        dropout=0.0,
        **kwargs,
    ):
        """Builds a classifier from a KerasHub preset directory or handle.

        A preset saved from a Teacher2Task classifier (`save_to_preset`)
        loads as it was saved. A T5 preset gives a new classifier: a
        `Teacher2TaskBackbone` on its encoder (weights unchanged, new task
        embeddings and head) and, where the preset has a tokenizer, a
        `Teacher2TaskPreprocessor` on it, so the classifier takes raw text.

        Args:
            preset: str. The preset directory or handle.
            num_teachers: int. The number of teachers, for a T5 preset;
                defaults to that of `teacher_vocabulary`.
            teacher_vocabulary: `keras_t2t.TeacherVocabulary` or `None`.
            load_weights: bool. Whether to load the preset's weights.
                Defaults to `True`.
            sequence_length: int or `None`. The preprocessor's packed
                length. Defaults to the preprocessor's default.
            num_labels: int. Defaults to `1`.
            dropout: float. Dropout before the head. Defaults to `0.0`.
            **kwargs: backbone arguments (e.g. `task_layout="packed"`,
                `dropout` of the encoder is the backbone's own).

        Example:
        ```python
        classifier = keras_t2t.models.Teacher2TaskClassifier.from_preset(
            "./my_t5_preset",
            teacher_vocabulary=keras_t2t.TeacherVocabulary(["a", "b"]),
            task_layout="packed",
            sequence_length=64,
        )
        classifier.predict({"text": ["a fine film"]})
        ```
        """
        loader = get_preset_loader(preset)
        if issubclass(loader.check_backbone_class(), Teacher2TaskBackbone):
            return super().from_preset(preset, load_weights=load_weights)
        if num_teachers is None and teacher_vocabulary is not None:
            num_teachers = teacher_vocabulary.num_teachers
        backbone = Teacher2TaskBackbone.from_preset(
            preset,
            num_teachers=num_teachers,
            load_weights=load_weights,
            **kwargs,
        )
        preprocessor = None
        if backbone.input_mode == "text" and check_file_exists(
            preset, TOKENIZER_CONFIG_FILE
        ):
            options = {}
            if sequence_length is not None:
                options["sequence_length"] = sequence_length
            preprocessor = Teacher2TaskPreprocessor.from_preset(
                preset, **options
            )
        return cls(
            backbone,
            num_labels=num_labels,
            teacher_vocabulary=teacher_vocabulary,
            dropout=dropout,
            preprocessor=preprocessor,
        )

    def fit_combination(self, x, y, validation_data=None, l2="auto"):
        """Learns to read the ground truth from the teacher tasks.

        Fits a `keras_t2t.models.TaskCombination` on the model's teacher-
        task predictions for the labelled rows `x`, `y` (the ground-truth
        labels, NaN where unknown; the labelled training rows serve: the
        teacher tasks never trained on their labels). With
        `validation_data=(x_val, y_val)`, the pull towards the teachers'
        mean (`l2="auto"`) is chosen there, and the combination is kept
        only if its validation PR-AUC is at least the ground-truth task's;
        otherwise `predict` keeps reading task 0.

        Args:
            x: dict of input arrays (no `teacher_id`).
            y: float array `(rows, num_labels)`.
            validation_data: tuple `(x_val, y_val)` or `None`.
            l2: float or `"auto"`. The pull towards the teachers' mean (see
                `TaskCombination.fit`). `"auto"` picks one of
                `(1, 10, 100, 1000)` on the validation data, or 10 without.
                Defaults to `"auto"`.

        Returns:
            A dict: `combination` (the fitted one), `l2`, `kept` (bool)
            and, with validation data, the validation PR-AUC of `task_0`
            and of `combined`.
        """
        self.combination = None
        scores = self.predict(x, all_tasks=True, verbose=0)
        labels = self._labels(y)
        candidates = [l2]
        if l2 == "auto":
            candidates = [1.0, 10.0, 100.0, 1000.0]
            if validation_data is None:
                candidates = [10.0]
        report = {"kept": True}
        if validation_data is None:
            report["l2"] = candidates[0]
            report["combination"] = TaskCombination.fit(
                scores, labels, l2=candidates[0]
            )
        else:
            x_val, y_val = validation_data
            y_val = self._labels(y_val)
            val_scores = self.predict(x_val, all_tasks=True, verbose=0)
            report["task_0"] = _pr_auc(y_val, val_scores[:, 0])
            if np.isnan(report["task_0"]):
                raise ValueError(
                    "`validation_data` labels have no positive (every label "
                    "missing or 0), so PR-AUC cannot choose the combination. "
                    "Validate on labelled rows that include positives."
                )
            report["combined"] = -1.0
            for strength in candidates:
                combination = TaskCombination.fit(scores, labels, l2=strength)
                value = _pr_auc(
                    y_val, ops.convert_to_numpy(combination(val_scores))
                )
                if value > report["combined"]:
                    report.update(
                        combined=value, combination=combination, l2=strength
                    )
            report["kept"] = report["combined"] >= report["task_0"]
        if report["kept"]:
            self.combination = report["combination"]
        return report

    def _labels(self, y):
        """Ground-truth labels as `(rows, num_labels)`, checked."""
        y = np.asarray(y, "float32")
        if y.ndim == 1 and self.num_labels == 1:
            y = y[:, None]
        if y.ndim != 2 or y.shape[1] != self.num_labels:
            raise ValueError(
                f"Ground-truth labels must have shape (rows, "
                f"{self.num_labels}), NaN where unknown. Received shape "
                f"{y.shape}."
            )
        return y

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

        In-memory arrays are checked, shuffled each epoch and split for
        `validation_split` here. With a `keras_t2t.callbacks.BackupAndRestore`
        among the callbacks, an interrupted run resumes at the batch after
        its last backup (see that callback).
        """
        x, y, sample_weight = self._check_arrays(x, y, sample_weight)
        backup = next(
            (c for c in callbacks or () if isinstance(c, BackupAndRestore)),
            None,
        )
        if _in_memory(x):
            # KerasHub's pipeline turns arrays into a dataset without
            # shuffling them; Teacher2Task examples arrive grouped by row
            # and task, so shuffle here as Keras does for arrays.
            x = keras.utils.pack_x_y_sample_weight(x, y, sample_weight)
            if validation_split and validation_data is None:
                x, validation_data = _split(x, validation_split)
            if backup is None:
                size = len(_first(x))
                x = tf.data.Dataset.from_tensor_slices(x)
                if shuffle:
                    x = x.shuffle(size, reshuffle_each_iteration=True)
                x = x.batch(batch_size or 32)
                batch_size = None
            y = sample_weight = validation_split = None
        kwargs.update(
            sample_weight=sample_weight,
            validation_split=validation_split,
            validation_data=validation_data,
            callbacks=callbacks,
        )
        if backup is not None:
            if y is not None:
                raise ValueError(
                    "`BackupAndRestore` resumes training on arrays or on a "
                    "batched `tf.data.Dataset` of (x, y) batches; `y` goes "
                    f"inside the dataset. Received x: {type(x).__name__}"
                )
            # Arrays (a tuple of them) or a dataset, made resumable there.
            return backup.fit(
                self,
                super().fit,
                x,
                epochs=epochs,
                initial_epoch=initial_epoch,
                steps_per_epoch=steps_per_epoch,
                batch_size=batch_size,
                shuffle=shuffle,
                **kwargs,
            )
        return super().fit(
            x,
            y,
            batch_size=batch_size,
            epochs=epochs,
            shuffle=False,  # Datasets come shuffled (or not) by their maker.
            initial_epoch=initial_epoch,
            steps_per_epoch=steps_per_epoch,
            **kwargs,
        )

    def evaluate(self, x=None, y=None, *args, **kwargs):
        x, y, weight = self._check_arrays(x, y, kwargs.get("sample_weight"))
        if weight is not None:
            kwargs["sample_weight"] = weight
        return super().evaluate(x, y, *args, **kwargs)

    def predict(self, x=None, batch_size=None, all_tasks=False, **kwargs):
        """Confidences of the ground-truth task, or of every task.

        See `keras.Model.predict`. Returns `(batch, num_labels)` for the
        ground truth, or with `all_tasks=True` every task's confidences,
        `(batch, num_teachers + 1, num_labels)` (task k is teacher k's
        style as the model learned it). The ground truth is task 0, or the
        `combination` of the teacher tasks once `fit_combination` kept one.
        A packed model reads all tasks in one pass; a per-example model
        runs once per task. No rows (inputs of length 0, or a dataset of
        known size 0) give an empty result, `(0, num_labels)` (or
        `(0, num_teachers + 1, num_labels)`), without running the model.
        """
        if self.combination is not None and not all_tasks:
            outputs = self.predict(
                x, batch_size=batch_size, all_tasks=True, **kwargs
            )
            return ops.convert_to_numpy(self.combination(outputs))
        if self.backbone.packed:
            outputs = self._predict(x, batch_size=batch_size, **kwargs)
            return outputs if all_tasks else outputs[:, 0]
        if not all_tasks:
            return self._predict(x, batch_size=batch_size, **kwargs)
        if isinstance(x, dict):
            x = {name: np.asarray(value) for name, value in x.items()}
        if not _in_memory(x) or "teacher_id" in x:
            raise ValueError(
                "`predict(..., all_tasks=True)` on a per-example model takes "
                "a dict of arrays without 'teacher_id' (each task is run "
                "in turn). Received: "
                + (
                    "a 'teacher_id' input"
                    if isinstance(x, dict)
                    else type(x).__name__
                )
            )
        size = len(_first(x))
        return np.stack(
            [
                self._predict(
                    dict(x, teacher_id=np.full(size, task, "int32")),
                    batch_size=batch_size,
                    **kwargs,
                )
                for task in range(self.backbone.num_teachers + 1)
            ],
            axis=1,
        )

    def _predict(self, x=None, batch_size=None, **kwargs):
        x, _, _ = self._check_arrays(x)
        if _no_rows(x):
            # Keras's `predict` fails on no batches (and on JAX leaves the
            # model unable to predict again): no rows, no predictions.
            shape = (0, self.num_labels)
            if self.backbone.packed:
                shape = (0, self.backbone.num_teachers + 1, self.num_labels)
            return ops.convert_to_numpy(ops.zeros(shape, self.output.dtype))
        shards = self._batch_shards()
        if shards == 1:
            return super().predict(x, batch_size=batch_size, **kwargs)
        # On several devices, a short last batch is padded so that it
        # splits evenly; the padded rows are dropped from the result.
        if not isinstance(x, tf.data.Dataset):
            x = tf.data.Dataset.from_tensor_slices(x).batch(batch_size or 32)
        x = device_padding.pad_for_predict(x, self.preprocess_samples, shards)
        outputs, real = keras.Model.predict(
            self, x.prefetch(tf.data.AUTOTUNE), **kwargs
        )
        return keras.tree.map_structure(lambda out: out[real], outputs)

    def predict_step(self, *args):
        # Padded `predict` batches carry their real-row mask as the target;
        # any other target (a labelled dataset) is not `predict`'s business.
        *state, data = args
        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        outputs = super().predict_step(*state, x)
        return device_padding.with_real_rows(outputs, y)

    def _check_arrays(self, x, y=None, sample_weight=None):
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
            if sample_weight is not None:
                sample_weight = input_checks.check_sample_weight(sample_weight)
            input_checks.check_lengths(x, y, sample_weight)
        return x, y, sample_weight

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
            sample_weight = ops.cast(sample_weight, y_pred.dtype)
            weight = weight * ops.reshape(sample_weight, (-1,))
        return super().compute_metrics(x, y, y_pred, sample_weight=weight)

    def preprocess_samples(self, x, y=None, sample_weight=None):
        if self.preprocessor is not None:
            # KerasHub's contract: a `Preprocessor` takes and returns
            # `(x, y, sample_weight)`, any other callable maps `x`.
            x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(
                super().preprocess_samples(x, y, sample_weight)
            )
        x = self._complete_and_check_inputs(x)
        if sample_weight is not None:
            sample_weight = input_checks.check_sample_weight(sample_weight)
        if y is not None:
            y = self._check_targets(y)
            shards = self._batch_shards()
            if shards > 1:
                # Every device gets an equal share of each batch: a short
                # last batch is padded with examples that have no target
                # (NaN) and weight 0, which change neither loss nor metrics.
                x, y, sample_weight = device_padding.pad_batch(
                    x, y, sample_weight, shards
                )
        return keras.utils.pack_x_y_sample_weight(x, y, sample_weight)

    def _batch_shards(self):
        """The number of equal parts a batch is split into across devices."""
        return device_padding.batch_shards(self)

    def _complete_and_check_inputs(self, x):
        return input_checks.complete_and_check_inputs(self.backbone, x)

    def _check_targets(self, y):
        names = None
        if self.teacher_vocabulary is not None:
            names = self.teacher_vocabulary.names
        return input_checks.check_targets(
            y, self.num_labels, self.backbone, names
        )

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
                "combination": (
                    None
                    if self.combination is None
                    else keras.saving.serialize_keras_object(self.combination)
                ),
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config.get("combination"), dict):
            config["combination"] = keras.saving.deserialize_keras_object(
                config["combination"]
            )
        return super().from_config(config)


def _pr_auc(labels, scores):
    metric = PRAUC(num_labels=labels.shape[-1])
    metric.update_state(labels, scores)
    return float(ops.convert_to_numpy(metric.result()))


def _in_memory(x):
    return isinstance(x, dict) and all(
        isinstance(value, np.ndarray) for value in x.values()
    )


def _first(data):
    return next(iter(keras.tree.flatten(data)))


def _no_rows(x):
    """Whether `x` (inputs or a dataset) holds no examples at all."""
    if isinstance(x, tf.data.Dataset):
        return int(x.cardinality()) == 0
    if not isinstance(x, dict) or not x:
        return False
    value = next(iter(x.values()))
    shape = value.shape if hasattr(value, "shape") else np.shape(value)
    return len(shape) > 0 and shape[0] == 0


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
