import os
import numpy as np
import pytest
from PIL import Image


def two_class_images(path, n_train: int, n_valid: int, levels=(60, 190), noise: float = 40, seed: int = 0):
    "Write `path/{train,valid}/{a,b}/i.png`: 16x16 RGB images around grey level `levels[k]` of class k, with Gaussian noise."
    rng = np.random.default_rng(seed)
    for split, n in (('train', n_train), ('valid', n_valid)):
        for cls, level in zip(('a', 'b'), levels):
            (path/split/cls).mkdir(parents=True)
            for i in range(n // 2):
                img = (np.full((16, 16, 3), level, np.uint8) + rng.normal(0, noise, (16, 16, 3))).clip(0, 255)
                Image.fromarray(img.astype(np.uint8)).save(path/split/cls/f'{i}.png')
    return path


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
