"""The public API, listed in one place.

`PUBLIC_API` is every name a user may import from `keras_t2t`: each
subpackage's `__all__` must be exactly its list, and a subpackage must not
expose other public names (a helper imported without an underscore reads
as API). Adding or removing a public name fails here until the list (and
the docs' API reference, `docs/api/`) changes with it.
"""

import importlib
import types

import keras_t2t
from tests.test_case import TestCase

# Each package's names, space-separated in sorted order.
PUBLIC_API = {
    package: names.split()
    for package, names in {
        "keras_t2t": "TeacherVocabulary __version__",
        "keras_t2t.callbacks": "BackupAndRestore BestOnValidation",
        "keras_t2t.data": (
            "ExpansionSummary TextPreprocessor expand expand_arrays "
            "read_sequences read_table read_targets save_as_tfds summarize "
            "train_sentencepiece"
        ),
        "keras_t2t.datasets": "make_synthetic_teachers",
        "keras_t2t.diagnostics": "TeacherReport teacher_report",
        "keras_t2t.export": "export_saved_model",
        "keras_t2t.layers": (
            "InputMasking TaskTokens TeacherEmbedding TeacherShrinkage "
            "TeacherTransition"
        ),
        "keras_t2t.losses": "MaskedMultiTaskLoss",
        "keras_t2t.metrics": "PRAUC pr_auc_score",
        "keras_t2t.models": (
            "TaskCombination Teacher2TaskBackbone Teacher2TaskClassifier "
            "Teacher2TaskPreprocessor Teacher2TaskPretrainer load_model"
        ),
    }.items()
}
SUBPACKAGES = [name.split(".")[1] for name in PUBLIC_API if "." in name]


def exposed(module):
    """The public names a module's namespace holds, modules aside."""
    return sorted(
        name
        for name, value in vars(module).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    )


class PublicAPITest(TestCase):
    def test_every_subpackage_exports_exactly_its_list(self):
        for package, names in PUBLIC_API.items():
            module = importlib.import_module(package)
            expected = sorted(names)
            if package == "keras_t2t":
                expected = sorted(names + SUBPACKAGES)
            with self.subTest(package=package):
                self.assertEqual(sorted(module.__all__), expected)
                for name in module.__all__:
                    self.assertTrue(hasattr(module, name), name)

    def test_no_other_public_names(self):
        for package, names in PUBLIC_API.items():
            module = importlib.import_module(package)
            extra = set(exposed(module)) - set(names)
            if package == "keras_t2t":
                extra -= {"teacher_vocabulary", "version"}  # Modules.
            with self.subTest(package=package):
                self.assertEqual(sorted(extra), [])

    def test_subpackages_are_listed(self):
        found = sorted(
            name
            for name, value in vars(keras_t2t).items()
            if isinstance(value, types.ModuleType)
            and hasattr(value, "__path__")  # A package, not a module.
        )
        self.assertEqual(found, sorted(SUBPACKAGES))
