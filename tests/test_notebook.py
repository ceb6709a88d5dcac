import os

import keras
import nbformat
import pytest

from tests.test_case import TestCase

NOTEBOOK = os.path.join(
    os.path.dirname(__file__), "..", "notebooks", "quickstart.ipynb"
)


class QuickstartNotebookTest(TestCase):
    def test_outputs_are_stripped_in_git(self):
        notebook = nbformat.read(NOTEBOOK, as_version=4)
        for cell in notebook.cells:
            if cell.cell_type == "code":
                self.assertEqual(cell.outputs, [])
                self.assertIsNone(cell.execution_count)

    @pytest.mark.skipif(
        keras.config.backend() != "tensorflow",
        reason="The notebook is executed on the TensorFlow backend.",
    )
    def test_executes_headless(self):
        from nbclient import NotebookClient

        notebook = nbformat.read(NOTEBOOK, as_version=4)
        client = NotebookClient(
            notebook,
            timeout=600,
            kernel_name="python3",
            resources={"metadata": {"path": os.path.dirname(NOTEBOOK)}},
        )
        client.execute(env=dict(os.environ, KERAS_BACKEND="tensorflow"))
        printed = "".join(
            output.get("text", "")
            for cell in notebook.cells
            if cell.cell_type == "code"
            for output in cell.outputs
        )
        self.assertIn("Teacher2Task", printed)
        self.assertIn("serving_default", printed)
