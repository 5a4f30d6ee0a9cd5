"""The one definition of the stored form: JSON bytes, and row <-> session.

JSON is written the way Go's ``encoding/json`` writes a ``map[string]any``:
compact, keys sorted, ``<`` ``>`` ``&`` U+2028 U+2029 escaped as ``\\u003c``
``\\u003e`` ``\\u0026`` ``\\u2028`` ``\\u2029``, other non-ASCII as raw UTF-8.
The one deliberate difference: floats keep Python's shortest spelling (``1.0``
where Go writes ``1``), so a Python round trip keeps the value's type.

Reads accept any valid JSON, SQL NULL, the text ``null`` and ``''`` (what the
Go port stores when its marshal fails).
"""

from __future__ import annotations

import enum
import json
import marshal
import operator
import threading
import uuid
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import attrs
import orjson

from agno_storage.errors import CorruptRowError, InvalidInputError
from agno_storage.models import Session, SessionSummary
from agno_storage.modes import ColumnKind, ModeSpec
from agno_storage.rowplan import row_decoder

_ORJSON_OPTIONS = (
    orjson.OPT_SORT_KEYS
    # Types orjson would silently turn into strings or objects go to ``default``
    # instead, which is absent, so they raise: stored data must round-trip.
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_SUBCLASS
)

# Go escapes these even inside strings; they can only occur inside strings.
# Single-byte needles: finding one is a memchr.
_GO_ESCAPES = (
    (b"<", b"\\u003c"),
    (b">", b"\\u003e"),
    (b"&", b"\\u0026"),
)
_LINE_SEPARATORS = (
    ("\u2028".encode(), b"\\u2028"),
    ("\u2029".encode(), b"\\u2029"),
)
_LINE_SEPARATOR_LEAD = "\u2028".encode()[:1]

# orjson reads integers wider than 64 bits as floats. An integer of 19 or more
# digits sends the text through the exact (slower) stdlib parser instead; the
# scan maps digits to "0" and everything else to " ", then looks for runs.
_DIGITS = bytes(0x30 if 0x30 <= i <= 0x39 else 0x20 for i in range(256))
_LONG_RUN = b"0" * 19
# 19 >= 3 * 6 + 1: every run of 19 digits holds three consecutive multiples of 6.
_STRIDE = 6
_SAMPLED_RUN = b"0" * 3
# Texts shorter than this are scanned whole: sampling pays off only on longer ones.
_SAMPLE_FROM = 512
_DOT = ord(".")
_FRACTION_OR_EXPONENT = frozenset(b".eE")
_INF = float("inf")
# marshal's float records (see _has_non_finite): the type byte, plain and flagged as referenced.
_FLOAT_TYPES = (ord("g"), ord("g") | 0x80)
_NON_FINITE_TOPS = (b"\x7f", b"\xff")


def dumps(value: Any) -> str:
    """Encode ``value`` as Go-compatible JSON text.

    Raises :class:`InvalidInputError` for anything JSON cannot hold exactly:
    NaN or infinite floats, non-string keys, sets, bytes, datetimes,
    dataclasses, str/int/dict/list subclasses and other objects. Two kinds
    orjson encodes natively are kept: ``uuid.UUID`` (as its string) and enum
    members (as their value); tuples are written as lists.
    """
    try:
        raw = orjson.dumps(value, option=_ORJSON_OPTIONS)
    except TypeError as exc:  # orjson.JSONEncodeError subclasses TypeError
        # orjson stops at 64-bit integers and 255 levels of nesting; the stdlib
        # encoder goes further, more slowly, in the same spelling.
        message = str(exc)
        if "64-bit" not in message and "Recursion limit" not in message:
            raise InvalidInputError(f"value is not JSON-serialisable: {exc}") from exc
        raw = _dumps_wide(value)
    # orjson writes NaN and +-inf as ``null``; only then is a walk needed.
    # (rfind: CPython's backward search is about twice as fast as ``in`` for this needle.)
    if raw.rfind(b"null") != -1 and value is not None and _has_non_finite(value):
        raise InvalidInputError("value is not JSON-serialisable: NaN and infinity have no JSON form")
    for plain, escaped in _GO_ESCAPES:
        if raw.find(plain) != -1:  # a memchr; replace would copy-scan even when there is nothing to replace
            raw = raw.replace(plain, escaped)
    if _LINE_SEPARATOR_LEAD in raw:
        for plain, escaped in _LINE_SEPARATORS:
            raw = raw.replace(plain, escaped)
    return raw.decode()


