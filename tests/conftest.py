import keras


def pytest_report_header(config):
    return f"keras backend: {keras.config.backend()}"
