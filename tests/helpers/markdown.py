"""Reading the markdown tables, links and headings of the docs that tests
check."""
import re


def md_table(text: str, first_cell: str) -> list[list[str]]:
    """The rows (lists of stripped cells, the header and separator rows
    included) of the first markdown table in ``text`` whose header row
    starts with ``| first_cell |``."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith(f'| {first_cell} |'):
            rows = []
            for row in lines[i:]:
                if not row.startswith('|'):
                    break
                rows.append([c.strip() for c in row.strip('|').split('|')])
            return rows
    raise AssertionError(f'no table starting with {first_cell!r}')


_FENCE = re.compile(r'^\s*(```|~~~)')
_CODE_SPAN = re.compile(r'(`+)(?:(?!\1).)+?\1')
_LINK = re.compile(r'!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]*)>?'
                   r'(?:\s+"[^"]*")?\s*\)')
_HEADING = re.compile(r'^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$')


def _prose_lines(text: str):
    """(line number, line) of ``text`` outside fenced code blocks."""
    fence = None
    for number, line in enumerate(text.splitlines(), 1):
        m = _FENCE.match(line)
        if m:
            if fence is None:
                fence = m.group(1)
            elif m.group(1) == fence:
                fence = None
            continue
        if fence is None:
            yield number, line


def md_links(text: str) -> list[tuple[int, str]]:
    """(line number, target) of every inline link and image of ``text``,
    code blocks and code spans excluded."""
    links = []
    for number, line in _prose_lines(text):
        line = _CODE_SPAN.sub('code', line)
        links += [(number, m.group(1)) for m in _LINK.finditer(line)]
    return links


def md_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: links reduced to their text,
    lower case, punctuation dropped (letters, digits, ``_``, ``-`` and
    spaces kept), spaces as ``-``."""
    text = re.sub(r'!?\[([^\]]*)\]\([^)]*\)', r'\1', heading)
    text = re.sub(r'[^\w\- ]', '', text.strip().lower())
    return text.replace(' ', '-')


def md_anchors(text: str) -> set[str]:
    """The anchors of the headings of ``text`` (GitHub's: a repeated slug
    gets ``-1``, ``-2``, ...)."""
    anchors, seen = set(), {}
    for _, line in _prose_lines(text):
        m = _HEADING.match(line)
        if not m:
            continue
        slug = md_slug(m.group(2))
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f'{slug}-{count}')
    return anchors
