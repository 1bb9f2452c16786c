"""The GPU check's JSON as markdown: one row per section, then the speed,
memory and model figures against issue 27's targets."""
from __future__ import annotations

__all__ = ['markdown_summary']


def _f(v, fmt: str = '.2f') -> str:
    return '-' if v is None else format(v, fmt)


def _tiles(t: dict | None) -> str:
    return '-' if t is None else 'x'.join(str(t[k]) for k in ('BM', 'BN',
                                                              'BK'))


def markdown_summary(data: dict) -> str:
    """Sections (status, cases passed / failed / skipped, seconds), then
    the ratios to cuDNN and to the vanilla model."""
    rows = ['| # | section | status | passed | failed or error | skipped '
            '| seconds |', '|---|---|---|---|---|---|---|']
    for name, s in data['sections'].items():
        cases = s.get('cases', [])
        n = {k: sum(c.get('status') in k for c in cases) for k in (
            ('passed', ), ('failed', 'error'), ('skipped', ))}
        rows.append(f"| {s['index']} | {name} | {s['status']} | "
                    f"{n[('passed', )]} | {n[('failed', 'error')]} | "
                    f"{n[('skipped', )]} | {_f(s.get('wall_s'), '.1f')} |")
    speed = data['sections'].get('speed', {}).get('cases', [])
    if any('fwd_bwd' in c for c in speed):
        rows += ['', '| shape | fwd triton | fwd+bwd triton | fwd+bwd '
                 'triton, GEMM backward | fwd+bwd ref | fwd+bwd auto | hard '
                 'triton | hard auto | values |',
                 '|---|---|---|---|---|---|---|---|---|']
        for c in speed:
            if 'fwd_bwd' not in c:
                continue
            r = {m: c[m]['ratio_to_cudnn'] for m in (
                'fwd', 'fwd_bwd', 'hard_inference')}
            rows.append(
                f"| {c['name']} | {_f(r['fwd']['triton'])}x | "
                f"{_f(r['fwd_bwd']['triton'])}x | "
                f"{_f(r['fwd_bwd'].get('triton_gemm'))}x | "
                f"{_f(r['fwd_bwd']['reference'])}x | "
                f"{_f(r['fwd_bwd']['auto'])}x | "
                f"{_f(r['hard_inference']['triton'])}x | "
                f"{_f(r['hard_inference']['auto'])}x | "
                f"{'ok' if c.get('values_ok') else 'WRONG'} |")
    for c in speed:
        if 'kernels' not in c or not c['name'].startswith('tile_sweep'):
            continue
        rows += ['', f"Tile sweep, {c['name'].split('/', 1)[1]}:", '',
                 '| kernel | default tiles | us | best tiles | us | '
                 'default / best | values |', '|---|---|---|---|---|---|---|']
        for k, v in c['kernels'].items():
            cands = v['candidates']
            best = next((r for r in cands if r['tiles'] == v['best']), None)
            rows.append(
                f"| {k} | {_tiles(v['default'])} | {_f(cands[0]['us'], '.1f')}"
                f" | {_tiles(v['best'])} | "
                f"{_f(best['us'] if best else None, '.1f')} | "
                f"{_f(v['gain'])}x | "
                f"{'ok' if all(r['values_ok'] for r in cands) else 'WRONG'}"
                ' |')
    mem = data['sections'].get('memory', {}).get('cases', [])
    if any('fwd_bwd' in c for c in mem):
        rows += ['', '| shape | fwd+bwd peak triton / cuDNN | triton, GEMM '
                 'backward | reference | auto | hard triton |',
                 '|---|---|---|---|---|---|']
        for c in mem:
            if 'fwd_bwd' in c:
                r, h = (c[m]['ratio_to_cudnn'] for m in ('fwd_bwd',
                                                          'hard_inference'))
                rows.append(f"| {c['name']} | {_f(r['triton'])}x | "
                            f"{_f(r.get('triton_gemm'))}x | "
                            f"{_f(r['reference'])}x | {_f(r['auto'])}x | "
                            f"{_f(h['triton'])}x |")
    model = data['sections'].get('model', {}).get('cases', [])
    for c in model:
        if 'step_ratio' in c:
            rows += ['', f"DeepLabV3+ R101 step, PAD / vanilla: "
                     f"{_f(c['step_ratio'])}x time, "
                     f"{_f(c['peak_ratio'])}x peak memory, "
                     f"{_f(c['first_step_ratio'])}x first step."]
    return '\n'.join(rows)
