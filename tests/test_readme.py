import os
import re

import numpy as np
import pandas as pd

from tests.test_case import TestCase

README = os.path.join(os.path.dirname(__file__), "..", "README.md")


def readme_block(heading):
    text = open(README).read()
    section = text.split(heading, 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def run_readme_block(heading, directory):
    """Runs the README's first python block after `heading` in `directory`.

    Returns the namespace it leaves.
    """
    code = readme_block(heading)
    cwd = os.getcwd()
    os.chdir(directory)
    try:
        namespace = {}
        exec(compile(code, "README.md", "exec"), namespace)
    finally:
        os.chdir(cwd)
    return namespace


class ReadmeTest(TestCase):
    def test_csv_to_fit(self):
        rng = np.random.default_rng(0)
        words = ["fine", "lovely", "dull", "weak", "film", "plot", "the"]
        texts = [" ".join(rng.choice(words, 6)) for _ in range(40)]
        good = np.array([("fine" in t) or ("lovely" in t) for t in texts])
        frame = pd.DataFrame({"text": texts})
        frame["label"] = np.where(rng.random(40) < 0.3, good, np.nan)
        for name in ["vader", "textblob", "afinn"]:
            score = np.clip(good + rng.normal(0, 0.3, 40), 0, 1)
            frame[name] = np.where(rng.random(40) < 0.8, score, np.nan)
        directory = self.get_temp_dir()
        frame.to_csv(os.path.join(directory, "reviews.csv"), index=False)

        namespace = run_readme_block("## From a CSV to `fit`", directory)
        classifier = namespace["classifier"]
        self.assertEqual(classifier.teacher_vocabulary.num_teachers, 3)
        history = classifier.history.history
        self.assertEqual(len(history["loss"]), 3)
        # The documented path: packed, with the learned reading checked on
        # validation rows.
        self.assertTrue(classifier.backbone.packed)
        report = namespace["report"]
        self.assertEqual(report["kept"], classifier.combination is not None)