def _dumps_wide(value: Any) -> bytes:
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


def _has_non_finite(value: Any) -> bool:
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
        return _walk_non_finite(value)
    for top in _NON_FINITE_TOPS:
        at = packed.find(top, 8)
        while at != -1:
            if packed[at - 1] >= 0xF0 and packed[at - 8] in _FLOAT_TYPES:
                return _walk_non_finite(value)
            at = packed.find(top, at + 1)
    return False


def _walk_non_finite(value: Any) -> bool:
    """:func:`_has_non_finite` by walking ``value`` in Python (exact, and slower).

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
    """InvalidInputError for what :func:`dumps` refuses on orjson's path, where the stdlib would write it."""
    for item in _walk(value):
        kind = type(item)
        if kind is dict:
            for key in item:
                if type(key) is not str:
                    raise InvalidInputError(f"value is not JSON-serialisable: dict key {key!r} is not a str")
        elif kind not in _PLAIN and kind is not uuid.UUID and not isinstance(item, enum.Enum):
            raise InvalidInputError(f"value is not JSON-serialisable: type is not supported: {kind.__name__}")


def loads(text: str | bytes | None) -> Any:
    """Decode stored JSON; SQL NULL, ``''`` and ``null`` all give ``None``.

    Raises ``ValueError`` on invalid JSON, and on JSON nested deeper than
    the decoders go (orjson's 1,024 levels; the stdlib's, for text with
    wide integers, about as deep); callers wrap it with row context.
    """
    if type(text) is bytes:  # what the SQLite backend reads: the common case first
        data = text
    elif isinstance(text, str):
        data = text.encode()
    elif text is None:
        return None
    elif isinstance(text, bytes):
        data = text
    else:
        # A JSON column with numeric affinity (agno's) can hand back a number.
        raise ValueError(f"expected JSON text, found a stored {type(text).__name__} {text!r}")
    if not data:
        return None
    if _has_wide_integer(data):
        # orjson decides what is valid (no NaN, no infinity, no lone surrogate, at most 1,024 levels) on
        # every path alike; the stdlib then reads the integers exactly.
        try:
            orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            if "number is infinity" not in str(exc):
                raise
            # orjson reads an integer of 310 digits or more as an infinite float; the stdlib reads it exactly
            # and refuses, as orjson would, everything else (a float that overflows, NaN, a lone surrogate).
            return _loads_stdlib(data, strict=True)
        return _loads_stdlib(data, strict=False)
    return orjson.loads(data)  # orjson.JSONDecodeError is a ValueError


def _loads_stdlib(data: bytes, *, strict: bool) -> Any:
    """The stdlib's exact reading of ``data``; ``strict``: refusing what orjson refuses (ValueError)."""
    try:
        if not strict:
            return with_stack(json.loads, data)
        value = with_stack(_strict_json_loads, data)
    except RecursionError:
        raise ValueError("JSON nested too deeply to decode") from None
    for item in _walk(value):
        texts = item if type(item) is dict else (item,)  # a dict's keys; a string itself
        for text in texts:
            if type(text) is str and not (text.isascii() or is_utf8(text)):
                raise ValueError("JSON text holds a lone surrogate, which is no character")
    return value


def _strict_json_loads(data: bytes) -> Any:
    return json.loads(data, parse_constant=_no_constant, parse_float=_finite_float)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (_INF, -_INF):
        raise ValueError(f"number {text[:40]} is infinity when read as a float")
    return value


def _has_wide_integer(data: bytes) -> bool:
    """True if ``data`` may hold an integer of 19+ digits (see :func:`_has_wide_integer_exact`).

    A cheap filter first: any run of 19 digits covers three consecutive
    multiples of 6, so a text whose every 6th byte never shows three digits
    in a row has no such run, and that is decided on a sixth of the bytes.
    Each place where it does show is checked in a window around it that
    holds at least 19 digits of any run through that place; only a window
    with a 19-digit run sends the whole text to the exact scan.
    """
    if len(data) < _SAMPLE_FROM:
        # Short text: one translate is cheaper than sampling it.
        return _LONG_RUN in data.translate(_DIGITS) and _has_wide_integer_exact(data)
    sampled = data[::_STRIDE].translate(_DIGITS)
    at = sampled.find(_SAMPLED_RUN)
    while at != -1:
        middle = at * _STRIDE
        window = data[max(middle - 18, 0) : middle + 2 * _STRIDE + 19]
        if _LONG_RUN in window.translate(_DIGITS):
            return _has_wide_integer_exact(data)
        at = sampled.find(_SAMPLED_RUN, at + 1)
    return False


