import operator

import keras

from keras_t2t import _arguments


@keras.saving.register_keras_serializable(package="keras_t2t")
class TeacherVocabulary:
    """The N+1 task ids of a Teacher2Task model: ground truth and N teachers.

    Teacher2Task turns every (input, source) pair into its own training
    example and tells the model which source it is learning from with a task
    token prepended to the input. This vocabulary maps the sources to those
    token ids. The ground truth, the primary task used at inference, is
    always id 0; the teachers get ids 1..N in the order given.

    Args:
        teachers: list of str. The teacher names, in id order. Names must be
            unique, non-empty and differ from `ground_truth_name`.
        ground_truth_name: str. The name of the primary task. Defaults to
            `"ground_truth"`.

    Example:
    ```python
    vocabulary = keras_t2t.TeacherVocabulary(["vader", "textblob", "afinn"])
    vocabulary.id_of("textblob")  # 2
    vocabulary.name_of(0)  # "ground_truth"
    vocabulary.ids_of(["afinn", "ground_truth"])  # [3, 0]
    len(vocabulary)  # 4 tasks
    ```
    """

    GROUND_TRUTH_ID = 0

    @_arguments.suggests_keywords
    def __init__(self, teachers, ground_truth_name="ground_truth"):
        if isinstance(teachers, str):
            raise ValueError(
                "`teachers` must be a list of teacher names, not a single "
                f"string. Received: teachers={teachers!r}"
            )
        if teachers is None or not hasattr(teachers, "__iter__"):
            raise ValueError(
                "`teachers` must be a list of teacher names, e.g. "
                "`TeacherVocabulary(['vader', 'textblob'])`. Received: "
                f"teachers={teachers!r}"
            )
        _check_name(ground_truth_name, "ground_truth_name")
        teachers = tuple(teachers)
        seen = {}
        for index, name in enumerate(teachers):
            _check_name(name, f"teachers[{index}]")
            if name == ground_truth_name:
                raise ValueError(
                    f"Teacher name {name!r} (teachers[{index}]) is reserved "
                    "for the ground-truth task, id 0. Rename the teacher or "
                    "pass another `ground_truth_name`."
                )
            if name in seen:
                raise ValueError(
                    f"Duplicate teacher name {name!r} at teachers[{seen[name]}]"
                    f" and teachers[{index}]. Teacher names must be unique."
                )
            seen[name] = index
        self.teachers = teachers
        self.ground_truth_name = ground_truth_name
        self._names = (ground_truth_name,) + teachers
        self._ids = {name: i for i, name in enumerate(self._names)}

    @property
    def num_teachers(self):
        """The number of teachers N, not counting the ground truth."""
        return len(self.teachers)

    @property
    def names(self):
        """All N+1 task names in id order, ground truth first."""
        return self._names

    def __len__(self):
        return len(self._names)

    def __contains__(self, name):
        return name in self._ids

    def __iter__(self):
        return iter(self._names)

    def __eq__(self, other):
        if not isinstance(other, TeacherVocabulary):
            return NotImplemented
        return self._names == other._names

    def __hash__(self):
        return hash(self._names)

    def __repr__(self):
        return (
            f"TeacherVocabulary(teachers={list(self.teachers)!r}, "
            f"ground_truth_name={self.ground_truth_name!r})"
        )

    def id_of(self, name):
        """Returns the task id of a teacher name (or of the ground truth)."""
        try:
            return self._ids[name]
        except (KeyError, TypeError):
            raise ValueError(
                f"Unknown teacher {name!r}. This vocabulary knows "
                f"{list(self._names)}."
            ) from None

    def ids_of(self, names):
        """Returns the task ids of a list of names."""
        return [self.id_of(name) for name in names]

    def name_of(self, task_id):
        """Returns the name of a task id in `[0, N]`."""
        try:
            index = operator.index(task_id)
        except TypeError:
            index = None
        if index is None or isinstance(task_id, bool):
            raise ValueError(
                f"A task id must be an integer. Received: {task_id!r}"
            )
        if not 0 <= index < len(self._names):
            raise ValueError(
                f"Unknown task id {task_id}: this vocabulary has ids 0 "
                f"({self.ground_truth_name}) to {len(self._names) - 1}."
            )
        return self._names[index]

    def names_of(self, task_ids):
        """Returns the names of a list of task ids."""
        return [self.name_of(task_id) for task_id in task_ids]

    def get_config(self):
        return {
            "teachers": list(self.teachers),
            "ground_truth_name": self.ground_truth_name,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _check_name(name, where):
    if not isinstance(name, str):
        raise ValueError(
            f"Teacher names must be strings; {where} is {name!r} "
            f"({type(name).__name__})."
        )
    if not name.strip():
        raise ValueError(
            f"Teacher names must not be empty; {where} is {name!r}."
        )
