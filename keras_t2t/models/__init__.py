from keras_t2t.models.model_file import load_model
from keras_t2t.models.task_combination import TaskCombination
from keras_t2t.models.teacher2task_backbone import Teacher2TaskBackbone
from keras_t2t.models.teacher2task_classifier import Teacher2TaskClassifier
from keras_t2t.models.teacher2task_preprocessor import Teacher2TaskPreprocessor
from keras_t2t.models.teacher2task_pretrainer import Teacher2TaskPretrainer

__all__ = [
    "TaskCombination",
    "Teacher2TaskBackbone",
    "Teacher2TaskClassifier",
    "Teacher2TaskPreprocessor",
    "Teacher2TaskPretrainer",
    "load_model",
]
