"""Honest splits: test items never reach training, validation or fitting."""

import argparse

import numpy as np

from recipes import common
from recipes import image_digits
from recipes import text_sentiment
from recipes import video_clips
from tests.test_case import SMALLEST
from tests.test_case import TestCase
from tests.test_case import tiny_backbone


def split_args(**overrides):
    settings = {
        "split_seed": 0,
        "test_fraction": 0.2,
        "ground_truth_fraction": 0.05,
        "validation_share": 0.4,
    }
    settings.update(overrides)
    return argparse.Namespace(**settings)


class SplitRowsTest(TestCase):
    def check_split(self, num_rows, groups=None):
        args = split_args()
        tests = []
        for seed in range(3):
            train, val, test, labelled = common.split_rows(
                num_rows, args, seed, groups
            )
            tests.append(test)
            self.assertEqual(len(np.intersect1d(train, val)), 0)
            self.assertEqual(len(np.intersect1d(train, test)), 0)
            self.assertEqual(len(np.intersect1d(val, test)), 0)
            # Every label a method sees is in the budget: labelled training
            # rows plus the (all labelled) validation rows.
            non_test = num_rows - len(test)
            budget = round(non_test * args.ground_truth_fraction)
            self.assertEqual(int(labelled.sum()) + len(val), budget)
            self.assertAlmostEqual(
                len(val) / budget, args.validation_share, delta=0.02
            )
            if groups is not None:
                train_groups = set(groups[train])
                self.assertFalse(train_groups & set(groups[val]))
                self.assertFalse(train_groups & set(groups[test]))
                self.assertFalse(set(groups[val]) & set(groups[test]))
        for test in tests[1:]:
            self.assertAllEqual(test, tests[0])  # Fixed across seeds.

    def test_rows(self):
        self.check_split(1000)

    def test_groups(self):
        groups = np.random.default_rng(0).integers(0, 60, 2000)
        self.check_split(2000, groups)


class RecipeSplitTest(TestCase):
    def test_video_test_images_appear_in_no_other_clip(self):
        args = split_args(clips=2000, shift=1)
        captured = {}
        original = video_clips.teacher_scores

        def spy(images, digits, picks, labels, allowed, **kwargs):
            captured["allowed"] = allowed
            return original(images, digits, picks, labels, allowed, **kwargs)

        video_clips.teacher_scores = spy
        try:
            task = video_clips.build_task(args)
        finally:
            video_clips.teacher_scores = original
        _, _, picks, _, groups = video_clips.make_clips(args.clips)
        self.assertAllEqual(task.groups, groups)
        for seed in range(2):
            train, val, test, _ = common.split_rows(
                len(groups), args, seed, task.groups
            )
            test_images = set(picks[test].ravel())
            self.assertFalse(test_images & set(picks[train].ravel()))
            self.assertFalse(test_images & set(picks[val].ravel()))
        # The frame models are fitted on images of no test clip.
        self.assertFalse(test_images & set(captured["allowed"]))

    def test_image_teachers_never_see_test_images(self):
        args = split_args()
        captured = {}
        original = image_digits.teacher_scores

        def spy(images, digits, train_rows, seed=0):
            captured["rows"] = train_rows
            return original(images, digits, train_rows, seed)

        image_digits.teacher_scores = spy
        try:
            image_digits.build_task(args)
        finally:
            image_digits.teacher_scores = original
        test, _ = common.test_split(1797, args)
        self.assertEqual(len(np.intersect1d(captured["rows"], test)), 0)

    def test_text_tokenizer_tfidf_and_calibration_never_see_test_rows(self):
        import sklearn.feature_extraction.text as sklearn_text

        import keras_t2t

        args = argparse.Namespace(
            **vars(split_args()),
            data=None,
            limit=400,
            vocabulary_size=200,
            sequence_length=16,
            teachers="lexicons",
            num_teachers=0,
            student_input="tokens",
        )
        texts, _ = text_sentiment.load_snippets()
        keep = np.random.default_rng(0).permutation(len(texts))[:400]
        test, _ = common.test_split(400, args)
        test_texts = set(texts[keep][test])
        seen = {}
        originals = (
            keras_t2t.data.train_sentencepiece,
            sklearn_text.TfidfVectorizer.fit,
            text_sentiment.to_confidence,
        )

        def tokenizer_spy(texts, **kwargs):
            seen["tokenizer"] = set(texts)
            return originals[0](texts, **kwargs)

        def tfidf_spy(self, texts, *rest):
            seen["tfidf"] = set(texts)
            return originals[1](self, texts, *rest)

        def calibration_spy(raw, train_rows):
            seen["calibration"] = set(train_rows)
            return originals[2](raw, train_rows)

        keras_t2t.data.train_sentencepiece = tokenizer_spy
        sklearn_text.TfidfVectorizer.fit = tfidf_spy
        text_sentiment.to_confidence = calibration_spy
        try:
            text_sentiment.build_task(args)
        finally:
            (
                keras_t2t.data.train_sentencepiece,
                sklearn_text.TfidfVectorizer.fit,
                text_sentiment.to_confidence,
            ) = originals
        self.assertTrue(seen["tokenizer"])
        self.assertFalse(seen["tokenizer"] & test_texts)
        self.assertFalse(seen["tfidf"] & test_texts)
        self.assertFalse(seen["calibration"] & set(test))


class WarmStartRowsTest(TestCase):
    def test_warm_start_reads_training_inputs_only(self):
        import keras_t2t
        from recipes import students

        # Row r's tokens spell r, so the rows a batch came from are known.
        rows = 60
        token_ids = np.stack(
            [3 + np.arange(rows) // 10, 3 + np.arange(rows) % 10], axis=1
        ).astype("int32")
        task = common.Task(
            name="rows",
            inputs={
                "token_ids": token_ids,
                "padding_mask": np.ones_like(token_ids),
            },
            labels=np.zeros((rows, 1)),
            teacher_scores=np.zeros((rows, 1, 1)),
            teacher_names=["a"],
            backbone_args={"vocabulary_size": 13},
            classical=None,
            classical_name="none",
        )
        args = argparse.Namespace(
            **vars(split_args()),
            pretrain_steps=3,
            mask_rate=0.15,
            learning_rate=1e-3,
            batch_size=8,
        )
        train, val, test, _ = common.split_rows(rows, args, 0)
        seen = []
        original = keras_t2t.models.Teacher2TaskPretrainer.fit

        def spy(self, dataset, **kwargs):
            for batch in dataset.take(len(train) // 8 * 2):
                ids = batch["token_ids"].numpy()
                seen.extend((ids[:, 0] - 3) * 10 + ids[:, 1] - 3)
            return original(self, dataset, **kwargs)

        keras_t2t.models.Teacher2TaskPretrainer.fit = spy
        try:
            backbone = tiny_backbone(
                num_teachers=1, vocabulary_size=13, **SMALLEST
            )
            students.warm_start(backbone, task, train, args, seed=0)
        finally:
            keras_t2t.models.Teacher2TaskPretrainer.fit = original
        # Every training row, and nothing else (validation rows are
        # labelled, test rows are never used).
        self.assertEqual(set(seen), set(train))
        self.assertFalse(set(seen) & (set(val) | set(test)))
