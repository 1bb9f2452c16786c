import os.path as osp

import pytest

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..'))


@pytest.fixture(scope='session')
def repo_root():
    return ROOT
