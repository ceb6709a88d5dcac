"""The recipes' tiny end-to-end runs, shared by their tests."""

import json
import os

from tests.test_case import TestCase


class RecipeTestCase(TestCase):
    def run_quick(self, main, flags=""):
        """Runs a recipe's `main` with `--quick` and `flags` (a command
        line, e.g. `"--clips=300 --shift=1"`), its output in a temporary
        folder; returns the folder."""
        output = self.get_temp_dir()
        main(["--quick", *flags.split(), "--output", output])
        return output

    def read_json(self, output, name="results.json"):
        with open(os.path.join(output, name)) as f:
            return json.load(f)

    def read_text(self, output, name="results.md"):
        with open(os.path.join(output, name)) as f:
            return f.read()

    def assertWritten(self, output, *names):
        """Each of `names` is a file in `output`."""
        for name in names:
            self.assertTrue(os.path.exists(os.path.join(output, name)), name)
