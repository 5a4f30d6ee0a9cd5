"""The generated row decoders read what the codec's reference decoder reads, and raise what it raises."""

from __future__ import annotations

import copy
import pickle
from collections.abc import Sequence
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agno_storage import codec, rowplan
from agno_storage.errors import CorruptRowError, InvalidInputError
from agno_storage.models import Mode
from agno_storage.modes import ColumnKind, spec

WIDE = 2**64 + 3  # orjson reads this as a float; the codec must read it exactly

_json_texts = st.sampled_from(
    [
        "{}",
        '{"a":1}',
        '{"a":[1,2,{"b":null}],"c":"\\u003c"}',
        "[]",
        '[{"role":"user"}]',
        "null",
        "",
        "1",
        '"text"',
        "true",
        '{"a":NaN}',
        '{"a":1e400}',
        '{"a":"\\ud800"}',
        "{",
        f'{{"wide":{WIDE}}}',
        f"[{WIDE}]",
        '{"fraction":0.12345678901234567890}',
        '{"digits":"12345678901234567890123"}',
        "[" * 1100 + "]" * 1100,
    ]
)

#: Every kind of value another program can leave in a column, as the engines hand them back.
_stored = st.one_of(
    st.none(),
    _json_texts,
    _json_texts.map(str.encode),
    st.text(max_size=8),
    st.sampled_from([b"\xff\xfe", b"", b"caf\xc3\xa9", "caf\u00e9", "\ud800"]),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False),
)


def _valid(kind: ColumnKind) -> st.SearchStrategy[Any]:
    """What this store or the Go port leaves in a column of ``kind``, as the engines hand it back."""
    if kind is ColumnKind.TIMESTAMP:
        return st.none() | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    if kind in (ColumnKind.JSON, ColumnKind.JSON_ANY):
        texts = st.sampled_from(["{}", '{"a":[1,{"b":"c"}]}', '{"n":null,"x":1.5}', "null"])
        if kind is ColumnKind.JSON_ANY:
            texts = texts | st.sampled_from(["[]", '[{"run_id":"r1"}]'])
        return st.none() | texts.map(str.encode) | texts
    if kind is ColumnKind.KEY:
        return st.text(min_size=1, max_size=8)
    return st.none() | st.text(max_size=8)


def _rows(mode: Mode, mostly_valid: bool) -> st.SearchStrategy[tuple[Any, ...]]:
    columns = spec(mode).columns
    if mostly_valid:
        return st.tuples(*(_valid(c.kind) for c in columns))
    return st.tuples(*(_valid(c.kind) | _stored for c in columns))


def _outcome(decode: Any, row: Sequence[Any]) -> tuple[str, Any]:
    try:
        return "read", decode(row)
    except CorruptRowError as exc:
        return "refused", (exc.table, exc.session_id, exc.column, str(exc))


@pytest.mark.parametrize("mode", list(Mode))
@pytest.mark.parametrize("mostly_valid", [True, False], ids=["valid", "anything"])
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_a_generated_decoder_reads_and_refuses_what_the_reference_does(
    mode: Mode, mostly_valid: bool, data: st.DataObject
) -> None:
    row_codec = codec.RowCodec(spec(mode), "t")
    row = data.draw(_rows(mode, mostly_valid))
    assert _outcome(row_codec.decode, row) == _outcome(row_codec.decode_reference, row)


@pytest.mark.parametrize("mode", list(Mode))
def test_a_wide_integer_reads_back_exactly_through_the_generated_decoder(mode: Mode) -> None:
    columns = spec(mode).columns
    row = [f'{{"wide":{WIDE}}}'.encode() if c.kind in (ColumnKind.JSON, ColumnKind.JSON_ANY) else None for c in columns]
    row[0] = "s1"
    session = codec.RowCodec(spec(mode), "t").decode(row)
    json_values = [getattr(session, c.name) for c in columns if c.kind in (ColumnKind.JSON, ColumnKind.JSON_ANY)]
    assert json_values and all(v == {"wide": WIDE} and type(v["wide"]) is int for v in json_values)


