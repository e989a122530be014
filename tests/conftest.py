import os
import pytest


@pytest.fixture(autouse=True)
def _restorelab_home(tmp_path_factory, monkeypatch):
    "Every test gets its own RESTORELAB_HOME, so nothing touches ~/.restorelab and tests can't see each other's caches."
    home = tmp_path_factory.mktemp('restorelab_home')
    monkeypatch.setenv('RESTORELAB_HOME', str(home))
    yield home


def pytest_configure(config):
    config.addinivalue_line('markers', 'slow: long, faithful runs (run with -m slow)')
    # torchvision 0.29 deprecates its image decoders (restorelab silences this in its own module too)
    config.addinivalue_line('filterwarnings', 'ignore:The image decoding and encoding capabilities:DeprecationWarning')


def pytest_collection_modifyitems(config, items):
    "Tests marked `slow` run only when asked for (`pytest -m slow`): the default run stays quick."
    if 'slow' in (config.getoption('markexpr') or ''): return
    skip = pytest.mark.skip(reason='slow: run with -m slow')
    for item in items:
        if 'slow' in item.keywords: item.add_marker(skip)
