"""The one spec of every PAD layer setting, and its parser.

Every place that reads PAD settings goes through this module:
:class:`~pad_mm.models.PADConv2d` (its keyword arguments, or an already
parsed :class:`PADSettings`), :func:`~pad_mm.models.convert_to_pad` and the
``PADBackbone`` builder (the ``pad_cfg`` entries, see
:mod:`pad_mm.models.pad_cfg`) and the pre-flight check of
``tools/train.py``. Bad values raise one :class:`PADConfigError` naming the
field path (``model.backbone.pad_cfg[1].dilations``), the value and what is
allowed.

The spec is the dataclass :class:`PADSettings` itself: each field carries
its default and, in its metadata, what is allowed, a one-line doc and the
check. To add a setting, add one field with :func:`setting` (and the
keyword to :class:`PADConv2d` if the layer needs it); the parser, the
error messages and the argument table of docs/user_guides/pad_layers.md
(see :func:`settings_table`, tested against that page) follow.

A default that depends on settings parsed before it (e.g. an activation
per aggregation) is ``setting(..., default_of=lambda earlier: ...)``; a
keyword whose value is :data:`UNSET` (or a missing key) gets that default.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pad_mm.ops import available_impls, check_dilations, check_tau

from .aggregation import AGGREGATION_TYPES
from .prior import (UNSET, act_name, activation_class, default_act_cfg,
                    prior_init_biases)

__all__ = [
    'PADConfigError', 'PADSettings', 'setting', 'parse_settings',
    'settings_table', 'setting_specs', 'AGGREGATIONS', 'TRAIN_MODES',
    'EVAL_MODES', 'UNSET', 'DILATION_MODES', 'default_act_cfg',
    'check_choice', 'Choice'
]

#: the registered aggregations (:mod:`.aggregation`)
AGGREGATIONS = tuple(AGGREGATION_TYPES)
TRAIN_MODES = ('gumbel', 'gumbel_hard')
EVAL_MODES = ('hard', 'soft', 'gumbel')
DILATION_MODES = ('relative', 'absolute')


def check_choice(value: Any, options: Sequence[str], field: str) -> str:
    """``value`` if it is one of ``options``, else :class:`PADConfigError`
    naming ``field`` (e.g. for mode setters: ``layer.eval_mode = 'hrad'``).
    """
    if not isinstance(value, str) or value not in options:
        raise PADConfigError(field, value, f'one of {list(options)}')
    return value


class Choice:
    """An attribute that takes only one of its ``options`` (checked by
    :func:`check_choice`, naming the attribute), e.g. a layer's mode.

    Args:
        options: the allowed strings, or a callable returning them (asked
            at each assignment).
        doc: the attribute's docstring.

    The value is kept in the instance as ``_<name>``.
    """

    def __init__(self, options: Sequence[str] | Callable[[], Sequence[str]],
                 doc: str) -> None:
        self.options = options
        self.__doc__ = doc

    def __set_name__(self, owner: type, name: str) -> None:
        self.name, self.slot = name, '_' + name

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        return self if obj is None else getattr(obj, self.slot)

    def __set__(self, obj: Any, value: Any) -> None:
        options = self.options() if callable(self.options) else self.options
        setattr(obj, self.slot, check_choice(value, options, self.name))


class PADConfigError(ValueError):
    """A config field or argument has a value pad_mm cannot run with.

    Attributes:
        field: the field path, e.g. ``model.backbone.pad_cfg[1].dilations``.
        value: the offending value.
        allowed: what is allowed, in words.
        why: what is wrong with the value (optional).
    """

    def __init__(self, field: str, value: Any, allowed: str,
                 why: str | None = None) -> None:
        self.field, self.value, self.allowed, self.why = (field, value,
                                                          allowed, why)
        text = f'{field}={value!r}'
        if why:
            text += f': {why}'
        super().__init__(f'{text}; allowed: {allowed}')

    def at(self, prefix: str) -> PADConfigError:
        """The same error with ``prefix`` in front of the field path
        (``'model.backbone'`` + ``'pad_cfg.tau'``)."""
        path = f'{prefix}.{self.field}' if self.field else prefix
        return type(self)(path, self.value, self.allowed, self.why)

    def __reduce__(self):  # picklable (multiprocessing, pytest-xdist)
        return type(self), (self.field, self.value, self.allowed, self.why)


class _Invalid(Exception):
    """Raised by a setting's check: what is wrong (and, optionally, what
    is allowed when it depends on other settings)."""

    def __init__(self, why: str | None = None, allowed: str | None = None,
                 key: str | None = None, value: Any = None) -> None:
        super().__init__(why)
        self.why, self.allowed, self.key, self.value = (why, allowed, key,
                                                        value)


Check = Callable[[Any, Mapping[str, Any]], Any]


def setting(default: Any, allowed: str | Callable[[], str], doc: str,
            check: Check, default_doc: str | None = None,
            default_of: Callable[[Mapping[str, Any]], Any] | None = None
            ) -> Any:
    """A :class:`PADSettings` field.

    Args:
        default: the default (of the dataclass, and of the parser unless
            ``default_of`` is given).
        allowed: what is allowed, in words (or a function giving it).
        doc: one line for the argument table.
        check: ``check(value, earlier)`` returns the normalised value or
            raises ``_Invalid`` (``earlier``: the settings parsed before
            this one, in field order).
        default_doc: the default as the argument table shows it.
        default_of: ``default_of(earlier)``: a default that depends on
            earlier settings, used when the value is missing or
            :data:`UNSET`.
    """
    return field(default=default, metadata=dict(
        allowed=allowed, doc=doc, check=check, default_of=default_of,
        default_doc=default_doc if default_doc is not None else
        repr(default)))


# ----------------------------------------------------------------- checks
def _choice(options: Sequence[str]) -> Check:

    def check(value, earlier):
        if not isinstance(value, str) or value not in options:
            raise _Invalid()
        return value

    return check


def _check_dilations(value, earlier):
    try:
        return check_dilations(value)
    except (TypeError, ValueError) as e:
        raise _Invalid(str(e)) from None


def _check_tau(value, earlier):
    try:
        return check_tau(value)
    except (TypeError, ValueError):
        raise _Invalid() from None


def _check_act_cfg(value, earlier):
    if value is None:
        return None
    if not isinstance(value, Mapping) or 'type' not in value:
        raise _Invalid()
    typ = value['type']
    if isinstance(typ, str):
        if activation_class(typ) is None:
            raise _Invalid(
                'not a registered activation',
                allowed='a registered activation (ScaledTanh, ReLU, GELU, '
                'Tanh, Sigmoid, ...)', key='type', value=typ)
    return dict(value)


def _check_init_dilation(value, earlier):
    dilations = earlier['dilations']
    if value is None:
        return None
    if isinstance(value, bool) or value not in dilations:
        raise _Invalid(allowed=f'None (the native dilation) or one of '
                       f'dilations={dilations}')
    return value


def _check_margin(value, earlier):
    if value is None:
        margin = None
    elif isinstance(value, bool) or not isinstance(value, (int, float)) or \
            not math.isfinite(value) or value <= 0:
        raise _Invalid()
    else:
        margin = float(value)
    # f must be able to express the margin after f (eqs. 3-5 apply f last)
    try:
        prior_init_biases(earlier['act_cfg'], margin,
                          len(earlier['dilations']), 0)
    except ValueError as e:
        raise _Invalid(str(e), allowed='a margin the range of f can '
                       'express') from None
    return margin


def _check_bool(value, earlier):
    if not isinstance(value, bool):
        raise _Invalid()
    return value


def _impls_allowed() -> str:
    return f'one of {available_impls()}'


def _check_impl(value, earlier):
    if not isinstance(value, str) or value not in available_impls():
        raise _Invalid()
    return value


# ------------------------------------------------------------------- spec
@dataclass(frozen=True)
class PADSettings:
    """The PAD settings of one layer (the keyword arguments of
    :class:`~pad_mm.models.PADConv2d` besides those of ``nn.Conv2d``).

    Build it with :func:`parse_settings`, which checks every value; the
    field metadata is the spec (``allowed``, ``doc``, ``check``).
    """

    dilations: tuple[int, ...] = setting(
        (1, 2, 4),
        'a non-empty list/tuple of distinct positive ints (multiples of '
        'the conv dilation)',
        "options, as multiples of the conv's own `dilation` (a conv with "
        '`dilation=2` chooses among 2, 4, 8), or absolute with '
        "`dilation_mode='absolute'`", _check_dilations)
    dilation_mode: str = setting(
        'relative', f'one of {list(DILATION_MODES)}',
        "`'relative'`: `dilations` are multiples of the conv's own "
        "dilation; `'absolute'`: the dilations themselves (must contain the "
        "conv's own, e.g. the paper's literal 1, 2, 4)",
        _choice(DILATION_MODES))
    tau: float = setting(
        1.0, 'a finite number > 0',
        'Gumbel-Softmax temperature, set each iteration by `PADTauHook`; '
        'saved in the checkpoint (`pad_tau`), so test runs and the analysis '
        'tools use the trained value', _check_tau)
    train_mode: str = setting(
        'gumbel', f'one of {list(TRAIN_MODES)}',
        "`'gumbel'` (soft sample) or `'gumbel_hard'` (straight-through)",
        _choice(TRAIN_MODES))
    eval_mode: str = setting(
        'hard', f'one of {list(EVAL_MODES)}',
        "`'hard'` (argmax), `'soft'` (softmax, no noise), `'gumbel'` "
        '(noisy)', _choice(EVAL_MODES))
    aggregation: str = setting(
        'markov', f'one of {list(AGGREGATIONS)}',
        '; '.join(f"`'{name}'` {cls.doc}"
                  for name, cls in AGGREGATION_TYPES.items()),
        _choice(AGGREGATIONS))
    act_cfg: dict | None = setting(
        UNSET, "None or an activation config dict with 'type', e.g. "
        "dict(type='ScaledTanh', scale=2.0)",
        'the activation f of eqs. 3-5 (mmcv config), identity when None; '
        f'default: `{act_name(default_act_cfg("markov"))}` (s0 tanh(z) '
        'times a learnable per-layer exp(rho), so the priors can become '
        "confident) for the paper's aggregations, identity for "
        "`'static'`", _check_act_cfg,
        default_doc='per aggregation',
        default_of=lambda earlier: default_act_cfg(earlier['aggregation']))
    init_dilation: int | None = setting(
        None, 'None or one of dilations',
        'option favoured by the initial priors (None = the native '
        'dilation)', _check_init_dilation)
    init_margin: float | None = setting(
        None, 'None or a finite number > 0 that f can express',
        'its logit margin after f (None: 2.0, or 3/4 of the widest margin a '
        'bounded f allows, e.g. 1.5 under a plain tanh): prior '
        'weights start at zero and the biases are f^-1 of the targets, so a '
        "freshly converted model in `eval_mode='hard'` equals the vanilla "
        'one, and training with noise still samples the other options '
        '(P(native) = e^2/(e^2+2) = 0.79 for D = 3 and margin 2)',
        _check_margin)
    impl: str = setting(
        'auto', _impls_allowed,
        "PAD implementation; `'reference'` forces one conv per dilation",
        _check_impl)
    reinit_priors_on_mismatch: bool = setting(
        False, 'True or False',
        'a checkpoint whose absolute options (`pad_dilations`) differ from '
        "the layer's is refused; `True` loads everything else and "
        're-initialises those priors (one log line each)', _check_bool)

    def as_kwargs(self) -> dict[str, Any]:
        """The settings as keyword arguments of ``PADConv2d``."""
        return {f.name: getattr(self, f.name)
                for f in dataclasses.fields(self)}


def setting_specs() -> list[dataclasses.Field]:
    """The fields of :class:`PADSettings`, in parse order."""
    return list(dataclasses.fields(PADSettings))


def _setting_names() -> tuple[str, ...]:
    return tuple(f.name for f in setting_specs())


def _allowed(spec: dataclasses.Field) -> str:
    allowed = spec.metadata['allowed']
    return allowed() if callable(allowed) else allowed


def _join(path: str, key: str) -> str:
    return f'{path}.{key}' if path else key


def parse_settings(values: Mapping[str, Any] | None = None, path: str = '',
                   ignore: Sequence[str] = ()) -> PADSettings:
    """Check PAD settings and return them typed; missing ones get their
    default.

    Args:
        values: setting name -> value.
        path: field path of ``values`` in the config, for the errors.
        ignore: other keys allowed in ``values`` (e.g. the chain keys).

    Raises:
        PADConfigError: an unknown key or a bad value, naming
            ``<path>.<key>``, the value and what is allowed.
    """
    values = dict(values or {})
    names = _setting_names()
    unknown = sorted(k for k in values if k not in names and k not in ignore)
    if unknown:
        raise PADConfigError(
            _join(path, str(unknown[0])), values[unknown[0]],
            f'keys {list(ignore) + list(names)}',
            f'unknown keys {unknown}')
    parsed: dict[str, Any] = {}
    for spec in setting_specs():
        value = values.get(spec.name, UNSET)
        if value is UNSET:
            default_of = spec.metadata['default_of']
            value = spec.default if default_of is None else default_of(parsed)
        try:
            parsed[spec.name] = spec.metadata['check'](value, parsed)
        except _Invalid as e:
            where = _join(path, spec.name)
            raise PADConfigError(
                f'{where}.{e.key}' if e.key else where,
                e.value if e.key else value, e.allowed or _allowed(spec),
                e.why) from None
    return PADSettings(**parsed)


def settings_table() -> str:
    """The Markdown table of the settings (docs/user_guides/pad_layers.md:
    ``PADConv2d``
    arguments), generated from the spec."""
    rows = ['| argument | default | meaning |', '| --- | --- | --- |']
    for spec in setting_specs():
        rows.append(f"| `{spec.name}` | `{spec.metadata['default_doc']}` | "
                    f"{spec.metadata['doc']} |")
    return '\n'.join(rows)


if __name__ == '__main__':  # python -m pad_mm.models.layers.settings
    print(settings_table())