def _common_row(mode: Mode) -> list[Any]:
    """A row as this store and the Go port write one: every column of its kind, JSON as bytes."""
    row: list[Any] = []
    for c in spec(mode).columns:
        if c.kind is ColumnKind.TIMESTAMP:
            row.append(1_700_000_000)
        elif c.kind in (ColumnKind.JSON, ColumnKind.JSON_ANY):
            row.append(b'{"runs":[{"content":"hello","created_at":1700000000,"time":0.12345678901234568}]}')
        else:
            row.append(f"{c.name}-1")
    return row


@pytest.mark.parametrize("mode", list(Mode))
def test_rows_this_store_writes_are_read_without_the_reference(mode: Mode) -> None:
    """The straight-line path is the one every ordinary row takes (else the speed it is for is gone)."""
    row = _common_row(mode)
    decode_common = rowplan.row_decoder(spec(mode), codec._has_wide_integer)
    assert decode_common(row) == codec.RowCodec(spec(mode), "t").decode_reference(row)


def test_a_refused_row_carries_no_trace_of_the_common_path() -> None:
    row: list[Any] = _common_row(Mode.AGENT)
    row[spec(Mode.AGENT).names.index("created_at")] = True  # a bool is no timestamp
    with pytest.raises(CorruptRowError) as fast:
        codec.RowCodec(spec(Mode.AGENT), "t").decode(row)
    with pytest.raises(CorruptRowError) as reference:
        codec.RowCodec(spec(Mode.AGENT), "t").decode_reference(row)
    assert str(fast.value) == str(reference.value)
    assert fast.value.__context__ is None and fast.value.__cause__ is None


@pytest.mark.parametrize("empty_text_is_null", [False, True])
def test_a_codec_copied_or_pickled_decodes_as_its_own(empty_text_is_null: bool) -> None:
    original = codec.RowCodec(spec(Mode.TEAM), "teams", empty_text_is_null=empty_text_is_null)
    row: list[Any] = _common_row(Mode.TEAM)
    row[0] = 5  # no session_id: refused, naming the table
    for twin in (copy.copy(original), copy.deepcopy(original), pickle.loads(pickle.dumps(original))):
        twin.table = "renamed"
        with pytest.raises(CorruptRowError) as refused:
            twin.decode(row)
        assert refused.value.table == "renamed"
        assert twin.decode(_common_row(Mode.TEAM)) == original.decode(_common_row(Mode.TEAM))
        assert twin.encode(twin.decode(_common_row(Mode.TEAM))) == original.encode(
            original.decode(_common_row(Mode.TEAM))
        )
    with pytest.raises(CorruptRowError) as refused:
        original.decode(row)
    assert refused.value.table == "teams"


class _Text(str):
    """A str subclass: the reference writes it as it is, so the common path must leave it to the reference."""


#: JSON values a caller may give: what the common path covers, and what it leaves to the reference.
_JSON_VALUES: list[Any] = [
    {},
    {"a": [1, 2.5, None, "<&>\u2028"], "z": {"b": True}},
    {"wide": WIDE},
    {"nan": float("nan")},
    {"inf": [float("inf")]},
    {1: "non-string key"},
    {"s": {1, 2}},
    {"b": b"bytes"},
    [],
    [{"run_id": "r1"}],
    "text",
    5,
]
#: Anything a caller may put in a field, each kind's odd cases included.
_ODD_VALUES: list[Any] = [
    None,
    "",
    "s",
    "caf\u00e9",
    "\ud800",
    _Text("sub"),
    _Text(""),
    True,
    1.5,
    0,
    2**63 - 1,
    2**63,
    -(2**63),
    -(2**63) - 1,
    *_JSON_VALUES,
]


