"""A folder named ``pad_mm`` in the working directory (the clone itself,
seen from the folder that holds it) shadows an editable install: ``import
pad_mm`` becomes an empty namespace package, nothing of
``pad_mm/__init__.py`` runs and nothing is registered.

setuptools' editable install (``pip install -e .``, what
``tools/setup_env.sh`` does) finds ``pad_mm`` through an import hook that
comes after Python's path search, so a ``pad_mm`` folder on ``sys.path``
wins. Each test runs in a subprocess with such a hook (a ``sitecustomize``
that appends it, as setuptools' ``.pth`` file does) pointing at this
checkout's package, from a temporary folder holding a clone-shaped
``pad_mm/`` tree; the tools run from an installed-like location
(``<site>/pad_mm/.mim/tools``, as ``mim train`` runs them), where they do
not put a checkout first on ``sys.path``.
"""
import os
import os.path as osp
import subprocess
import sys
import textwrap

import pytest

REPO = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))

FINDER = '''
import sys
from importlib.machinery import PathFinder
from importlib.util import spec_from_file_location

PKG = {pkg!r}


class EditableFinder:  # as setuptools' editable finder: after PathFinder
    @classmethod
    def find_spec(cls, fullname, path=None, target=None):
        if fullname == 'pad_mm':
            return spec_from_file_location(
                'pad_mm', PKG + '/__init__.py',
                submodule_search_locations=[PKG])
        if fullname.rpartition('.')[0] == 'pad_mm':
            return PathFinder.find_spec(fullname, path=[PKG])
        return None


sys.meta_path.append(EditableFinder)
'''


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp('shadow')
    site = root / 'site'
    site.mkdir()
    (site / 'sitecustomize.py').write_text(
        FINDER.format(pkg=osp.join(REPO, 'pad_mm')))
    # an installed package's tool folder, as mim runs the tools
    mim = site / 'installed' / 'pad_mm' / '.mim'
    mim.mkdir(parents=True)
    os.symlink(osp.join(REPO, 'tools'), mim / 'tools')
    # the folder that holds a clone named pad_mm (no __init__.py at its top)
    home = root / 'home'
    for sub in ('pad_mm/pad_mm', 'pad_mm/tools', 'pad_mm/configs'):
        (home / sub).mkdir(parents=True)
    elsewhere = root / 'elsewhere'
    elsewhere.mkdir()
    env = dict(os.environ)
    # the working directory on sys.path, as `PYTHONPATH=.` or `python -m`
    env['PYTHONPATH'] = os.pathsep.join([str(site), '.'])
    env.pop('PYTHONSTARTUP', None)
    return dict(home=str(home), elsewhere=str(elsewhere), env=env,
                tools=str(mim / 'tools'), clone=str(home / 'pad_mm'))


def _run(setup, cwd, *args, timeout=300):
    return subprocess.run([sys.executable, *args], cwd=cwd, env=setup['env'],
                          capture_output=True, text=True, timeout=timeout)


def _assert_clear(setup, stderr):
    """The one message: which folder, what happened, what to do."""
    assert f""""import pad_mm" found the folder '{setup['clone']}', not the \
installed pad_mm""" in stderr, stderr[-3000:]
    assert 'empty namespace package and registers nothing' in stderr
    assert 'Run from another directory' in stderr


@pytest.mark.parametrize('tool', ['train.py', 'publish_model.py',
                                  'analysis_tools/sweep.py'])
def test_tool_start_names_the_shadowing_folder(setup, tool):
    path = osp.join(setup['tools'], tool)
    res = _run(setup, setup['home'], path, 'no_such_config.py', 'x.pth',
               '--seeds', '0', '--work-dir', 'w')
    _assert_clear(setup, res.stderr)
    assert res.returncode == 2
    # one line, before anything is built or parsed
    assert res.stderr.startswith('error: "import pad_mm"'), res.stderr[-2000:]
    assert res.stderr.strip().count('\n') == 0, res.stderr[-2000:]


def test_tool_elsewhere_is_not_flagged(setup):
    """Control: the same install and tool from a folder without a pad_mm
    folder finds the real package (the tool gets to its own argument
    check)."""
    res = _run(setup, setup['elsewhere'], osp.join(setup['tools'],
                                                   'train.py'),
               'no_such_config.py')
    assert res.returncode == 2
    assert 'shadows' not in res.stderr
    assert "config='no_such_config.py'" in res.stderr, res.stderr[-2000:]


def test_launch_names_the_shadowing_folder(setup):
    script = osp.join(setup['home'], 'script.py')
    with open(script, 'w') as f:
        f.write('print("ran")\n')
    res = _run(setup, setup['home'], '-m', 'pad_mm.utils.launch', script)
    _assert_clear(setup, res.stderr)
    assert res.returncode == 2
    assert 'ran' not in res.stdout


def test_import_task_warns(setup):
    """``import pad_mm.cls`` still registers (its submodules import through
    the hook) but warns that ``pad_mm`` itself is shadowed."""
    code = textwrap.dedent('''
        import warnings
        warnings.simplefilter('always')
        import pad_mm
        print('namespace' if getattr(pad_mm, '__file__', None) is None
              else 'package')
        import pad_mm.cls
    ''')
    res = _run(setup, setup['home'], '-c', code)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.split() == ['namespace']
    _assert_clear(setup, res.stderr)
    res = _run(setup, setup['elsewhere'], '-c', code)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.split() == ['package']
    assert 'shadows' not in res.stderr


def test_shadowing_folders_in_process(monkeypatch):
    import types

    from pad_mm.utils.cli import shadow_message, shadowing_folders
    assert shadowing_folders() is None  # this process: the real package
    fake = types.ModuleType('pad_mm')
    fake.__file__ = None
    fake.__path__ = ['/somewhere/pad_mm']
    monkeypatch.setitem(sys.modules, 'pad_mm', fake)
    assert shadowing_folders() == ['/somewhere/pad_mm']
    message = shadow_message(['/somewhere/pad_mm'])
    assert "'/somewhere/pad_mm'" in message
    assert 'cd into the clone' in message
