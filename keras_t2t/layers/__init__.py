from keras_t2t.layers.teacher_embedding import TeacherEmbedding

__all__ = ["TeacherEmbedding"]
