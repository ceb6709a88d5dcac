import os
import re
import zipfile

import keras
import numpy as np

import keras_t2t
from keras_t2t.models import Teacher2TaskClassifier
from tests.test_case import ONE_LAYER
from tests.test_case import TestCase
from tests.test_case import tiny_backbone
from tests.test_case import tiny_classifier


def saved_classifier(directory):
    classifier = tiny_classifier(
        tiny_backbone(num_teachers=2, feature_dim=4, **ONE_LAYER)
    )
    path = os.path.join(directory, "student.keras")
    classifier.save(path)
    return classifier, path


class LoadModelTest(TestCase):
    def setUp(self):
        super().setUp()
        self.directory = self.get_temp_dir()
        self.classifier, self.path = saved_classifier(self.directory)
        with open(self.path, "rb") as file:
            self.data = file.read()

    def write(self, name, data):
        path = os.path.join(self.directory, name)
        with open(path, "wb") as file:
            file.write(data)
        return path

    def assertNotAnArchive(self, path, reason):
        with self.assertRaisesRegex(
            ValueError,
            re.escape(repr(path))
            + " is not a valid .keras archive: .*"
            + reason,
        ):
            keras_t2t.models.load_model(path)

    def test_a_whole_file_loads_as_with_keras(self):
        x = {"features": np.random.rand(3, 5, 4).astype("float32")}
        expected = self.classifier.predict(x, verbose=0)
        for revived in (
            keras_t2t.models.load_model(self.path),
            keras.saving.load_model(self.path),
        ):
            self.assertIsInstance(revived, Teacher2TaskClassifier)
            self.assertAllClose(revived.predict(x, verbose=0), expected)

    def test_empty_file(self):
        path = self.write("empty.keras", b"")
        self.assertNotAnArchive(path, r"the file is empty \(0 bytes\)")

    def test_truncated_file(self):
        path = self.write("cut.keras", self.data[: len(self.data) // 2])
        self.assertNotAnArchive(path, "are not a zip archive .*cut short")

    def test_random_bytes(self):
        data = np.random.default_rng(0).bytes(2000)
        path = self.write("random.keras", data)
        self.assertNotAnArchive(path, "2000 bytes are not a zip archive")

    def test_corrupt_member(self):
        # One byte flipped inside the weights: the archive's index is
        # whole, the member fails its checksum.
        with zipfile.ZipFile(self.path) as archive:
            info = archive.getinfo("model.weights.h5")
        start = info.header_offset + 30 + len(info.filename)
        start += len(info.extra) + info.compress_size // 2
        data = bytearray(self.data)
        data[start] ^= 0xFF
        path = self.write("flipped.keras", bytes(data))
        self.assertNotAnArchive(path, "member 'model.weights.h5' is corrupt")

    def test_zip_without_the_keras_members(self):
        path = os.path.join(self.directory, "other.keras")
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("notes.txt", "not a model")
        self.assertNotAnArchive(
            path, r"without \['config.json', 'metadata.json'\]"
        )

    def test_missing_file_and_folder(self):
        path = os.path.join(self.directory, "none.keras")
        with self.assertRaisesRegex(ValueError, "No file .*none.keras"):
            keras_t2t.models.load_model(path)
        folder = os.path.join(self.directory, "folder.keras")
        os.makedirs(folder)
        with self.assertRaisesRegex(
            ValueError, "folder.keras' is a folder, not a .keras archive"
        ):
            keras_t2t.models.load_model(folder)