def _has_wide_integer_exact(data: bytes) -> bool:
    """True if ``data`` may hold an integer of 19+ digits.

    Digit runs that are a float's fraction (after ``.``) or mantissa (before
    ``.``, ``e``) do not count: 17-digit float fractions such as
    ``0.0012345678901234567`` are common in timing metrics. Runs inside
    strings count, which costs only speed.
    """
    digits = data.translate(_DIGITS)
    start = digits.find(_LONG_RUN)
    while start != -1:
        end = digits.find(b" ", start + len(_LONG_RUN))  # the run's end, found in C
        if end == -1:
            end = len(digits)
        if (start == 0 or data[start - 1] != _DOT) and (end == len(data) or data[end] not in _FRACTION_OR_EXPONENT):
            return True
        start = digits.find(_LONG_RUN, end)
    return False


# --- sessions -------------------------------------------------------------

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1


def is_utf8(text: str) -> bool:
    # Lone surrogates have no UTF-8 form; neither SQLite nor Go can store them.
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


class RowCodec:
    """Sessions of one mode to rows of one table and back, for one engine's conventions.

    Rows are lists (or tuples, read back) of the mode's columns in table
    order (:attr:`ModeSpec.names`). ``empty_text_is_null`` is for a layout
    whose id columns are nullable (agno's on PostgreSQL): "no value" is
    written as NULL there, and as ``''`` in the Go port's NOT NULL columns.
    Reads accept both. Built once per store; cheap to call.
    """

    __slots__ = (
        "_created_at",
        "_decode_common",
        "_empty",
        "_field_names",
        "_get_fields",
        "_plan",
        "_updated_at",
        "_user_id",
        "spec",
        "table",
    )

    def __init__(self, spec: ModeSpec, table: str, *, empty_text_is_null: bool = False) -> None:
        self.spec = spec
        self.table = table
        self._plan = tuple((c.name, _KIND_CODES[c.kind]) for c in spec.columns)
        self._field_names = tuple(a.name for a in attrs.fields(spec.session_class))
        self._get_fields = operator.attrgetter(*self._field_names)
        self._empty: str | None = None if empty_text_is_null else ""
        names = spec.names
        self._user_id = names.index("user_id")
        self._created_at = names.index("created_at")
        self._updated_at = names.index("updated_at")
        self._decode_common = row_decoder(spec, _has_wide_integer)

    # --- writing ----------------------------------------------------------

    def encode(self, session: object) -> list[Any]:
        """The row of ``session``; timestamps as found (``None`` when unset), see :meth:`stamp`.

        Raises :class:`InvalidInputError` for a session of another mode or a
        value that cannot be stored, naming the column at fault.
        """
        table = self.table
        if type(session) is not self.spec.session_class:
            got = getattr(type(session), "MODE", type(session).__name__)
            raise InvalidInputError(
                f"table {table!r} stores {self.spec.mode.value} sessions; got {got} ({type(session).__name__})",
                table=table,
            )
        sid = session.session_id
        if not isinstance(sid, str) or not sid:
            raise InvalidInputError(
                f"session_id must be a non-empty str, got {sid!r}", table=table, column="session_id"
            )
        values: list[Any] = []
        append = values.append
        name = "session_id"
        try:
            # The hot write path: one small-int test per column (see _plan).
            for name, code in self._plan:
                value = getattr(session, name)
                if value is None:
                    append(_NULL_TEXT if code <= _JSON_ANY else self._empty if code == _REQUIRED_TEXT else None)
                elif code <= _JSON_ANY:
                    kind = type(value)
                    if kind is not dict and (code == _JSON or kind is not list):
                        raise _wrong_input(value, code, name)
                    append(dumps(value))
                elif code == _TIMESTAMP:
                    if type(value) is not int or not _INT64_MIN <= value <= _INT64_MAX:
                        raise InvalidInputError(f"{name} must be a 64-bit int (Unix seconds) or None, got {value!r}")
                    append(value)
                else:
                    # isascii() is the common case's cheap proof of valid Unicode.
                    if not isinstance(value, str) or not (value.isascii() or is_utf8(value)):
                        raise InvalidInputError(f"{name} must be a str of valid Unicode or None, got {value!r}")
                    append((value or self._empty) if code == _REQUIRED_TEXT else value)
        except InvalidInputError as exc:
            # The same error with its place named; its cause (orjson's, say) stays its cause.
            raise InvalidInputError(exc.message, table=table, session_id=sid, column=name) from exc.__cause__
        return values

    def stored(self, session: Session, created_at: int, updated_at: int) -> Session:
        """A copy of ``session`` with the timestamps it was stored with (``attrs.evolve``, without its lookups)."""
        fields = dict(zip(self._field_names, self._get_fields(session), strict=True))
        fields["created_at"] = created_at
        fields["updated_at"] = updated_at
        return self.spec.session_class(**fields)

    def stamp(self, row: list[Any], now: int) -> list[Any]:
        """Fill in an encoded row's timestamps: created_at if unset, updated_at always; returns ``row``."""
        if row[self._created_at] is None:
            row[self._created_at] = now
        row[self._updated_at] = now
        return row

    def session_id(self, row: Sequence[Any]) -> Any:
        """The session_id of an encoded or stored row."""
        return row[0]

    def user_id(self, row: Sequence[Any]) -> str | None:
        """The owner of an encoded or stored row; ``None`` for no owner."""
        user: str | None = row[self._user_id]
        return user or None

    # --- reading ----------------------------------------------------------

    def __reduce__(self) -> tuple[Any, ...]:
        # The generated decoder is made again, not pickled or shared.
        return (_codec, (self.spec, self.table, self._empty is None))

    def decode(self, row: Sequence[Any]) -> Session:
        """The session of a stored row: what :meth:`decode_reference` returns or raises, faster.

        Rows as every writer leaves them go through a decoder generated for
        the mode (:mod:`agno_storage.rowplan`); any other row, through the
        reference.
        """
        session = self._decode_common(row)
        return session if session is not None else self.decode_reference(row)

    def decode_reference(self, row: Sequence[Any]) -> Session:
        """The session of a stored row. JSON columns may come as ``str`` or UTF-8 ``bytes``.

        Raises :class:`CorruptRowError` naming the table, session_id and
        column of a value that cannot be decoded or is of the wrong JSON type.
        The definition of a read: :attr:`decode` gives the same results and
        errors, faster, and calls this for every row it cannot read itself.
        """
        sid = row[0]
        if type(sid) is not str:
            raise _wrong_type(self.table, sid, "session_id", sid, "a non-empty text")
        fields: dict[str, Any] = {}
        # One small-int test per column (see _plan), JSON decoded inline.
        for (name, code), value in zip(self._plan, row, strict=True):
            if value is None:
                fields[name] = None
            elif code <= _JSON_ANY:
                try:
                    decoded = loads(value)
                except ValueError as exc:
                    raise _not_json(self.table, sid, name, exc) from exc
                if decoded is not None and type(decoded) is not dict and (code == _JSON or type(decoded) is not list):
                    raise _wrong_json(self.table, sid, name, decoded, code)
                fields[name] = decoded
            elif code == _TIMESTAMP:
                # Only SQLite, whose columns hold any type, can hand back another type.
                if type(value) is not int:
                    raise _wrong_type(self.table, sid, name, value, "a Unix timestamp (an integer)")
                fields[name] = value
            elif type(value) is not str:
                # A BLOB, a number, or (as bytes, see the SQLite backend) text that is not UTF-8.
                raise _wrong_type(self.table, sid, name, value, "text")
            elif code == _REQUIRED_TEXT:
                # '' is how a NOT NULL column spells "no value".
                fields[name] = value or None
            else:
                fields[name] = value
        return self.spec.session_class(**fields)

    def decode_summaries(self, rows: Sequence[Sequence[Any]]) -> list[SessionSummary]:
        """The summaries of rows holding :attr:`ModeSpec.summary_columns`; CorruptRowError as :meth:`decode`."""
        out: list[SessionSummary] = []
        append = out.append
        for row in rows:
            sid, user, entity, created_at, updated_at = row
            # One test for the whole row on the hot path; the slow one names the column at fault.
            if (
                type(sid) is not str
                or (user is not None and type(user) is not str)
                or (entity is not None and type(entity) is not str)
                or (created_at is not None and type(created_at) is not int)
                or (updated_at is not None and type(updated_at) is not int)
            ):
                raise self._summary_error(row)
            append(
                SessionSummary(
                    session_id=sid,
                    user_id=user or None,
                    entity_id=entity or None,
                    created_at=created_at,
                    updated_at=updated_at,
                )
            )
        return out

    def _summary_error(self, row: Sequence[Any]) -> CorruptRowError:
        sid = row[0]
        if type(sid) is not str:
            return _wrong_type(self.table, sid, "session_id", sid, "a non-empty text")
        checks = zip(self.spec.summary_columns[1:], row[1:], strict=True)
        for name, value in checks:
            if value is None:
                continue
            if name in ("created_at", "updated_at"):
                if type(value) is not int:
                    return _wrong_type(self.table, sid, name, value, "a Unix timestamp (an integer)")
            elif type(value) is not str:
                return _wrong_type(self.table, sid, name, value, "text")
        raise AssertionError(f"no column of {row!r} is at fault")

    def check_ids(self, rows: Sequence[Sequence[Any]]) -> None:
        """Raise :class:`CorruptRowError` if a stored session_id among ``rows`` (1-tuples) is not text."""
        for (sid,) in rows:
            if type(sid) is not str:
                raise _wrong_type(self.table, sid, "session_id", sid, "a non-empty text")


