import keras
import pytest


def pytest_report_header(config):
    return f"keras backend: {keras.config.backend()}"


def pytest_addoption(parser):
    parser.addoption(
        "--run-large",
        action="store_true",
        help="Run the tests marked `large` too (`nox -s tests_large`).",
    )


def pytest_collection_modifyitems(config, items):
    if config.getoption("--run-large"):
        return
    skip = pytest.mark.skip(
        reason="large (minutes): run with --run-large, or nox -s tests_large"
    )
    for item in items:
        if "large" in item.keywords:
            item.add_marker(skip)
