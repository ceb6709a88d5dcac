import keras
import numpy as np
from keras import ops

from keras_t2t import _arguments
from keras_t2t.metrics.pr_auc import PRAUC


class BestOnValidation(keras.callbacks.Callback):
    """Keeps the weights, and the reading of the ground truth, that score
    best on labelled validation rows.

    At each epoch end the model is scored on `validation_data`. With
    `labelled_data` (the labelled training rows) a `Teacher2TaskClassifier`
    first refits its task combination on them
    (`Teacher2TaskClassifier.fit_combination`, which keeps the combination
    only where it beats task 0 on the validation rows), and the better of
    task 0 and the combination scores the epoch. Without it, the model's
    `predict` is scored by `metric`. The best epoch's weights and
    combination are kept, and put back into the model when training ends
    (`restore_best=True`), so that `fit` leaves the best checkpoint behind
    as Keras's `EarlyStopping(restore_best_weights=True)` does.

    Each epoch's value is added to the logs as `val_pr_auc`, so `History`
    records it and later callbacks (`EarlyStopping(monitor="val_pr_auc",
    mode="max")`) can read it. The callback holds arrays, not settings, so
    it has no `get_config`; build it again where it is needed.

    Args:
        validation_data: tuple `(x_val, y_val)`. Inputs (dict of arrays, no
            `teacher_id`) and ground-truth labels `(rows, num_labels)`,
            NaN where unknown; they need at least one positive.
        labelled_data: tuple `(x, y)` or `None`. Labelled training rows to
            fit the task combination on at each evaluation. Defaults to
            `None` (no combination: the model's `predict` is scored).
        metric: callable `(labels, scores) -> float` or `None`. Scores
            `predict` when there is no `labelled_data`. Defaults to
            `None`, macro PR-AUC (`keras_t2t.metrics.PRAUC`, as
            `fit_combination` measures).
        restore_best: bool. Set the best weights and combination at the
            end of training. Defaults to `True`.
        prefix: str. Printed before each epoch's line, e.g. the run's
            name. Defaults to `""`.
        verbose: int. 1 prints one line per evaluation, 0 nothing.
            Defaults to 1.

    Example:
    ```python
    best = keras_t2t.callbacks.BestOnValidation(
        validation_data=(x_val, y_val), labelled_data=(x_labelled, y_labelled)
    )
    classifier.fit(stream, steps_per_epoch=100, epochs=9, callbacks=[best])
    best.best_value, best.best_step  # The classifier now holds that step's.
    ```
    """

    @_arguments.suggests_keywords
    def __init__(
        self,
        validation_data,
        labelled_data=None,
        metric=None,
        restore_best=True,
        prefix="",
        verbose=1,
    ):
        super().__init__()
        if not isinstance(validation_data, (tuple, list)) or (
            len(validation_data) != 2
        ):
            raise ValueError(
                "`validation_data` must be a tuple (x_val, y_val). "
                f"Received: {type(validation_data).__name__}"
            )
        if labelled_data is not None and (
            not isinstance(labelled_data, (tuple, list))
            or len(labelled_data) != 2
        ):
            raise ValueError(
                "`labelled_data` must be a tuple (x, y) or None. Received: "
                f"{type(labelled_data).__name__}"
            )
        self.validation_data = tuple(validation_data)
        self.labelled_data = labelled_data
        self.metric = metric
        self.restore_best = _arguments.boolean("restore_best", restore_best)
        self.prefix = prefix
        self.verbose = _arguments.integer("verbose", verbose, 0, 2)
        self.best_value = -1.0
        self.best_step = 0
        self.best_weights = None
        self.best_combination = None
        self.history = []
        self._batches = 0

    def on_train_batch_end(self, batch, logs=None):
        self._batches += 1

    def on_epoch_end(self, epoch, logs=None):
        # A global step: `epoch` counts from `initial_epoch` after a resume.
        steps = (self.params or {}).get("steps")
        step = (epoch + 1) * steps if steps else self._batches
        x_val, y_val = self.validation_data
        record = {"step": step}
        if self.labelled_data is None:
            scores = self.model.predict(x_val, batch_size=512, verbose=0)
            metric = self.metric or _macro_pr_auc
            record["value"] = float(metric(y_val, scores))
            note = ""
        else:
            report = self.model.fit_combination(
                *self.labelled_data, validation_data=(x_val, y_val)
            )
            record["task_0"] = report["task_0"]
            record["combined"] = report["combined"]
            record["value"] = max(report["task_0"], report["combined"])
            note = (
                f" (task 0 {report['task_0']:.3f}, combined "
                f"{report['combined']:.3f})"
            )
        self.history.append(record)
        value = record["value"]
        if logs is not None:
            logs["val_pr_auc"] = value
        if self.verbose:
            print(
                f"{self.prefix}step {step}: validation PR-AUC {value:.3f}{note}"
            )
        if value > self.best_value:
            self.best_value, self.best_step = value, step
            self.best_weights = self.model.get_weights()
            self.best_combination = getattr(self.model, "combination", None)

    def on_train_end(self, logs=None):
        if self.restore_best and self.best_weights is not None:
            self.model.set_weights(self.best_weights)
            if hasattr(self.model, "combination"):
                self.model.combination = self.best_combination


def _macro_pr_auc(labels, scores):
    labels = np.asarray(labels, "float32")
    scores = np.asarray(scores, "float32")
    labels = labels.reshape(len(labels), -1)
    metric = PRAUC(num_labels=labels.shape[1])
    metric.update_state(labels, scores.reshape(labels.shape))
    return float(ops.convert_to_numpy(metric.result()))
