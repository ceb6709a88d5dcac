"""Teacher2Task on short clips of digit frames: does the clip show a 3?

Data: clips of 4 frames, each an 8x8 digit of scikit-learn's `load_digits`
drawn at random; a clip is positive when any frame shows a 3. The student
reads a clip as a sequence of 4 frame vectors (64 pixels each).

Teachers see different frames or pool per-frame predictions differently;
per-frame models are fitted on small labelled samples of images that no
test clip shows:
- `first_frames`: a logistic-regression frame model (100 images), max over
  the first 2 frames only.
- `max_pool`: the same frame model, max over all frames.
- `mean_pool_low_res`: 5-nearest-neighbours on 4x4 frames (150 images),
  mean over frames: under-confident.
- `human`: a hard clip label on 25% of the clips, 90% right.

Usage:
    python recipes/video_clips.py --output outputs/video
"""

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from recipes import common  # noqa: E402
from recipes.image_digits import downsample  # noqa: E402
from recipes.image_digits import load_images  # noqa: E402

TEACHERS = ("first_frames", "max_pool", "mean_pool_low_res", "human")
TARGET = 3


def make_clips(num_clips, frames=4, seed=0):
    images, digits = load_images()
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(images), (num_clips, frames))
    labels = (digits[picks] == TARGET).any(axis=1).astype("float32")
    return images, digits, picks, labels


def teacher_scores(images, digits, picks, labels, allowed, seed=0):
    """Teacher confidences per clip; frame models see `allowed` images."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier

    rng = np.random.default_rng(seed)
    flat = images.reshape(len(images), -1)
    is_target = (digits == TARGET).astype(int)
    sample = rng.choice(allowed, min(100, len(allowed)), replace=False)
    frame_model = LogisticRegression(max_iter=2000).fit(
        flat[sample], is_target[sample]
    )
    frame_p = frame_model.predict_proba(flat)[:, 1][picks]
    low = downsample(images)
    sample = rng.choice(allowed, min(150, len(allowed)), replace=False)
    knn = KNeighborsClassifier(5).fit(low[sample], is_target[sample])
    knn_p = knn.predict_proba(low)[:, list(knn.classes_).index(1)][picks]
    human = np.full(len(picks), np.nan, "float32")
    seen = rng.random(len(picks)) < 0.25
    flip = rng.random(len(picks)) >= 0.9
    human[seen] = np.where(flip, 1 - labels, labels)[seen]
    scores = np.stack(
        [
            frame_p[:, :2].max(axis=1),
            frame_p.max(axis=1),
            knn_p.mean(axis=1),
            human,
        ],
        axis=1,
    )
    return scores[:, :, None].astype("float32")


def build_task(args):
    images, digits, picks, labels = make_clips(args.clips)
    frames = images.reshape(len(images), -1)[picks]  # (clips, 4, 64)
    # The frame models never train on an image that a test clip shows.
    test, _ = common.test_split(len(picks), args)
    allowed = np.setdiff1d(np.arange(len(images)), picks[test].ravel())
    return common.Task(
        name="video_clips",
        inputs={
            "features": frames,
            "padding_mask": np.ones(frames.shape[:2], "int32"),
        },
        labels=labels[:, None],
        teacher_scores=teacher_scores(images, digits, picks, labels, allowed),
        teacher_names=TEACHERS,
        backbone_args={"feature_dim": frames.shape[-1]},
        classical=common.logistic_regression(frames.reshape(len(frames), -1)),
        classical_name="frame-pixel logistic regression",
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    common.add_common_flags(parser, name="video_clips", steps=600)
    parser.add_argument("--clips", type=int, default=4000)
    args = common.parse(parser, argv)
    return common.run(build_task(args), args)


if __name__ == "__main__":
    main()
