import math

import keras
from keras import ops

from keras_t2t import _arguments

LABEL_KINDS = ("independent", "exclusive")
# A new teacher starts right 90% of the time (each label's yes and no
# alike, or the true class among exclusive ones).
_INITIAL_ACCURACY = 0.9


@keras.saving.register_keras_serializable(package="keras_t2t")
class TeacherTransition(keras.layers.Layer):
    """How each teacher labels, given the truth: a learned crowd layer.

    Maps the student's ground-truth confidences `p` (task 0) to what each
    teacher would say, through a transition per teacher learned end to end
    with the student (the crowd layer of Rodrigues & Pereira, "Deep
    Learning from Crowds", AAAI 2018; a Dawid-Skene confusion per
    teacher). Trained against the teachers' targets, it sends every
    teacher label into the ground-truth output, which a teacher's own task
    token reaches only through the shared encoder.
    `Teacher2TaskClassifier` adds it to the loss of a sparse or packed
    model (`teacher_transition=`); it plays no part in `predict`.

    Two kinds of labels (`labels`):
    - `"independent"`: each label is a yes/no of its own. Teacher k says
      yes with probability `s_k * p + f_k * (1 - p)`, its sensitivity
      `s_k` and false-positive rate `f_k` learned per label.
    - `"exclusive"`: the labels are classes, one true per input (one-hot
      targets, as crowd labels are). `p` is normalised over the classes
      and teacher k's answer is `p @ C_k`, `C_k` its learned
      `num_labels x num_labels` confusion (rows sum to 1), so a teacher
      who swaps two classes is modelled as such.

    Teachers share strength: each teacher's transition is a parent shared
    by all teachers plus a deviation of its own, and `shrinkage` puts an
    L2 penalty on the deviations, so a teacher with a few labels stays
    near the crowd's typical transition while one with many moves as far
    as its labels ask. Every transition starts at 90% right.

    Args:
        num_teachers: int. The number of teachers N; task ids are `[0, N]`
            (task 0, the ground truth, maps to itself).
        num_labels: int. The number of labels.
        labels: str. `"independent"` or `"exclusive"` (see above).
            Defaults to `"independent"`.
        shrinkage: float >= 0. The strength of the L2 penalty on each
            teacher's deviation from the shared transition. Defaults to
            `0.0`.

    Example:
    ```python
    transition = keras_t2t.layers.TeacherTransition(
        num_teachers=3, num_labels=1
    )
    p = np.array([[0.8], [0.1]])  # The ground truth's confidences.
    task_ids = np.array([[0, 2, 3], [0, 1, -1]])
    transition(p, task_ids).shape  # (2, 3, 1): each slot's teacher.
    ```
    """

    @_arguments.suggests_keywords
    def __init__(
        self,
        num_teachers,
        num_labels,
        labels="independent",
        shrinkage=0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_teachers = _arguments.integer("num_teachers", num_teachers, 1)
        self.num_labels = _arguments.integer("num_labels", num_labels, 1)
        self.labels = _arguments.choice("labels", labels, LABEL_KINDS)
        if labels == "exclusive":
            _arguments.require(
                num_labels >= 2,
                "labels='exclusive' needs classes to choose among: "
                f"`num_labels` must be >= 2. Received: num_labels="
                f"{num_labels}",
            )
        self.shrinkage = _arguments.number("shrinkage", shrinkage, 0.0)
        _arguments.require(
            math.isfinite(self.shrinkage),
            f"`shrinkage` must be finite. Received: shrinkage={shrinkage!r}",
        )

    def build(self, *args, **kwargs):
        n = self.num_labels
        odds = math.log(_INITIAL_ACCURACY / (1.0 - _INITIAL_ACCURACY))
        if self.labels == "independent":
            # Logits of (sensitivity, false-positive rate) per label.
            shape = (n, 2)
            start = [odds, -odds] * n
        else:
            # Row c: logits of what the teacher says when the truth is c.
            shape = (n, n)
            diagonal = odds + math.log(n - 1)
            start = [diagonal * (i == j) for i in range(n) for j in range(n)]
        self.parent = self.add_weight(
            name="parent", shape=shape, initializer="zeros"
        )
        self.parent.assign(ops.reshape(ops.convert_to_tensor(start), shape))
        self.deviations = self.add_weight(
            name="deviations",
            shape=(self.num_teachers + 1, *shape),
            initializer="zeros",
            regularizer=(
                keras.regularizers.L2(self.shrinkage)
                if self.shrinkage
                else None
            ),
        )

    def logits(self):
        """Every task's transition logits `(N + 1, ...)`: the parent plus
        each teacher's deviation (row 0, the ground truth, unused)."""
        return self.parent[None] + self.deviations

    def rates(self):
        """Each teacher's transition as probabilities, as NumPy.

        `"independent"`: `(N, num_labels, 2)`, the sensitivity and the
        false-positive rate of each label. `"exclusive"`: `(N, num_labels,
        num_labels)`, row c the chances of each answer when the truth is c.
        Teacher k is row `k - 1`.
        """
        return ops.convert_to_numpy(self._probabilities(self.logits()[1:]))

    def _probabilities(self, logits):
        if self.labels == "independent":
            return ops.sigmoid(logits)
        return ops.softmax(logits, axis=-1)

    def call(self, ground_truth, task_ids):
        """`ground_truth` `(batch, num_labels)` confidences and `task_ids`
        `(batch, slots)` (-1 for an empty slot) give each slot's teacher's
        expected label `(batch, slots, num_labels)`; task 0 and empty
        slots give `ground_truth` itself."""
        p = ops.cast(ground_truth, self.compute_dtype)
        task_ids = ops.cast(task_ids, "int32")
        teacher = ops.greater(task_ids, 0)
        ids = ops.where(teacher, task_ids, ops.zeros_like(task_ids))
        transition = self._probabilities(ops.take(self.logits(), ids, axis=0))
        transition = ops.cast(transition, self.compute_dtype)
        if self.labels == "independent":
            yes, no = transition[..., 0], transition[..., 1]
            said = yes * p[:, None] + no * (1.0 - p[:, None])
        else:
            classes = p / ops.maximum(ops.sum(p, axis=-1, keepdims=True), 1e-7)
            said = ops.einsum("bc,bscl->bsl", classes, transition)
        same = ops.broadcast_to(p[:, None], ops.shape(said))
        return ops.where(teacher[..., None], said, same)

    def compute_output_shape(self, ground_truth_shape, task_ids_shape):
        return (*task_ids_shape, ground_truth_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_teachers": self.num_teachers,
                "num_labels": self.num_labels,
                "labels": self.labels,
                "shrinkage": self.shrinkage,
            }
        )
        return config
