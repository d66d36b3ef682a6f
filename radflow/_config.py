"""The one configuration system: how radflow reads and checks every YAML or JSON input.

Parameter files, IBSI configurations, study specs and cluster configurations are all read by
:func:`load_config` (a file) or :func:`parse_yaml` (text), and all checked with :class:`Rule`
objects. Errors are :class:`~radflow.errors.SettingsError` naming the file (or section), the
line where the reader knows it, the key, the value and what is allowed.

Reading
-------
``load_config(path, what="parameter file")``
    ``.yaml``/``.yml`` files with the YAML 1.2 core schema (the one PyRadiomics' reader,
    ruamel.yaml through pykwalify, uses: ``1e-5`` is a number, ``yes``/``on`` are strings),
    ``.json`` files with :mod:`json`. A duplicated key is an error in both (plain
    ``yaml.safe_load`` lets the last one silently win): ``"slurm.yaml: line 4: duplicate key
    'cores'"``. `what` names the kind of file (``"cluster configuration not found"``).
``parse_yaml(text, origin)``
    The same reader on a string (`origin` names it in errors).
:class:`YAML12Loader`
    The PyYAML loader class itself (a ``SafeLoader`` subclass), for ``yaml.load``.

Checking
--------
A :class:`Rule` says what one value may be: its `kind` (``"bool"``, ``"int"``, ``"float"``,
``"str"``, ``"mapping"`` or ``"any"``), whether it is a `sequence` of such values (list or
tuple; `lengths`/`min_length`), bounds (`low`, `high`, exclusive or not), `choices`,
whether null is allowed (`nullable`), whether it is `required` in a mapping, and optionally a
`convert` function for values no kind describes (interpolator codes, wavelet names), with the
`expected` text shown when it fails. A wrong type is an error: ``"25"`` is not a number, ``1``
is not ``true``, ``true`` is not an integer.

``check_value(rule, value, name)``
    The value in canonical form (sequences as tuples, floats as floats except that an integer
    stays one, see below) or ``SettingsError("<name>: <value> is not allowed; expected ...")``.
``check_mapping(mapping, rules, where)``
    Every key of `mapping` checked against ``rules`` (a dict key -> Rule); an unknown key is an
    error naming `where` with a "did you mean" suggestion and the valid keys, a missing
    required key too. Returns ``{key: canonical value}`` for the keys given (defaults are the
    caller's business, usually a frozen dataclass's). ``hint=`` gives a message of its own to
    some unknown keys (``"'kernelRadius' belongs in the voxelSetting section"``).
``suggest(word, candidates)``
    ``" (did you mean 'binWidth'?)"`` or ``""``: the closest candidate, case-insensitively
    (``closest(word, candidates)``: the candidate itself, or None).
:class:`Wording`
    The sentences of the messages (templates); the default one is above. A file format whose
    messages users already know may keep them by passing its own ``wording=`` (the IBSI
    configurations write ``"<where>.bin_width must be > 0, got -1"``).

An integer given for a ``"float"`` rule stays an ``int``: PyRadiomics names images from values
as written (LoG sigma ``1`` gives ``log-sigma-1-mm-3D``, ``1.0`` gives ``log-sigma-1-0-mm-3D``).
A rule with ``finite=False`` also accepts the strings ``"nan"``, ``"inf"``, ``"-inf"`` (the
spelling JSON needs for them); no other string is a number.

Examples
--------
>>> rules = {"binWidth": Rule("float", low=0, low_exclusive=True),
...          "distances": Rule("int", sequence=True, min_length=1, low=1)}
>>> check_mapping({"binWidth": 25, "distances": [1, 2]}, rules, "setting")
{'binWidth': 25, 'distances': (1, 2)}
>>> check_mapping({"binwidth": 25}, rules, "setting")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
radflow.errors.SettingsError: setting: unknown key 'binwidth' (did you mean 'binWidth'?); ...
>>> check_value(rules["binWidth"], "25", "setting 'binWidth'")
Traceback (most recent call last):
...
radflow.errors.SettingsError: setting 'binWidth': '25' is not allowed; expected a number > 0
"""

