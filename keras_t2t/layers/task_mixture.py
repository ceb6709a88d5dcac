import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_t2t")
class TaskMixture(keras.layers.Layer):
    """Reads the ground truth as a learned mixture of the teacher tasks.

    Takes the logits of every task of a packed model, `(batch, N + 1,
    num_labels)`, and replaces the ground-truth task's logit by

        logit_0 + sum_k w_k * logit_k + b_label

    where `logit_k` is the model's prediction of teacher k's confidence on
    this input and `w`, `b` are learned. `w` starts at `1 / N` (the
    teachers' mean logit) and the ground-truth labels move it: no
    aggregation rule is fixed, the weights are learned from the labelled
    rows along with the rest of the model, and the ground-truth token's own
    output `logit_0` is a residual for what no teacher sees. The teacher
    tasks are left as they are.

    Args:
        num_teachers: int. The number of teachers N.
        num_labels: int. The number of labels (one bias per label).

    Call arguments:
        logits: float tensor `(batch, num_teachers + 1, num_labels)`.

    Returns:
        Logits of the same shape, task 0 mixed.

    Example:
    ```python
    layer = keras_t2t.layers.TaskMixture(num_teachers=3, num_labels=1)
    layer(np.zeros((2, 4, 1))).shape  # (2, 4, 1)
    ```
    """

    def __init__(self, num_teachers, num_labels, **kwargs):
        super().__init__(**kwargs)
        self.num_teachers = num_teachers
        self.num_labels = num_labels

    def build(self, logits_shape):
        self.teacher_weights = self.add_weight(
            shape=(self.num_teachers,),
            initializer=keras.initializers.Constant(1.0 / self.num_teachers),
            name="teacher_weights",
        )
        self.bias = self.add_weight(
            shape=(self.num_labels,), initializer="zeros", name="bias"
        )
        self.built = True

    def call(self, logits):
        weights = ops.cast(self.teacher_weights, logits.dtype)
        teachers = logits[:, 1:, :]
        mixed = ops.einsum("btl,t->bl", teachers, weights)
        ground_truth = (
            logits[:, 0, :] + mixed + ops.cast(self.bias, logits.dtype)
        )
        return ops.concatenate([ground_truth[:, None, :], teachers], axis=1)

    def compute_output_shape(self, logits_shape):
        return logits_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {"num_teachers": self.num_teachers, "num_labels": self.num_labels}
        )
        return config
