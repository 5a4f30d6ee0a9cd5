"""The JSON codec's exact paths: what orjson cannot do, done by the stdlib, and the checks that send a value there.

:func:`agno_storage.codec.dumps` and :func:`~agno_storage.codec.loads` run
orjson on every value; they come here only for what it cannot do exactly:
integers past 64 bits and nesting past 255 levels on write
(:func:`dumps_wide`), integers past 64 bits on read (:func:`loads_exact`,
as deep as orjson reads), and, when orjson's text holds ``null``, the
search for the NaN or infinity it may stand for (:func:`has_non_finite`).
Both sides refuse exactly what the fast path refuses, so which path ran
never shows in a result or an error. Slower, and rare.
"""

from __future__ import annotations

import enum
import json
import marshal
import re
import threading
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

import orjson

from agno_storage.errors import InvalidInputError

_INF = float("inf")
# marshal's float records (see has_non_finite): the type byte, plain and flagged as referenced.
_FLOAT_TYPES = (ord("g"), ord("g") | 0x80)
_NON_FINITE_TOPS = (b"\x7f", b"\xff")


def dumps_wide(value: Any) -> bytes:
    """Encode data orjson refuses: integers past 64 bits, nesting past 255 levels.

    It takes what orjson takes and nothing more (UUIDs and enum members, not
    other subclasses of str or int), and nests as deep whatever the caller's
    stack depth (see :func:`with_stack`).
    """
    _refuse_what_orjson_refuses(value)
    try:
        text = with_stack(_stdlib_dumps, value)
        return text.encode()
    except RecursionError as exc:
        raise InvalidInputError("value is nested too deeply to encode") from exc
    except (TypeError, ValueError) as exc:  # UnicodeEncodeError (lone surrogates) is a ValueError
        raise InvalidInputError(f"value is not JSON-serialisable: {exc}") from exc


def _stdlib_dumps(value: Any) -> str:
    return json.dumps(
        _as_orjson_writes(value),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
        default=_native,
    )


def _as_orjson_writes(value: Any) -> Any:
    """``value`` with each enum member replaced by its value, as orjson writes it (the stdlib would write a
    ``str`` or ``float`` mixin member's own data, which may differ from its value). Only values that hold a
    member are copied."""
    if not any(isinstance(item, enum.Enum) for item in _walk(value)):
        return value
    return _without_members(value)


def _without_members(value: Any) -> Any:
    while isinstance(value, enum.Enum):
        value = value.value
    kind = type(value)
    if kind is dict:
        out: dict[Any, Any] = {}
        for key, item in value.items():
            out[key] = _without_members(item)
        return out
    if kind is list or kind is tuple:
        items = []
        for item in value:
            items.append(_without_members(item))
        return items
    return value


def _native(value: Any) -> Any:
    """What orjson writes for the two kinds it encodes natively and the stdlib does not: UUIDs, enum members."""
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


_T = TypeVar("_T")


def with_stack(fn: Callable[[Any], _T], arg: Any) -> _T:
    """``fn(arg)`` for the stdlib's recursive JSON coders, as deep whoever calls.

    Their depth limit is the interpreter's recursion limit less the frames
    already in use, so a value one caller can encode would be too deep for
    a caller further down its stack. A RecursionError here is tried again at
    the bottom of a new thread's stack: the same limit for every caller.
    """
    try:
        return fn(arg)
    except RecursionError:
        pass
    outcome: list[Any] = []

    def bottom() -> None:
        try:
            outcome.append((True, fn(arg)))
        except BaseException as exc:  # handed to the caller's thread below
            outcome.append((False, exc))

    thread = threading.Thread(target=bottom, name="agno_storage-json")
    thread.start()
    thread.join()
    ok, result = outcome[0]
    if not ok:
        raise result
    return result  # type: ignore[no-any-return]


def _walk(value: Any) -> list[Any]:
    """Every container and scalar inside ``value``, depth first, without recursion.

    A container met twice is walked once: a value that contains itself ends
    the walk instead of looping (the encoder then refuses the cycle).
    """
    out: list[Any] = []
    seen: set[int] = set()
    stack = [value]
    while stack:
        item = stack.pop()
        out.append(item)
        if isinstance(item, (dict, list, tuple)):
            if id(item) in seen:
                continue
            seen.add(id(item))
            stack.extend(item.values() if isinstance(item, dict) else item)
        elif isinstance(item, enum.Enum):
            stack.append(item.value)  # written as its value, by the same rules
    return out