from __future__ import annotations

import difflib
import functools
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from numbers import Integral, Real
from os import PathLike
from pathlib import Path
from typing import Any

from radflow._lazy import load
from radflow.errors import SettingsError

# PyYAML (~9 ms) loads only when a file or text is read: `radflow extract` without a
# parameter file never needs it.
yaml = load("yaml")

__all__ = [
    "Rule",
    "Wording",
    "YAML12Loader",  # noqa: F822 (module __getattr__: built on first use)
    "check_mapping",
    "check_value",
    "closest",
    "describe",
    "load_config",
    "parse_yaml",
    "suggest",
]


# --- reading ------------------------------------------------------------------------------------


def load_config(
    path: str | PathLike,
    *,
    what: str = "configuration file",
    suffixes: Iterable[str] = (".yaml", ".yml", ".json"),
) -> Any:
    """The content of a YAML (1.2 core schema) or JSON file; duplicate keys refused.

    Parameters
    ----------
    path : str or path-like
        The file; its suffix picks the reader.
    what : str
        What the file is, for messages (``"parameter file"``, ``"IBSI configuration"``).
    suffixes : iterable of str
        Suffixes accepted (lower case, with the dot).

    Returns
    -------
    object
        What the file holds (None for an empty YAML file).

    Raises
    ------
    SettingsError
        The file is missing, unreadable, of another type, not valid YAML/JSON, or holds a
        duplicated key; the message starts with the path and gives the line where known.
    """
    path = Path(path)
    if not path.is_file():
        raise SettingsError(f"{path}: {what} not found")
    suffixes = tuple(suffixes)
    suffix = path.suffix.lower()
    if suffix not in suffixes:
        raise SettingsError(
            f"{path}: unknown {what} type {suffix!r}; expected {', '.join(suffixes)}"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(f"{path}: cannot read {what} ({exc})") from None
    if suffix == ".json":
        try:
            return json.loads(text, object_pairs_hook=_no_duplicates)
        except json.JSONDecodeError as exc:
            raise SettingsError(f"{path}: not valid JSON: line {exc.lineno}: {exc.msg}") from None
        except _DuplicateKey as exc:
            raise SettingsError(f"{path}: {exc}") from None
    return parse_yaml(text, str(path))


def parse_yaml(text: str, origin: str = "<string>") -> Any:
    """`text` read with :class:`YAML12Loader`; errors start with `origin` and give the line."""
    try:
        return yaml.load(text, Loader=_yaml_loader())  # a SafeLoader subclass
    except _DuplicateKey as exc:
        raise SettingsError(f"{origin}: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SettingsError(f"{origin}: not valid YAML: {where}{problem}") from None


class _DuplicateKey(ValueError):
    pass


def _no_duplicates(pairs):
    seen = {}
    for key, value in pairs:
        if key in seen:
            raise _DuplicateKey(f"duplicate key {key!r}")
        seen[key] = value
    return seen


def _construct_int(loader, node):
    text = loader.construct_scalar(node).replace("_", "")
    sign = -1 if text.startswith("-") else 1
    text = text.lstrip("+-")
    base = {"0b": 2, "0o": 8, "0x": 16}.get(text[:2], 10)
    return sign * int(text[2:] if base != 10 else text, base)


def _construct_float(loader, node):
    text = loader.construct_scalar(node).replace("_", "").lower()
    if text.endswith(".inf"):
        return float("-inf") if text.startswith("-") else float("inf")
    return float("nan") if text == ".nan" else float(text)


_TAG = "tag:yaml.org,2002:"


@functools.cache
def _yaml_loader() -> type:
    """:class:`YAML12Loader`, built on first use (PyYAML's import is ~9 ms of a command)."""

    class YAML12Loader(yaml.SafeLoader):
        """PyYAML's safe loader with YAML 1.2 core scalars and no duplicate keys.

        PyYAML implements YAML 1.1, where ``yes``/``on`` are booleans and ``1e-5`` is a
        string; PyRadiomics' reader follows YAML 1.2.
        """

        def construct_mapping(self, node, deep=False):
            seen = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                if key in seen:
                    line = key_node.start_mark.line + 1
                    raise _DuplicateKey(f"line {line}: duplicate key {key!r}")
                seen.add(key)
            return super().construct_mapping(node, deep=deep)

    YAML12Loader.__module__ = __name__
    YAML12Loader.__qualname__ = "YAML12Loader"
    YAML12Loader.yaml_implicit_resolvers = {
        first: [
            (tag, regexp)
            for tag, regexp in resolvers
            if tag not in {_TAG + t for t in ("bool", "int", "float")}
        ]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    YAML12Loader.add_implicit_resolver(
        _TAG + "bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
    )
    YAML12Loader.add_implicit_resolver(
        _TAG + "int",
        re.compile(r"^[-+]?(?:0b[01_]+|0o[0-7_]+|0x[0-9a-fA-F_]+|[0-9][0-9_]*)$"),
        list("-+0123456789"),
    )
    YAML12Loader.add_implicit_resolver(
        _TAG + "float",
        re.compile(
            r"^[-+]?(?:[0-9][0-9_]*\.[0-9_]*(?:[eE][-+]?[0-9]+)?|[0-9][0-9_]*[eE][-+]?[0-9]+"
            r"|\.[0-9][0-9_]*(?:[eE][-+]?[0-9]+)?|\.(?:inf|Inf|INF))$|^\.(?:nan|NaN|NAN)$"
        ),
        list("-+.0123456789"),
    )
    YAML12Loader.add_constructor(_TAG + "int", _construct_int)
    YAML12Loader.add_constructor(_TAG + "float", _construct_float)
    return YAML12Loader


def __getattr__(name: str):
    if name == "YAML12Loader":  # built on first use, like the yaml module itself
        return _yaml_loader()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# --- checking -----------------------------------------------------------------------------------

_KINDS = ("bool", "int", "float", "str", "mapping", "any")
_NON_FINITE = {
    "nan": math.nan,
    "inf": math.inf,
    "+inf": math.inf,
    "-inf": -math.inf,
    "infinity": math.inf,
    "-infinity": -math.inf,
}


@dataclass(frozen=True)
class Rule:
    """What one configuration value may be.

    Attributes
    ----------
    kind : {"bool", "int", "float", "str", "mapping", "any"}
        Type of the value (of each item when `sequence`). ``"float"`` accepts integers
        (kept as int); ``"int"`` and ``"float"`` refuse booleans and strings.
    sequence : bool
        The value is a list or tuple of `kind` values (returned as a tuple).
    nullable : bool
        None (YAML ``null``) is allowed and returned as is.
    required : bool
        :func:`check_mapping` refuses a mapping without this key.
    low, high : float, optional
        Bounds of a number (of each item of a sequence); inclusive unless `low_exclusive` /
        `high_exclusive`.
    choices : tuple, optional
        Allowed values.
    lengths : tuple of int, optional
        Allowed lengths of a sequence.
    item_nullable : bool
        Items of a sequence may be None (an open end of a range, an axis left as it is).
    min_length : int
        Shortest sequence (or string) allowed.
    finite : bool
        A float must be finite (default); False also accepts ``"nan"``, ``"inf"``, ``"-inf"``.
    convert : callable, optional
        ``convert(value) -> canonical value``, raising ValueError or TypeError when the value
        is not allowed; applied after the kind checks (use kind ``"any"`` to do them all).
    expected : str, optional
        What is allowed, for messages; derived from the other fields when not given.
    """

    kind: str
    sequence: bool = False
    nullable: bool = False
    required: bool = False
    low: float | None = None
    low_exclusive: bool = False
    high: float | None = None
    high_exclusive: bool = False
    choices: tuple | None = None
    lengths: tuple[int, ...] | None = None
    item_nullable: bool = False
    min_length: int = 0
    finite: bool = True
    convert: Callable[[Any], Any] | None = None
    expected: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ValueError(f"Rule kind {self.kind!r}: expected one of {', '.join(_KINDS)}")


def describe(rule: Rule) -> str:
    """What `rule` allows, in words (``"a list of numbers, each > 0, of length 2 or 3"``)."""
    if rule.expected is not None:
        text = rule.expected
    elif rule.choices is not None:
        text = "one of " + ", ".join(repr(c) for c in rule.choices)
    else:
        noun = {
            "int": "an integer",
            "float": "a number",
            "bool": "true or false",
            "str": "text",
            "mapping": "a mapping",
            "any": "a value",
        }[rule.kind]
        plural = {
            "int": "integers",
            "float": "numbers",
            "bool": "true/false values",
            "str": "texts",
            "mapping": "mappings",
            "any": "values",
        }[rule.kind]
        bounds = []
        if rule.low is not None:
            bounds.append(f"{'>' if rule.low_exclusive else '>='} {rule.low:g}")
        if rule.high is not None:
            bounds.append(f"{'<' if rule.high_exclusive else '<='} {rule.high:g}")
        if rule.sequence:
            text = ("a non-empty list of " if rule.min_length else "a list of ") + plural
            if bounds:
                text += ", each " + " and ".join(bounds)
            if rule.lengths:
                text += f", of length {' or '.join(str(n) for n in rule.lengths)}"
        else:
            text = noun + (" " + " and ".join(bounds) if bounds else "")
            if rule.kind == "str" and rule.min_length:
                text = "non-empty text"
    if rule.nullable:
        text += ", or null"
    return text


@dataclass(frozen=True)
class Wording:
    """The sentences of the error messages, as ``str.format`` templates.

    Attributes
    ----------
    key : str
        How the value of a key of a mapping is named (fields ``where``, ``key``).
    value : str
        A value its rule refuses (``name``, ``value``, ``expected``).
    missing : str
        A required key is missing (``where``, ``key``, ``expected``).
    not_mapping : str
        The section is not a mapping (``where``, ``value``).
    null : str
        Appended to `value` when the value is a null its rule refuses.
    """

    key: str = "{where} {key!r}"
    value: str = "{name}: {value!r} is not allowed; expected {expected}"
    missing: str = "{where} {key!r} is required ({expected})"
    not_mapping: str = "{where} must be a mapping of key to value, got {value!r}"
    null: str = " (null is not allowed here; omit the key for the default)"


DEFAULT_WORDING = Wording()


def check_value(rule: Rule, value: Any, name: str, *, wording: Wording = DEFAULT_WORDING) -> Any:
    """`value` checked against `rule`, in canonical form.

    Parameters
    ----------
    rule : Rule
    value : object
        As read from the file (or given to a function).
    name : str
        Who the value is, first in the message (``"setting 'binWidth'"``, ``"sigma_mm"``).
    wording : Wording, optional
        The message's sentence.

    Raises
    ------
    SettingsError
        ``"<name>: <value!r> is not allowed; expected <describe(rule)>"``.
    """

    def fail(extra: str = ""):
        message = wording.value.format(name=name, value=value, expected=describe(rule))
        raise SettingsError(message + extra)

    if value is None:
        if rule.nullable:
            return None
        fail(wording.null)
    if rule.sequence:
        if not isinstance(value, (list, tuple)):
            fail()
        if len(value) < rule.min_length or (rule.lengths and len(value) not in rule.lengths):
            fail()
        items = []
        for item in value:
            if item is None and rule.item_nullable:
                items.append(None)
                continue
            ok, checked = _item(rule, item)
            if not ok:
                fail()
            items.append(checked)
        checked = tuple(items)
    else:
        ok, checked = _item(rule, value)
        if not ok:
            fail()
    if rule.convert is not None:
        try:
            checked = rule.convert(checked)
        except (ValueError, TypeError):
            fail()
    return checked


def _item(rule: Rule, value) -> tuple[bool, Any]:
    """(whether `value` is allowed as one item of `rule`, its canonical form)."""
    kind = rule.kind
    if kind == "bool":
        ok = isinstance(value, bool)
    elif kind == "int":
        ok = isinstance(value, Integral) and not isinstance(value, bool)
        value = int(value) if ok else value
    elif kind == "float":
        if isinstance(value, str) and not rule.finite and value.strip().lower() in _NON_FINITE:
            value = _NON_FINITE[value.strip().lower()]
        ok = isinstance(value, Real) and not isinstance(value, bool)
        if ok:
            value = int(value) if isinstance(value, Integral) else float(value)
            ok = not rule.finite or math.isfinite(value)
    elif kind == "str":
        ok = isinstance(value, str) and len(value) >= rule.min_length
    elif kind == "mapping":
        ok = isinstance(value, Mapping)
    else:
        ok = True
    if ok and kind in ("int", "float"):
        if rule.low is not None:
            ok = value > rule.low if rule.low_exclusive else value >= rule.low
        if ok and rule.high is not None:
            ok = value < rule.high if rule.high_exclusive else value <= rule.high
    if ok and rule.choices is not None:
        ok = value in rule.choices
    return ok, value


def check_mapping(
    mapping: Mapping[str, Any] | None,
    rules: Mapping[str, Rule],
    where: str,
    *,
    hint: Callable[[Any], str | None] | None = None,
    known: str = "valid keys",
    wording: Wording = DEFAULT_WORDING,
) -> dict[str, Any]:
    """Every key of `mapping` checked against `rules`; unknown or missing required keys refused.

    Parameters
    ----------
    mapping : mapping or None
        The section as read (None: empty).
    rules : mapping of str to Rule
        Key -> rule, in the order to list them in messages.
    where : str
        The file and/or section, first in every message (``"params.yaml: setting"``); a
        value's message names ``<where> '<key>'``.
    hint : callable, optional
        ``hint(key)`` -> a whole message for an unknown key (e.g. "belongs in the
        voxelSetting section"), or None for the default one.
    known : str
        How the list of valid keys is introduced in the default unknown-key message.
    wording : Wording, optional
        The sentences of the messages.

    Returns
    -------
    dict
        ``{key: check_value(rules[key], value, ...)}`` for the keys in `mapping`, in its order.

    Raises
    ------
    SettingsError
        Not a mapping, an unknown key (with a "did you mean" suggestion), a missing required
        key, or a value its rule refuses.
    """
    if mapping is None:
        mapping = {}
    if not isinstance(mapping, Mapping):
        raise SettingsError(wording.not_mapping.format(where=where, value=mapping))
    for key in mapping:
        if key not in rules:
            message = hint(key) if hint is not None else None
            raise SettingsError(
                message
                or f"{where}: unknown key {key!r}{suggest(str(key), rules)}; "
                f"{known}: {', '.join(map(str, rules))}"
            )
    for key, rule in rules.items():
        if rule.required and key not in mapping:
            raise SettingsError(
                wording.missing.format(where=where, key=key, expected=describe(rule))
            )
    return {
        key: check_value(
            rules[key], value, wording.key.format(where=where, key=key), wording=wording
        )
        for key, value in mapping.items()
    }


def closest(word: str, candidates: Iterable[str]) -> str | None:
    """The candidate closest to `word` (case-insensitive, difflib ratio >= 0.6), or None."""
    lowered = {str(c).lower(): c for c in candidates}
    close = difflib.get_close_matches(str(word).lower(), list(lowered), n=1, cutoff=0.6)
    return lowered[close[0]] if close else None


def suggest(word: str, candidates: Iterable[str]) -> str:
    """``" (did you mean 'x'?)"`` for the candidate closest to `word`, or ``""``."""
    match = closest(word, candidates)
    return f" (did you mean {match!r}?)" if match is not None else ""
