"""pytest fixtures: the Udacity-style checks in project_tests.py take the function under test."""

import os
import sys

import pytest

ROOT = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import main as _project  # noqa: E402
import project_tests  # noqa: E402

SHARED_SAMPLE = os.path.join(ROOT, "..", "shared", "data", "kitti_sample")


@pytest.fixture
def load_vgg():
    return _project.load_vgg


@pytest.fixture
def layers():
    return _project.layers


@pytest.fixture
def optimize():
    return _project.optimize


@pytest.fixture
def train_nn():
    return _project.train_nn


@pytest.fixture
def data_dir():
    return os.environ.get("DATA_DIR", os.path.join(ROOT, "data"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    """project_tests.Skip (no dataset here) becomes a pytest skip with its message."""
    outcome = yield
    excinfo = outcome.excinfo
    if excinfo is not None and issubclass(excinfo[0], project_tests.Skip):
        outcome.force_exception(pytest.skip.Exception(str(excinfo[1]), _use_item_location=True))
