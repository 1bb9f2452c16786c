"""pad_mm.datasets.generated: how every generated set is written (the two
splits' seeds, a staged folder that replaces the set only when complete)."""
import json

import numpy as np
import pytest
from PIL import Image

from pad_mm.datasets.generated import (VAL_SEED_OFFSET, ensure_generated,
                                       split_seeds, staged,
                                       write_generated_set)


def test_split_seeds():
    assert split_seeds(3, 10, 4) == (('train', 10, 3),
                                     ('val', 4, 3 + VAL_SEED_OFFSET))


def test_staged_replaces_the_set_only_when_complete(tmp_path):
    root = tmp_path / 'set'
    root.mkdir()
    (root / 'old.txt').write_text('old')
    with pytest.raises(RuntimeError):
        with staged(str(root), 'x') as tmp:
            (tmp_path / 'seen').write_text(tmp)
            raise RuntimeError('interrupted')
    assert (root / 'old.txt').read_text() == 'old'  # untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ['seen', 'set']
    with staged(str(root), 'x') as tmp:
        assert tmp.startswith(str(tmp_path / '.x-'))
        with open(f'{tmp}/new.txt', 'w') as f:
            f.write('new')
        assert (root / 'old.txt').exists()  # not yet replaced
    assert [p.name for p in root.iterdir()] == ['new.txt']
    assert sorted(p.name for p in tmp_path.iterdir()) == ['seen', 'set']


def test_write_generated_set_layout_and_seeds(tmp_path):
    firsts = []

    def sample(rng):
        v = int(rng.integers(0, 256))
        firsts.append(v)
        return (np.full((2, 3), v, np.uint8), np.zeros((2, 3), np.uint8))

    root = write_generated_set(str(tmp_path / 's'), 'demo', ('img', 'ann'),
                               sample, seed=7, num_train=2, num_val=1,
                               meta=dict(k=1))
    train = np.random.default_rng(7).integers(0, 256)
    val = np.random.default_rng(7 + VAL_SEED_OFFSET).integers(0, 256)
    assert firsts[0] == train and firsts[2] == val
    for split, i, v in (('train', 0, firsts[0]), ('train', 1, firsts[1]),
                        ('val', 0, firsts[2])):
        img = np.asarray(Image.open(f'{root}/img/{split}/{i:06d}.png'))
        assert img.shape == (2, 3) and (img == v).all()
        assert (tmp_path / 's' / 'ann' / split / f'{i:06d}.png').is_file()
    assert json.loads((tmp_path / 's' / 'meta.json').read_text()) == \
        dict(k=1)


def test_ensure_generated_writes_only_what_differs(tmp_path):
    calls = []

    def make(root, **want):
        calls.append(want)
        (tmp_path / 's').mkdir(exist_ok=True)
        (tmp_path / 's' / 'meta.json').write_text(
            json.dumps(dict(version=2, **want)))

    root = str(tmp_path / 's')
    assert ensure_generated(root, 2, dict(seed=0, n=3), make) is True
    assert ensure_generated(root, 2, dict(seed=0, n=3), make) is False
    assert ensure_generated(root, 2, dict(seed=1, n=3), make) is True
    assert ensure_generated(root, 3, dict(seed=1, n=3), make) is True
    assert calls == [dict(seed=0, n=3), dict(seed=1, n=3),
                     dict(seed=1, n=3)]
