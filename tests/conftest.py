import keras
import pytest


def pytest_addoption(parser):
    parser.addoption(
        "--run_large",
        action="store_true",
        default=False,
        help="Run the slow tests marked `large`.",
    )


def pytest_report_header(config):
    return f"keras backend: {keras.config.backend()}"


def pytest_collection_modifyitems(config, items):
    if config.getoption("--run_large"):
        return
    skip_large = pytest.mark.skip(reason="large test: pass --run_large")
    for item in items:
        if "large" in item.keywords:
            item.add_marker(skip_large)