def has_non_finite(value: Any) -> bool:
    """True if a NaN or infinite float sits anywhere inside ``value``.

    ``marshal`` serialises the value in C, each float as a type byte
    (``g``, or ``\\xe7`` when referenced again) and its 8 little-endian IEEE
    bytes. A double is non-finite exactly when its exponent bits are all
    ones: its last byte is ``\\x7f`` or ``\\xff`` and the one before it at
    least ``\\xf0``. Places where that shows after a float's type byte are
    only candidates (other records can hold those bytes too): the walk
    decides, as it does for what marshal refuses (UUIDs, enum members, very
    deep nesting). Text never matches: UTF-8 has no ``\\xff`` and no
    ``\\x7f`` after a byte ``\\xf0`` or more.
    """
    if type(value) is float:
        return value != value or value in (_INF, -_INF)
    try:
        packed = marshal.dumps(value)
    except ValueError:
        return walk_non_finite(value)
    for top in _NON_FINITE_TOPS:
        at = packed.find(top, 8)
        while at != -1:
            if packed[at - 1] >= 0xF0 and packed[at - 8] in _FLOAT_TYPES:
                return walk_non_finite(value)
            at = packed.find(top, at + 1)
    return False


def walk_non_finite(value: Any) -> bool:
    """:func:`has_non_finite` by walking ``value`` in Python (exact, and slower).

    Scalars are looked at in their container's loop rather than pushed, which
    halves the work on string-heavy session data.
    """
    if type(value) is float:
        return value != value or value in (_INF, -_INF)
    if type(value) not in (dict, list, tuple):
        return False  # any other scalar
    stack = [value]
    pop, push = stack.pop, stack.append
    while stack:
        item = pop()
        for child in item.values() if type(item) is dict else item:
            kind = type(child)
            if kind is dict or kind is list or kind is tuple:
                push(child)
            elif kind is float and (child != child or child == _INF or child == -_INF):
                return True
            elif isinstance(child, enum.Enum):  # written as its value, which may hold one
                push([child.value])
    return False


_PLAIN = frozenset({dict, list, tuple, str, int, float, bool, type(None)})


def _refuse_what_orjson_refuses(value: Any) -> None:
    """InvalidInputError for what :func:`agno_storage.codec.dumps` refuses on orjson's path, where the stdlib would write it."""
    for item in _walk(value):
        kind = type(item)
        if kind is dict:
            for key in item:
                if type(key) is not str:
                    raise InvalidInputError(f"value is not JSON-serialisable: dict key {key!r} is not a str")
        elif kind not in _PLAIN and kind is not uuid.UUID and not isinstance(item, enum.Enum):
            raise InvalidInputError(f"value is not JSON-serialisable: type is not supported: {kind.__name__}")


def loads_exact(data: bytes, *, strict: bool, non_finite: bool = False) -> Any:
    """The stdlib's exact reading of ``data``; ``strict``: refusing what orjson refuses (ValueError).

    As deep as orjson reads (1,024 levels), whatever the interpreter's recursion limit: text nested past the
    stdlib parser's reach is read by :func:`_loads_deep`. With ``strict``, no deeper either, though an application
    may have raised that limit.

    ``non_finite`` (with ``strict``): ``NaN``, ``Infinity`` and ``-Infinity``, as Python's ``json.dumps``
    writes them, read as floats; anything else orjson refuses is still refused.
    """
    try:
        if not strict:
            return with_stack(json.loads, data)
        value = with_stack(_non_finite_json_loads if non_finite else _strict_json_loads, data)
    except RecursionError:
        # Past about 990 levels (the interpreter's recursion limit): orjson's 1,024 levels, read exactly.
        value = _loads_deep(data, non_finite=strict and non_finite)
    # The stdlib reads as deep as the recursion limit lets it, which an application may have raised.
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        kind = type(item)
        if kind is dict or kind is list:
            if depth > _ORJSON_DEPTH:
                raise ValueError(f"JSON text is nested deeper than {_ORJSON_DEPTH:,} levels")
            stack.extend((child, depth + 1) for child in (item.values() if kind is dict else item))
            if kind is dict:
                stack.extend((key, depth) for key in item)
        elif kind is str and not (item.isascii() or is_utf8(item)):
            raise ValueError("JSON text holds a lone surrogate, which is no character")
    return value


