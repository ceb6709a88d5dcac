"""`Teacher2TaskClassifier.from_preset`: a classifier off a KerasHub preset.

A preset saved from a Teacher2Task classifier loads as it was saved; a T5
preset gives a new classifier on its encoder and, where the preset has a
tokenizer, a `Teacher2TaskPreprocessor` on it.
"""

from keras_hub.models import Task

# keras-hub exports no preset reader (only each class's `from_preset`): the
# loader and file checks its own `from_preset` uses, from keras_hub.src.
from keras_hub.src.utils.preset_utils import TOKENIZER_CONFIG_FILE
from keras_hub.src.utils.preset_utils import check_file_exists
from keras_hub.src.utils.preset_utils import get_preset_loader

from keras_t2t.models.teacher2task_backbone import Teacher2TaskBackbone
from keras_t2t.models.teacher2task_preprocessor import Teacher2TaskPreprocessor


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

    A preset saved from a Teacher2Task classifier (`save_to_preset`) loads
    as it was saved. A T5 preset gives a new classifier: a
    `Teacher2TaskBackbone` on its encoder (weights unchanged, new task
    embeddings and head) and, where the preset has a tokenizer, a
    `Teacher2TaskPreprocessor` on it, so the classifier takes raw text.

    Args:
        preset: str. The preset directory or handle.
        num_teachers: int. The number of teachers, for a T5 preset;
            defaults to that of `teacher_vocabulary`.
        teacher_vocabulary: `keras_t2t.TeacherVocabulary` or `None`.
        load_weights: bool. Whether to load the preset's weights. Defaults
            to `True`.
        sequence_length: int or `None`. The preprocessor's packed length.
            Defaults to the preprocessor's default.
        num_labels: int. Defaults to `1`.
        dropout: float. Dropout before the head. Defaults to `0.0`.
        **kwargs: backbone arguments (e.g. `task_layout="packed"`;
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
    backbone_cls = get_preset_loader(preset).check_backbone_class()
    if issubclass(backbone_cls, Teacher2TaskBackbone):
        return Task.from_preset.__func__(cls, preset, load_weights=load_weights)
    if num_teachers is None and teacher_vocabulary is not None:
        num_teachers = teacher_vocabulary.num_teachers
    backbone = Teacher2TaskBackbone.from_preset(
        preset, num_teachers=num_teachers, load_weights=load_weights, **kwargs
    )
    preprocessor = None
    if backbone.input_mode == "text" and check_file_exists(
        preset, TOKENIZER_CONFIG_FILE
    ):
        options = {}
        if sequence_length is not None:
            options["sequence_length"] = sequence_length
        preprocessor = Teacher2TaskPreprocessor.from_preset(preset, **options)
    return cls(
        backbone,
        num_labels=num_labels,
        teacher_vocabulary=teacher_vocabulary,
        dropout=dropout,
        preprocessor=preprocessor,
    )
