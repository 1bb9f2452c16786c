"""Reading the markdown tables of the docs that tests compare."""


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
