from keras_t2t.layers.task_tokens import TaskTokens
from keras_t2t.layers.teacher_embedding import TeacherEmbedding

__all__ = ["TaskTokens", "TeacherEmbedding"]