def _codec(spec: ModeSpec, table: str, empty_text_is_null: bool) -> RowCodec:
    return RowCodec(spec, table, empty_text_is_null=empty_text_is_null)


# Column kinds as small ints for the codec's hot loops: JSON kinds first, so ``code <= _JSON_ANY`` tests for JSON.
_JSON, _JSON_ANY, _TIMESTAMP, _REQUIRED_TEXT, _TEXT = range(5)
_KIND_CODES: dict[ColumnKind, int] = {
    ColumnKind.JSON: _JSON,
    ColumnKind.JSON_ANY: _JSON_ANY,
    ColumnKind.TIMESTAMP: _TIMESTAMP,
    ColumnKind.REQUIRED_TEXT: _REQUIRED_TEXT,
    ColumnKind.OPTIONAL_TEXT: _TEXT,
    ColumnKind.KEY: _TEXT,
}


#: How a JSON column stores ``None`` (what Go's encoding/json writes for a nil map).
_NULL_TEXT = "null"


def _wrong_input(value: Any, code: int, column: str) -> InvalidInputError:
    want = "a dict" if code == _JSON else "a dict or a list"
    if isinstance(value, (dict, list)):
        # A subclass: its extra behaviour (ordering, defaults, hooks) would not survive a round trip.
        return InvalidInputError(
            f"{column} must be {want} or None, got a {type(value).__name__}, a subclass that JSON cannot keep"
        )
    return InvalidInputError(f"{column} must be {want} or None, got {type(value).__name__}")


def _not_json(table: str, sid: Any, column: str, exc: ValueError) -> CorruptRowError:
    return CorruptRowError(
        f"{table}.{column} of session {sid!r} is not valid JSON: {exc}", table=table, session_id=sid, column=column
    )


def _wrong_json(table: str, sid: Any, column: str, decoded: Any, code: int) -> CorruptRowError:
    want = "an object" if code == _JSON else "an object or a list"
    return CorruptRowError(
        f"{table}.{column} of session {sid!r} holds a JSON {type(decoded).__name__}, not {want}",
        table=table,
        session_id=sid,
        column=column,
    )


def _wrong_type(table: str, sid: Any, column: str, value: Any, want: str) -> CorruptRowError:
    """The error for a stored value of the wrong type (written by another program)."""
    if isinstance(value, bytes):
        found = f"non-UTF-8 text or a BLOB {value[:40]!r}"
    elif value is None:
        found = "NULL"
    else:
        found = f"a {type(value).__name__} {value!r}"
    return CorruptRowError(
        f"{table}.{column} of session {sid!r} holds {found}, not {want}",
        table=table,
        session_id=sid if isinstance(sid, str) or sid is None else repr(sid),
        column=column,
    )
