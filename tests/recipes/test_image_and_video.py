import numpy as np

from recipes import image_digits
from recipes import video_clips
from tests.markers import tensorflow_only_end_to_end
from tests.recipes.end_to_end import RecipeTestCase


class ImageDigitsRecipeTest(RecipeTestCase):
    def test_patches_keep_every_pixel(self):
        images, _ = image_digits.load_images()
        patches = image_digits.to_patches(images[:3])
        self.assertEqual(patches.shape, (3, 16, 4))
        self.assertAllClose(
            np.sort(patches.ravel()), np.sort(images[:3].ravel())
        )
        self.assertAllClose(patches[0, 0], images[0, :2, :2].ravel())

    def test_teachers(self):
        images, digits = image_digits.load_images()
        train = np.arange(1200)
        scores = image_digits.teacher_scores(images, digits, train)
        self.assertEqual(scores.shape, (len(images), 5, 10))
        human = scores[:, 4]
        seen = ~np.isnan(human).all(axis=1)
        self.assertAlmostEqual(seen.mean(), 0.3, delta=0.05)
        self.assertAllClose(human[seen].sum(axis=1), 1.0)
        self.assertFalse(np.isnan(scores[:, :4]).any())

    @tensorflow_only_end_to_end
    def test_tiny_end_to_end(self):
        # Every student type runs in the text recipe's test; here the two
        # this recipe changes (sparse multi-label Teacher2Task, multi-class
        # Dawid-Skene), so the test stays short.
        output = self.run_quick(
            image_digits.main,
            "--students=teacher2task_sparse,student_dawid_skene",
        )
        results = self.read_json(output)
        self.assertIn("teacher2task_sparse", results)
        self.assertIn("student_dawid_skene", results)
        self.assertIn("dawid_skene (needs all teachers)", results)
        self.assertIn("pixel logistic regression on pseudo-labels", results)
        markdown = self.read_text(output)
        # Ten labels: one row per teacher, averaged over labels.
        self.assertIn("## Teachers and the Teacher2Task student", markdown)
        self.assertIn("| naive_bayes |", markdown)
        self.assertWritten(output, "teacher_conflict.png")


class VideoClipsRecipeTest(RecipeTestCase):
    def test_clip_labels(self):
        _, digits, picks, labels, groups = video_clips.make_clips(50)
        self.assertEqual(picks.shape, (50, 6))
        self.assertAllEqual(labels, (digits[picks] == 3).any(axis=1))
        # A clip's frames come from its group's images only.
        _, _, many, _, many_groups = video_clips.make_clips(3000)
        owners = {}
        for clip, group in zip(many, many_groups, strict=True):
            for image in clip:
                self.assertEqual(owners.setdefault(image, group), group)

    def test_shifted_frames_are_their_images_moved(self):
        images, _, picks, _, _ = video_clips.make_clips(40)
        self.assertAllEqual(
            video_clips.shift_frames(images, picks, 0), images[picks]
        )
        shifted = video_clips.shift_frames(images, picks, 1)
        moved = 0
        padded = np.pad(images, [(0, 0), (1, 1), (1, 1)])
        for clip, frames in zip(picks, shifted, strict=True):
            for image, frame in zip(clip, frames, strict=True):
                # Some offset of at most one pixel gives the frame exactly.
                matches = [
                    (dy, dx)
                    for dy in (-1, 0, 1)
                    for dx in (-1, 0, 1)
                    if np.array_equal(
                        padded[image, 1 - dy : 9 - dy, 1 - dx : 9 - dx], frame
                    )
                ]
                self.assertTrue(matches)
                moved += (0, 0) not in matches
        self.assertGreater(moved, 0.7 * picks.size)  # 8 of 9 offsets move.

    @tensorflow_only_end_to_end
    def test_tiny_end_to_end(self):
        output = self.run_quick(
            video_clips.main,
            "--clips=300 --shift=1 --students=teacher2task_sparse",
        )
        results = self.read_json(output)
        self.assertIn("teacher2task_sparse", results)
        self.assertIn("teacher: first_half", results)
