"""The Python blocks of the README and of every docs page run.

Each ```python block of `README.md` and `docs/**/*.md` is one of:
- unmarked: run here as it stands, in an empty folder
  (`test_unmarked_blocks_run`);
- marked `<!-- test: tests/PATH.py -->` on the line above it: run by that
  test, which names the page and the block's heading and checks what the
  block leaves (as `test_csv_to_fit` below does);
- marked `<!-- test: skip, WHY -->`: a fragment or a template that cannot
  run alone (the reader's own arrays, several devices), with the reason.
`test_every_block_is_run_or_says_why` keeps a new block from going
untested without a word. Pages rendered from elsewhere (the quickstart
notebook, by `docs/hooks.py`) are tested where they live.
"""

import glob
import os
import re

import numpy as np
import pandas as pd

from tests.test_case import TestCase

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
README = os.path.join(ROOT, "README.md")
PAGES = [README] + sorted(
    glob.glob(os.path.join(ROOT, "docs", "**", "*.md"), recursive=True)
)
_MARKER = re.compile(r"^<!-- test: (.+?) -->$")


def python_blocks(page):
    """The ```python blocks of a page: dicts with the `heading` above the
    block, its `marker` (the text of a `<!-- test: ... -->` line just above
    it, or None), its `code` and its `line` (1-based)."""
    blocks, heading, fence, previous = [], None, None, ""
    with open(page, encoding="utf-8") as file:
        lines = file.read().splitlines()
    for number, line in enumerate(lines, 1):
        if fence is not None:
            if line.strip() == "```":
                if fence is not False:
                    fence["code"] = "\n".join(fence["code"]) + "\n"
                    blocks.append(fence)
                fence = None
            elif fence is not False:
                fence["code"].append(line)
            continue
        if line.startswith("```"):
            marker = _MARKER.match(previous.strip())
            fence = (
                {
                    "heading": heading,
                    "marker": marker.group(1) if marker else None,
                    "code": [],
                    "line": number,
                }
                if line.strip() == "```python"
                else False
            )
        elif line.startswith("#"):
            heading = line.strip()
        previous = line
    return blocks


def page_block(page, heading):
    """The first python block under `heading` on `page`."""
    block = next(
        (block for block in python_blocks(page) if block["heading"] == heading),
        None,
    )
    if block is None:
        raise ValueError(f"{page}: no python block under {heading!r}")
    return block["code"]


def run_page_block(page, heading, directory):
    """Runs the first python block under `heading` on `page` in
    `directory`; returns the namespace it leaves."""
    code = page_block(page, heading)
    cwd = os.getcwd()
    os.chdir(directory)
    try:
        namespace = {}
        exec(compile(code, page, "exec"), namespace)
    finally:
        os.chdir(cwd)
    return namespace


def _name(page):
    return os.path.relpath(page, ROOT)


class DocsBlocksTest(TestCase):
    def test_every_block_is_run_or_says_why(self):
        for page in PAGES:
            for block in python_blocks(page):
                where = f"{_name(page)}:{block['line']}"
                marker = block["marker"]
                if marker is None:
                    continue  # Run by test_unmarked_blocks_run.
                if marker.startswith("skip"):
                    reason = marker[len("skip") :].strip(" ,:")
                    self.assertTrue(reason, f"{where}: skipped without why")
                    continue
                test_file = os.path.join(ROOT, marker)
                self.assertTrue(
                    os.path.isfile(test_file),
                    f"{where}: marker names {marker!r}, not a test file",
                )
                with open(test_file, encoding="utf-8") as file:
                    test_code = file.read()
                # The test names the page and the block's heading.
                self.assertIn(
                    os.path.splitext(os.path.basename(page))[0],
                    test_code,
                    f"{where}: {marker} does not name this page",
                )
                self.assertIn(
                    block["heading"],
                    test_code,
                    f"{where}: {marker} does not name {block['heading']!r}",
                )

    def test_unmarked_blocks_run(self):
        ran = {}
        for page in PAGES:
            for block in python_blocks(page):
                if block["marker"] is not None:
                    continue
                with self.subTest(page=_name(page), line=block["line"]):
                    ran[(page, block["heading"])] = run_page_block(
                        page, block["heading"], self.get_temp_dir()
                    )
        # The README's example: a prediction per row.
        confidences = ran[(README, "## Example")]["confidences"]
        self.assertEqual(confidences.shape, (8, 1))
        self.assertTrue(np.isfinite(confidences).all())


YOUR_TABLE = os.path.join(ROOT, "docs", "guides", "your-table.md")


class YourTableTest(TestCase):
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

        namespace = run_page_block(
            YOUR_TABLE, "## From a CSV to `fit`", directory
        )
        classifier = namespace["classifier"]
        self.assertEqual(classifier.teacher_vocabulary.num_teachers, 3)
        history = classifier.history.history
        self.assertEqual(len(history["loss"]), 3)
        # The documented path: a row's tasks in one pass (sparse, the
        # default), with the learned reading checked on validation rows.
        self.assertTrue(classifier.backbone.packed)
        self.assertTrue(classifier.backbone.sparse)
        report = namespace["report"]
        self.assertEqual(report["kept"], classifier.combination is not None)
