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

import re
from collections.abc import Iterable, Sequence
from typing import Any

import orjson

from agno_storage.codec_exact import dumps_wide, has_non_finite, loads_exact
from agno_storage.codec_exact import is_utf8 as is_utf8  # re-exported: the store's test of text it can keep
from agno_storage.errors import CorruptRowError, InvalidInputError
from agno_storage.models import Session, SessionSummary
from agno_storage.modes import ColumnKind, ModeSpec
from agno_storage.rowplan import row_decoder, row_encoder, session_copier

_ORJSON_OPTIONS = (
    orjson.OPT_SORT_KEYS
    # Types orjson would silently turn into strings or objects go to ``default``
    # instead, which is absent, so they raise: stored data must round-trip.
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_SUBCLASS
)

# Go escapes < > & and U+2028 U+2029 even inside strings; they can only occur inside strings. Single-byte
# needles: finding one is a memchr (replace would copy-scan even when there is nothing to replace).
_LINE_SEPARATOR = "\u2028".encode()
_PARAGRAPH_SEPARATOR = "\u2029".encode()
_LINE_SEPARATOR_LEAD = _LINE_SEPARATOR[:1]

# orjson reads integers wider than 64 bits as floats. An integer of 19 or more
# digits sends the text through the exact (slower) stdlib parser instead; the
# scan maps digits to "0" and everything else to " ", then looks for runs.
_DIGITS = bytes(0x30 if 0x30 <= i <= 0x39 else 0x20 for i in range(256))
_LONG_RUN = b"0" * 19
# 19 >= 3 * 6 + 1: every run of 19 digits holds three consecutive multiples of 6.
_STRIDE = 6
_SAMPLED_RUN = b"0" * 3
# Texts up to this long are scanned whole; so are longer ones whose first this many bytes show more places
# (below) than their share: sampling pays off only on long texts with few places.
_SAMPLE_FROM = 8192
# Places to check one by one per 2**_WINDOWS_PER bytes of text before the exact scan takes over: checking one
# costs about what the exact scan costs on 1 KiB, and a text with many (a float of 13 digits or more in the
# metrics of every run) has them everywhere.
_WINDOWS_PER = 12
_DOT = ord(".")
_FRACTION_OR_EXPONENT = frozenset(b".eE")


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
        raw = dumps_wide(value)
    # orjson writes NaN and +-inf as ``null``; only then is a walk needed.
    # (rfind: CPython's backward search is about twice as fast as ``in`` for this needle.)
    if raw.rfind(b"null") != -1 and value is not None and has_non_finite(value):
        raise InvalidInputError("value is not JSON-serialisable: NaN and infinity have no JSON form")
    # Unrolled: this runs for every JSON column of every write.
    if raw.find(b"<") != -1:
        raw = raw.replace(b"<", b"\\u003c")
    if raw.find(b">") != -1:
        raw = raw.replace(b">", b"\\u003e")
    if raw.find(b"&") != -1:
        raw = raw.replace(b"&", b"\\u0026")
    if raw.find(_LINE_SEPARATOR_LEAD) != -1:
        raw = raw.replace(_LINE_SEPARATOR, b"\\u2028").replace(_PARAGRAPH_SEPARATOR, b"\\u2029")
    return raw.decode()


