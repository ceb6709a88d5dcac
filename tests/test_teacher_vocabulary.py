import numpy as np
import pytest

from keras_t2t import TeacherVocabulary
from tests.test_case import TestCase


class TeacherVocabularyTest(TestCase):
    def test_ids_and_names_both_ways(self):
        vocabulary = TeacherVocabulary(["vader", "textblob", "afinn"])
        self.assertEqual(len(vocabulary), 4)
        self.assertEqual(vocabulary.num_teachers, 3)
        self.assertEqual(vocabulary.id_of("ground_truth"), 0)
        self.assertEqual(vocabulary.ids_of(["afinn", "vader"]), [3, 1])
        self.assertEqual(vocabulary.name_of(np.int64(2)), "textblob")
        self.assertEqual(vocabulary.names_of([0, 3]), ["ground_truth", "afinn"])
        self.assertEqual(
            vocabulary.names, ("ground_truth", "vader", "textblob", "afinn")
        )
        self.assertIn("vader", vocabulary)
        self.assertNotIn("gemini", vocabulary)

    def test_custom_ground_truth_name(self):
        vocabulary = TeacherVocabulary(["a"], ground_truth_name="human")
        self.assertEqual(vocabulary.name_of(0), "human")
        self.assertEqual(vocabulary.id_of("a"), 1)

    def test_serialization(self):
        vocabulary = TeacherVocabulary(["a", "b"], ground_truth_name="gt")
        revived = self.run_serialization_test(vocabulary)
        self.assertEqual(revived, vocabulary)

    def test_duplicate_name(self):
        with pytest.raises(
            ValueError, match=r"'b'.*teachers\[1\].*teachers\[2\]"
        ):
            TeacherVocabulary(["a", "b", "b"])

    def test_empty_name(self):
        with pytest.raises(ValueError, match=r"empty.*teachers\[1\]"):
            TeacherVocabulary(["a", "  "])

    def test_reserved_name(self):
        with pytest.raises(ValueError, match="'ground_truth'.*reserved"):
            TeacherVocabulary(["a", "ground_truth"])

    def test_non_string_name(self):
        with pytest.raises(ValueError, match=r"teachers\[0\] is 3"):
            TeacherVocabulary([3])

    def test_single_string_is_rejected(self):
        with pytest.raises(ValueError, match="list of teacher names"):
            TeacherVocabulary("vader")

    def test_none_or_a_number_is_rejected(self):
        for teachers in (None, 3):
            with pytest.raises(
                ValueError,
                match=rf"list of teacher names.*teachers={teachers}",
            ):
                TeacherVocabulary(teachers)

    def test_unknown_name(self):
        vocabulary = TeacherVocabulary(["a", "b"])
        with pytest.raises(ValueError, match="Unknown teacher 'gemini'"):
            vocabulary.id_of("gemini")

    def test_unknown_id(self):
        vocabulary = TeacherVocabulary(["a", "b"])
        with pytest.raises(ValueError, match="Unknown task id 3"):
            vocabulary.name_of(3)
        with pytest.raises(ValueError, match="Unknown task id -1"):
            vocabulary.name_of(-1)
        with pytest.raises(ValueError, match="must be an integer"):
            vocabulary.name_of(1.5)