_ORJSON_DEPTH = 1024
# A JSON string, a wide integer (group 1), any other number (consumed whole, so that no match starts inside
# one: a run of digits with a leading zero is one, which JSON refuses), or one of the non-finite constants
# Python's json.dumps writes (group 2). A string ends where a JSON parser ends it, at the next quote not
# escaped, so digits inside one are left alone: in JSON text. In text that is not (a string never closed),
# a match may start inside a string, which is why _loads_deep checks the text before it reads it.
_TOKEN = re.compile(
    rb'"[^"\\]*(?:\\.[^"\\]*)*"|(-?[1-9][0-9]{18,})(?![0-9.eE])|-?[0-9][0-9.eE+-]*|(NaN|-?Infinity)', re.DOTALL
)
_CONSTANTS = {b"NaN": float("nan"), b"Infinity": _INF, b"-Infinity": -_INF}
# U+0001, as JSON text must spell it (no control character may stand in a string as itself).
_MARK = b"\\u0001"
_MARKS = re.compile(b"(?:" + re.escape(_MARK) + b")+")


def _loads_deep(data: bytes, *, non_finite: bool) -> Any:
    """``data`` as :func:`loads_exact` reads it, for text nested deeper than the stdlib's parser goes.

    Each wide integer (and, with ``non_finite``, each ``NaN`` and infinity)
    is a number token JSON takes; orjson first reads the text with each of
    them spelled `` 0 ``, which it refuses exactly when the text is not
    JSON (a number is still a number, kept apart from its neighbours; no
    string opens or closes). Then it reads the text with each of them
    spelled as a string: more U+0001 in a row than any string of the text
    starts with (each is an escape, so the longest run of them in the text
    bounds it), then the number's place in ``numbers``. Those strings are
    replaced by the numbers, which are read in the text's order, as the
    stdlib reads them. ValueError for what orjson refuses.
    """
    marks = 1 + max((len(run) // len(_MARK) for run in _MARKS.findall(data)), default=0)
    prefix = "\x01" * marks
    spelled_prefix = b'"' + _MARK * marks
    numbers: list[Any] = []
    as_zero: list[bytes] = []
    as_string: list[bytes] = []
    done = 0
    for match in _TOKEN.finditer(data):
        wide, constant = match.group(1), match.group(2)
        if wide is not None:
            numbers.append(int(wide))
        elif constant is not None and non_finite:
            numbers.append(_CONSTANTS[constant])
        else:
            continue
        before = data[done : match.start()]
        as_zero += (before, b" 0 ")
        as_string += (before, b'%s%d"' % (spelled_prefix, len(numbers) - 1))
        done = match.end()
    as_zero.append(data[done:])
    as_string.append(data[done:])
    try:
        orjson.loads(b"".join(as_zero))
        value = orjson.loads(b"".join(as_string))
    except orjson.JSONDecodeError as exc:
        raise ValueError(exc.msg) from None  # its place would be in the text as spelled here
    if type(value) is str:
        return numbers[int(value[marks:])] if value.startswith(prefix) else value
    stack = [value] if type(value) in (dict, list) else []
    while stack:
        item = stack.pop()
        for at, child in item.items() if type(item) is dict else enumerate(item):
            kind = type(child)
            if kind is str:
                if child.startswith(prefix):
                    item[at] = numbers[int(child[marks:])]
            elif kind is dict or kind is list:
                stack.append(child)
    return value


# Decoded as UTF-8 here: given bytes, the stdlib would take a byte order mark, UTF-16 or UTF-32 too, which orjson
# refuses (and json.dumps never writes).
def _strict_json_loads(data: bytes) -> Any:
    return json.loads(data.decode(), parse_constant=_no_constant, parse_float=_finite_float)


def _non_finite_json_loads(data: bytes) -> Any:
    return json.loads(data.decode(), parse_float=_finite_float)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (_INF, -_INF):
        raise ValueError(f"number {text[:40]} is infinity when read as a float")
    return value


def is_utf8(text: str) -> bool:
    # Lone surrogates have no UTF-8 form; neither SQLite nor Go can store them.
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True