def loads(text: str | bytes | None) -> Any:
    """Decode stored JSON; SQL NULL, ``''`` and ``null`` all give ``None``.

    Raises ``ValueError`` on invalid JSON, and on JSON nested deeper than
    orjson goes (1,024 levels, wide integers or not); callers wrap it with
    row context.
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
            return loads_exact(data, strict=True)
        return loads_exact(data, strict=False)
    return orjson.loads(data)  # orjson.JSONDecodeError is a ValueError


def _no_wide_integer(data: bytes) -> bool:
    """:func:`_has_wide_integer` for :meth:`RowCodec.decode_lax`, which does not look."""
    return False


def _has_wide_integer(data: bytes) -> bool:
    """True if ``data`` may hold an integer of 19+ digits (see :func:`_has_wide_integer_exact`).

    A cheap filter first: any run of 19 digits covers three consecutive
    multiples of 6, so a text whose every 6th byte never shows three digits
    in a row has no such run, and that is decided on a sixth of the bytes.
    Each place where it does show is checked in a window around it that
    holds at least 19 digits of any run through that place; only a window
    with a 19-digit run sends the whole text to the exact scan. A text with
    more such places than one per 4 KiB (floats of 13 digits or more, as
    agno's timing metrics are) goes to the exact scan: at once if its first
    8 KiB show more than two, else when it has spent its windows. Texts of
    8 KiB or less get the exact scan.
    """
    if len(data) <= _SAMPLE_FROM:
        # Short text: the exact scan is one translate, little dearer than sampling it, and cheaper than
        # sampling it and then looking at its places (agno's memory has a timing float in every run).
        return _has_wide_integer_exact(data)
    if data[:_SAMPLE_FROM:_STRIDE].translate(_DIGITS).count(_SAMPLED_RUN) > _SAMPLE_FROM >> _WINDOWS_PER:
        # More places in the head than its share of the windows: the windows would be spent and the exact
        # scan run anyway, after paying for both.
        return _has_wide_integer_exact(data)
    sampled = data[::_STRIDE].translate(_DIGITS)
    at = sampled.find(_SAMPLED_RUN)
    windows = len(data) >> _WINDOWS_PER
    while at != -1:
        if not windows:
            return _has_wide_integer_exact(data)
        windows -= 1
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


# JSON's escape of U+0000, not preceded by an odd number of backslashes (``\\u0000`` is a backslash, then text).
_JSON_NUL = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")


def holds_nul(text: str, *, json: bool) -> bool:
    """Whether stored ``text`` holds U+0000, which PostgreSQL's text and jsonb cannot: raw, or (``json``: JSON
    text as the codec writes it) as JSON's ``\\u0000`` escape."""
    return "\x00" in text or (json and "\\u0000" in text and _JSON_NUL.search(text) is not None)


def first_nul(rows: Iterable[Sequence[Any]], spec: ModeSpec) -> tuple[Any, str] | None:
    """The session id and column of the first value of ``rows`` (stored rows of ``spec``'s table, JSON as
    text) that holds U+0000 (:func:`holds_nul`), or None: which session of a batch PostgreSQL refused."""
    kinds = [(i, c.name, c.kind in (ColumnKind.JSON, ColumnKind.JSON_ANY)) for i, c in enumerate(spec.columns)]
    for row in rows:
        for i, name, json in kinds:
            if type(row[i]) is str and holds_nul(row[i], json=json):
                return row[0], name
    return None


# --- sessions -------------------------------------------------------------

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1


