"""The README is a front door (at most 300 lines), and every relative link
in it, in docs/**/*.md and in the config READMEs resolves: to a file or
folder of the repository and, with a ``#anchor``, to a heading of the
markdown file it names."""
import glob
import os.path as osp
import re

import pytest

from helpers.markdown import md_anchors, md_links, md_slug

README_MAX_LINES = 300


def _docs(repo_root):
    files = [osp.join(repo_root, 'README.md')]
    files += sorted(glob.glob(osp.join(repo_root, 'docs', '**', '*.md'),
                              recursive=True))
    files += sorted(glob.glob(osp.join(repo_root, 'configs', '**',
                                       'README.md'), recursive=True))
    return files


def broken_links(path: str, repo_root: str) -> list[str]:
    """'file:line: target (why)' for each relative link of the markdown
    file ``path`` that does not resolve."""
    with open(path) as f:
        text = f.read()
    broken = []
    rel = osp.relpath(path, repo_root)
    for line, target in md_links(text):
        if re.match(r'[A-Za-z][A-Za-z0-9+.-]*:', target):  # http:, mailto:
            continue
        file_part, _, anchor = target.partition('#')
        dest = (osp.normpath(osp.join(osp.dirname(path), file_part))
                if file_part else path)
        where = f'{rel}:{line}: {target}'
        if not osp.realpath(dest).startswith(osp.realpath(repo_root)):
            broken.append(f'{where} (outside the repository)')
        elif not osp.exists(dest):
            broken.append(f'{where} (no such file)')
        elif anchor:
            if not dest.endswith('.md') or osp.isdir(dest):
                broken.append(f'{where} (an anchor into a non-markdown '
                              'target)')
                continue
            with open(dest) as f:
                if anchor not in md_anchors(f.read()):
                    broken.append(f'{where} (no heading with this anchor)')
    return broken


def test_readme_is_a_front_door(repo_root):
    with open(osp.join(repo_root, 'README.md')) as f:
        lines = f.read().splitlines()
    assert len(lines) <= README_MAX_LINES, len(lines)


def test_every_relative_link_resolves(repo_root):
    files = _docs(repo_root)
    # the pages the README sends a reader to are all checked
    names = {osp.relpath(f, repo_root) for f in files}
    assert {'README.md', 'docs/get_started.md',
            'docs/user_guides/train_test.md',
            'docs/advanced/architecture.md'} <= names
    broken = [b for f in files for b in broken_links(f, repo_root)]
    assert not broken, '\n'.join(broken)


def test_readme_links_the_docs(repo_root):
    with open(osp.join(repo_root, 'README.md')) as f:
        targets = {t.partition('#')[0] for _, t in md_links(f.read())}
    for page in glob.glob(osp.join(repo_root, 'docs', '**', '*.md'),
                          recursive=True):
        rel = osp.relpath(page, repo_root)
        if osp.basename(page) == 'summary.md':  # sweep output, linked as such
            continue
        assert rel in targets, f'README.md does not link {rel}'


@pytest.mark.parametrize('heading, slug', [
    ('Dilation maps (paper Fig. 4)', 'dilation-maps-paper-fig-4'),
    ('GPU: what has and has not been measured',
     'gpu-what-has-and-has-not-been-measured'),
    ('Sparse hard inference (deploying a PAD model)',
     'sparse-hard-inference-deploying-a-pad-model'),
    ('σ²(d) is comparable only between configs with the same f',
     'σ²d-is-comparable-only-between-configs-with-the-same-f'),
    ('`PADConv2d` [arguments](x.md)', 'padconv2d-arguments'),
])
def test_slug_is_githubs(heading, slug):
    assert md_slug(heading) == slug


def test_broken_links_are_found(tmp_path):
    (tmp_path / 'docs').mkdir()
    (tmp_path / 'a.md').write_text('# Top\n\n## Top\n\ntext\n')
    (tmp_path / 'docs' / 'page.md').write_text(
        '# Page\n\n'
        '[ok](../a.md) [ok](../a.md#top-1) [ok](#page) [web](https://x.org)\n'
        '![img](../missing.png) [bad anchor](../a.md#nowhere)\n'
        '`[in code](nowhere.md)`\n'
        '```\n[in a block](nowhere.md)\n```\n'
        '[out](../../elsewhere.md) [self](#no-heading)\n')
    broken = broken_links(str(tmp_path / 'docs' / 'page.md'), str(tmp_path))
    assert broken == [
        'docs/page.md:4: ../missing.png (no such file)',
        'docs/page.md:4: ../a.md#nowhere (no heading with this anchor)',
        'docs/page.md:9: ../../elsewhere.md (outside the repository)',
        'docs/page.md:9: #no-heading (no heading with this anchor)',
    ]


def test_readme_python_snippet_runs(repo_root):
    """The README's Python usage snippet runs as printed and does what its
    comments say."""
    with open(osp.join(repo_root, 'README.md')) as f:
        text = f.read()
    blocks = re.findall(r'^```python\n(.*?)^```', text, flags=re.M | re.S)
    (snippet, ) = [b for b in blocks if 'convert_to_pad(' in b]
    scope = {}
    exec(compile(snippet, 'README.md', 'exec'), scope)
    from pad_mm.models import PADConv2d
    assert tuple(scope['y'].shape) == (2, 64, 32, 32)
    convs = [n for n, m in scope['model'].named_modules()
             if isinstance(m, PADConv2d)]
    assert convs == [f'layer2.{i}.conv2' for i in range(4)]


def _suite_size(request, repo_root) -> int:
    """The number of tests this session collected, when it is the whole
    suite as ``tools/run_tests.sh`` runs it (``pytest tests``, no ``-k`` or
    ``-m``); otherwise the test skips."""
    args = [osp.abspath(a) for a in request.config.args]
    opt = request.config.option
    if args != [osp.join(repo_root, 'tests')] or opt.keyword or \
            opt.markexpr:
        pytest.skip('checks the size of the whole suite: run '
                    'bash tools/run_tests.sh')
    return len(request.session.items)


def test_docs_state_the_suites_size(request, repo_root):
    """The README and docs/get_started.md state how many tests the suite
    has, within 5% of what this run collected (so the figure is refreshed
    as the suite grows)."""
    n = _suite_size(request, repo_root)
    for name in ('README.md', osp.join('docs', 'get_started.md')):
        text = open(osp.join(repo_root, name)).read()
        m = re.search(r'\b(\d{3,5})\s+tests\b', text)
        assert m, f'{name} states no test count ("N tests")'
        stated = int(m.group(1))
        assert abs(stated - n) <= 0.05 * n, (name, stated, n)
