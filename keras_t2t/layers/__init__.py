from keras_t2t.layers.input_masking import InputMasking
from keras_t2t.layers.task_tokens import TaskTokens
from keras_t2t.layers.teacher_embedding import TeacherEmbedding
from keras_t2t.layers.teacher_embedding import TeacherShrinkage
from keras_t2t.layers.teacher_transition import TeacherTransition

__all__ = [
    "InputMasking",
    "TaskTokens",
    "TeacherEmbedding",
    "TeacherShrinkage",
    "TeacherTransition",
]
