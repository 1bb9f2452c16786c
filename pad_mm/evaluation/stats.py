"""Statistics of repeated runs: mean +- std over seeds and paired
differences with a Student-t confidence interval.

The t quantiles are scipy's (``scipy.stats.t.ppf``; scipy comes with
mmsegmentation). Values are plain Python floats; NaN marks what a sample
of that size cannot give (a std of one value, an interval of one pair).
"""
from __future__ import annotations

import math

__all__ = ['t_quantile', 'mean_std', 'paired_difference']


def t_quantile(p: float, df: float) -> float:
    """Quantile of Student's t distribution with ``df`` degrees of freedom
    (``t_quantile(0.975, 2) = 4.3027``).

    Raises:
        ValueError: ``p`` not in (0, 1) or ``df`` not > 0.
    """
    if not 0.0 < p < 1.0:
        raise ValueError(f'p must be in (0, 1), got {p!r}')
    if not df > 0:
        raise ValueError(f'df must be > 0, got {df!r}')
    from scipy.stats import t as student_t  # slow to import: on first use
    return float(student_t.ppf(p, df))


def mean_std(values: list[float]) -> tuple[float, float, int]:
    """Mean, sample standard deviation (ddof=1; NaN for n < 2) and n."""
    n = len(values)
    if n == 0:
        return math.nan, math.nan, 0
    mean = sum(values) / n
    if n < 2:
        return mean, math.nan, n
    var = sum((v - mean)**2 for v in values) / (n - 1)
    return mean, math.sqrt(var), n


def paired_difference(values: dict[int, float], baseline: dict[int, float],
                      level: float = 0.95) -> dict:
    """``values - baseline`` paired by seed (the seeds both have): mean,
    std, n and the ``level`` confidence interval
    ``mean +- t_{(1+level)/2, n-1} * std / sqrt(n)`` (NaN bounds for
    n < 2).

    Returns:
        ``dict(seeds, diffs, n, mean, std, level, t, ci_low, ci_high)``.
    """
    seeds = sorted(set(values) & set(baseline))
    diffs = [values[s] - baseline[s] for s in seeds]
    mean, std, n = mean_std(diffs)
    out = dict(seeds=seeds, diffs=diffs, n=n, mean=mean, std=std,
               level=level, t=math.nan, ci_low=math.nan, ci_high=math.nan)
    if n >= 2:
        t = t_quantile(0.5 + level / 2.0, n - 1)
        half = t * std / math.sqrt(n)
        out.update(t=t, ci_low=mean - half, ci_high=mean + half)
    return out
