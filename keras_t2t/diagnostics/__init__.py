from keras_t2t.diagnostics.teacher_report import TeacherReport
from keras_t2t.diagnostics.teacher_report import teacher_report

__all__ = ["TeacherReport", "teacher_report"]
