"""The package's structure: what may import what, and what the Task
overrides.

`keras_t2t/models` holds the networks and their training runtime (behind
`models/_training.py`); callbacks are passive and models never import
them. The classifier overrides only the Keras methods it must (each named
below with why); a new override fails here until it is argued for.
"""

import ast
import pathlib

import keras_hub

import keras_t2t
from tests.test_case import TestCase

PACKAGE = pathlib.Path(keras_t2t.__file__).parent

# The Keras and keras-hub `Task` methods `Teacher2TaskClassifier`
# overrides, and why.
OVERRIDES = {
    "__init__": "builds the functional model",
    # A T5 preset gives a new classifier on its encoder (and tokenizer).
    "from_preset": "T5 presets",
    # "auto" defaults (Adam, the masked loss, PR-AUC), as keras-hub Tasks.
    "compile": "Teacher2Task defaults",
    # Keras skips restoring the compile state of a custom `compile()`.
    "compile_from_config": "restores the custom compile",
    # Each hands its arguments to `models/_training.py`: input checks,
    # in-memory arrays, exact resume, `all_tasks` reads.
    "fit": "the training runtime",
    "evaluate": "input checks",
    "predict": "task selection",
    # Drops the rows padded so that a batch splits across devices.
    "predict_step": "padded rows",
    # The teacher transition's loss joins the task loss.
    "compute_loss": "the teacher transition",
    # The metrics see the ground-truth task only.
    "compute_metrics": "task 0 only",
    # keras-hub's hook: the preprocessor, then batch checks and padding.
    "preprocess_samples": "checks and device padding",
    # A `.keras` file written aside and renamed: never half-written.
    "save": "atomic file writes",
    "get_config": "serialization",
    "from_config": "serialization",
}


def imported_modules(path):
    """Every module a source file imports, as dotted names."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module
            yield from (f"{node.module}.{a.name}" for a in node.names)


class StructureTest(TestCase):
    def test_models_do_not_import_callbacks(self):
        for path in sorted((PACKAGE / "models").glob("*.py")):
            with self.subTest(module=path.name):
                imports = [
                    name
                    for name in imported_modules(path)
                    if name.startswith("keras_t2t.callbacks")
                ]
                self.assertEqual(imports, [])

    def test_the_classifier_overrides_only_what_it_must(self):
        classifier = keras_t2t.models.Teacher2TaskClassifier
        overridden = sorted(
            name
            for name in vars(classifier)
            if callable(getattr(keras_hub.models.Task, name, None))
        )
        self.assertEqual(overridden, sorted(OVERRIDES))

    def test_helper_modules_are_private(self):
        # A module of `models/` without an underscore defines a public
        # name (exported from `keras_t2t.models`).
        public = set(keras_t2t.models.__all__)
        for path in sorted((PACKAGE / "models").glob("[!_]*.py")):
            with self.subTest(module=path.name):
                tree = ast.parse(path.read_text())
                defined = {
                    node.name
                    for node in tree.body
                    if isinstance(node, (ast.ClassDef, ast.FunctionDef))
                }
                self.assertTrue(defined & public, path.name)