def _valid_fields(mode: Mode) -> st.SearchStrategy[dict[str, Any]]:
    fields: dict[str, st.SearchStrategy[Any]] = {}
    for c in spec(mode).columns:
        if c.kind is ColumnKind.TIMESTAMP:
            fields[c.name] = st.none() | st.integers(min_value=-(2**63), max_value=2**63 - 1)
        elif c.kind in (ColumnKind.JSON, ColumnKind.JSON_ANY):
            fields[c.name] = st.none() | st.sampled_from(_JSON_VALUES)
        elif c.kind is ColumnKind.KEY:
            fields[c.name] = st.text(min_size=1, max_size=6)
        else:
            fields[c.name] = st.none() | st.text(max_size=6)
    return st.fixed_dictionaries(fields)


def _encoded(encode: Any, session: Any) -> tuple[str, Any]:
    try:
        row = encode(session)
    except InvalidInputError as exc:
        return "refused", (exc.table, exc.session_id, exc.column, str(exc), type(exc.__cause__))
    # The same values, of the same types (a str subclass stays what it was).
    return "written", (row, [type(v) for v in row])


@pytest.mark.parametrize("mode", list(Mode))
@pytest.mark.parametrize("empty_text_is_null", [False, True])
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_a_generated_encoder_writes_and_refuses_what_the_reference_does(
    mode: Mode, empty_text_is_null: bool, data: st.DataObject
) -> None:
    row_codec = codec.RowCodec(spec(mode), "t", empty_text_is_null=empty_text_is_null)
    session = spec(mode).session_class(**data.draw(_valid_fields(mode)))
    assert _encoded(row_codec.encode, session) == _encoded(row_codec.encode_reference, session)


@pytest.mark.parametrize("mode", list(Mode))
@pytest.mark.parametrize("empty_text_is_null", [False, True])
def test_any_value_in_any_field_is_written_or_refused_as_the_reference_does(
    mode: Mode, empty_text_is_null: bool
) -> None:
    row_codec = codec.RowCodec(spec(mode), "t", empty_text_is_null=empty_text_is_null)
    for column in spec(mode).columns:
        for value in _ODD_VALUES:
            session = spec(mode).session_class(**{"session_id": "s1", column.name: value})
            fast, reference = _encoded(row_codec.encode, session), _encoded(row_codec.encode_reference, session)
            assert fast == reference, (column.name, value)


@pytest.mark.parametrize("mode", list(Mode))
def test_a_session_of_another_mode_or_class_is_refused_as_the_reference_refuses_it(mode: Mode) -> None:
    other = next(m for m in Mode if m is not mode)
    subclass = type("Subclass", (spec(mode).session_class,), {})
    row_codec = codec.RowCodec(spec(mode), "t")
    for session in (spec(other).session_class(session_id="s1"), subclass(session_id="s1")):
        assert _encoded(row_codec.encode, session) == _encoded(row_codec.encode_reference, session)
        assert _encoded(row_codec.encode, session)[0] == "refused"


@pytest.mark.parametrize("mode", list(Mode))
def test_sessions_agents_write_are_encoded_without_the_reference(mode: Mode) -> None:
    """The straight-line path is the one every ordinary session takes (else the speed it is for is gone)."""
    row_codec = codec.RowCodec(spec(mode), "t")
    session = row_codec.decode(_common_row(mode))
    encode_common = rowplan.row_encoder(spec(mode), codec.dumps, "")
    assert encode_common(session) == row_codec.encode_reference(session)


@pytest.mark.parametrize("mode", list(Mode))
def test_the_copy_an_upsert_returns_is_attrs_evolve(mode: Mode) -> None:
    row_codec = codec.RowCodec(spec(mode), "t")
    session = row_codec.decode(_common_row(mode))
    copied = row_codec.stored(session, 5, 6)
    assert copied == attrs.evolve(session, created_at=5, updated_at=6)
    assert copied is not session and session.created_at == 1_700_000_000