class RowCodec:
    """Sessions of one mode to rows of one table and back, for one engine's conventions.

    Rows are lists (or tuples, read back) of the mode's columns in table
    order (:attr:`ModeSpec.names`). ``empty_text_is_null`` is for a layout
    whose id columns are nullable (agno's on PostgreSQL): "no value" is
    written as NULL there, and as ``''`` in the Go port's NOT NULL columns.
    Reads accept both. ``read_non_finite`` reads ``NaN``, ``Infinity`` and
    ``-Infinity`` in a JSON column (Python's ``json.dumps`` writes them, so
    agno 1.x's own store does) as floats instead of refusing the row; writes
    refuse them either way. Built once per store; cheap to call.
    """

    __slots__ = (
        "_copy",
        "_created_at",
        "_decode_common",
        "_decode_lax",
        "_empty",
        "_encode_common",
        "_json_columns",
        "_plan",
        "_read_non_finite",
        "_updated_at",
        "_user_id",
        "spec",
        "table",
    )

    def __init__(
        self, spec: ModeSpec, table: str, *, empty_text_is_null: bool = False, read_non_finite: bool = False
    ) -> None:
        self.spec = spec
        self.table = table
        self._read_non_finite = read_non_finite
        self._plan = tuple((c.name, _KIND_CODES[c.kind]) for c in spec.columns)
        self._empty: str | None = None if empty_text_is_null else ""
        names = spec.names
        self._user_id = names.index("user_id")
        self._created_at = names.index("created_at")
        self._updated_at = names.index("updated_at")
        self._decode_common = row_decoder(spec, _has_wide_integer)
        self._decode_lax = row_decoder(spec, _no_wide_integer)
        self._json_columns = tuple(i for i, (_, code) in enumerate(self._plan) if code <= _JSON_ANY)
        self._encode_common = row_encoder(spec, dumps, self._empty)
        self._copy = session_copier(spec)

    # --- writing ----------------------------------------------------------

    def encode(self, session: object) -> list[Any]:
        """The row of ``session``; timestamps as found (``None`` when unset), see :meth:`stamp`.

        Raises :class:`InvalidInputError` for a session of another mode or a
        value that cannot be stored, naming the column at fault. What
        :meth:`encode_reference` returns or raises, faster: sessions as
        agents write them go through an encoder generated for the mode
        (:mod:`agno_storage.rowplan`); any other, through the reference.
        """
        row = self._encode_common(session)
        return row if row is not None else self.encode_reference(session)

    def encode_reference(self, session: object) -> list[Any]:
        """The row of ``session``, column by column: the definition of :meth:`encode`, which gives the same."""
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
        """A copy of ``session`` with the timestamps it was stored with (``attrs.evolve``, straight-line)."""
        return self._copy(session, created_at, updated_at)

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
        return (_codec, (self.spec, self.table, self._empty is None, self._read_non_finite))

    def decode(self, row: Sequence[Any]) -> Session:
        """The session of a stored row: what :meth:`decode_reference` returns or raises, faster.

        Rows as every writer leaves them go through a decoder generated for
        the mode (:mod:`agno_storage.rowplan`); any other row, through the
        reference.
        """
        session = self._decode_common(row)
        return session if session is not None else self.decode_reference(row)

    def decode_lax(self, row: Sequence[Any]) -> Session:
        """The session of a stored row as :meth:`decode` reads it, but that an integer of 19 or more digits in a
        JSON column may be a float (orjson's reading of one past 64 bits), and faster: no scan for such integers.

        For readers that use no value such an integer could change before
        :meth:`reads_exactly` says the row holds none (``history()``, through
        :class:`~agno_storage.stored_json.StoredJson`). Raises what
        :meth:`decode` raises: a row the common decoder does not take is read
        by :meth:`decode_reference`.
        """
        session = self._decode_lax(row)
        return session if session is not None else self.decode_reference(row)

    def reads_exactly(self, row: Sequence[Any]) -> bool:
        """True if :meth:`decode_lax` of ``row`` is certainly :meth:`decode` of it: no JSON column may hold an
        integer of 19 or more digits, by the scan :meth:`decode` makes (for the whole row at once). False where
        one may (a run of 19 digits in a string counts too): the two readings may differ."""
        for i in self._json_columns:
            value = row[i]
            if type(value) is str:
                value = value.encode()
            if type(value) is bytes and len(value) >= len(_LONG_RUN) and _has_wide_integer(value):
                return False
        return True

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
                    decoded = self._non_finite(value, exc)
                    if decoded is exc:
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

    def _non_finite(self, value: object, exc: ValueError) -> Any:
        """``value`` read with ``NaN`` and infinities as floats, when this codec reads them; else ``exc``."""
        if not self._read_non_finite or not isinstance(value, str | bytes):
            return exc
        try:
            return loads_exact(value if isinstance(value, bytes) else value.encode(), strict=True, non_finite=True)
        except ValueError:
            return exc

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


def _codec(spec: ModeSpec, table: str, empty_text_is_null: bool, read_non_finite: bool = False) -> RowCodec:
    return RowCodec(spec, table, empty_text_is_null=empty_text_is_null, read_non_finite=read_non_finite)


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
    if isinstance(value, (dict, list)) and type(value) not in (dict, list):
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
