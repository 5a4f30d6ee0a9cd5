"""The JSON form: golden bytes in Go's encoding/json spelling, and round trips."""

from __future__ import annotations

import enum
import json
import math
import struct
import uuid
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agno_storage import codec, codec_exact
from agno_storage.errors import InvalidInputError

# Expected texts are written by hand from Go's encoding/json rules (map keys
# sorted bytewise, HTML-safe escapes, \b and \f short escapes since Go 1.22),
# not produced by the code under test.
GOLDEN: list[tuple[Any, str]] = [
    (None, "null"),
    ({}, "{}"),
    ({"b": 1, "a": "x"}, '{"a":"x","b":1}'),
    ({"html": "<a href='x'>&</a>"}, '{"html":"\\u003ca href=\'x\'\\u003e\\u0026\\u003c/a\\u003e"}'),
    ({"ls": "a\u2028b\u2029c"}, '{"ls":"a\\u2028b\\u2029c"}'),
    ({"c": "\x00\x01\b\f\n\r\t\x1f\x7f"}, '{"c":"\\u0000\\u0001\\b\\f\\n\\r\\t\\u001f\x7f"}'),
    ({"q": 'say "hi" \\ bye'}, '{"q":"say \\"hi\\" \\\\ bye"}'),
    ({"u": "é漢😀"}, '{"u":"é漢😀"}'),
    ({"é": 1, "z": 2, "Z": 3, "😀": 4, "\uff5a": 5}, '{"Z":3,"z":2,"é":1,"\uff5a":5,"😀":4}'),
    ({"<key>": True}, '{"\\u003ckey\\u003e":true}'),
    ({"n": [None, False, 0, -1, 9007199254740993]}, '{"n":[null,false,0,-1,9007199254740993]}'),
    ({"big": 2**70, "neg": -(2**70)}, '{"big":1180591620717411303424,"neg":-1180591620717411303424}'),
    ({"deep": {"a": {"b": {"c": []}}}}, '{"deep":{"a":{"b":{"c":[]}}}}'),
    ({"f": 1.5, "g": 0.1, "h": -2.25}, '{"f":1.5,"g":0.1,"h":-2.25}'),
]


@pytest.mark.parametrize(("value", "expected"), GOLDEN)
def test_dumps_matches_go_bytes(value: Any, expected: str) -> None:
    assert codec.dumps(value) == expected


def test_whole_floats_keep_python_spelling() -> None:
    # The one documented difference from Go, which writes 2.
    assert codec.dumps({"x": 2.0}) == '{"x":2.0}'
    assert codec.loads('{"x":2.0}') == {"x": 2.0}
    assert isinstance(codec.loads('{"x":2.0}')["x"], float)


@pytest.mark.parametrize("text", [None, "", b"", "null", b"null"])
def test_empty_forms_read_as_none(text: str | bytes | None) -> None:
    assert codec.loads(text) is None


@pytest.mark.parametrize(
    "text",
    [
        '{"a": 1, "b": "\\u00e9\\u003c"}',  # agno 1.x: json.dumps with spaces and ASCII escapes
        '{"b":"é<","a":1}',
    ],
)
def test_reads_any_valid_spelling(text: str) -> None:
    assert codec.loads(text) == {"a": 1, "b": "é<"}


def test_wide_integers_read_back_exactly() -> None:
    text = '{"a":123456789012345678901234567890,"b":[-18446744073709551617],"c":"12345678901234567890"}'
    assert codec.loads(text) == {
        "a": 123456789012345678901234567890,
        "b": [-18446744073709551617],
        "c": "12345678901234567890",
    }


@pytest.mark.parametrize(
    "value",
    [
        {"x": float("nan")},
        {"x": [1, {"y": float("-inf")}]},
        {"x": object()},
        {1: "int key"},
        {"x": {2: "nested int key"}, "big": 2**80},
        {"x": float("nan"), "big": 2**80},
        {"x": b"bytes"},
        {"x": {1, 2}},
    ],
)
def test_unrepresentable_values_are_refused(value: Any) -> None:
    with pytest.raises(InvalidInputError):
        codec.dumps(value)


def test_invalid_json_raises_value_error() -> None:
    with pytest.raises(ValueError):
        codec.loads("{not json")


WIDE = "12345678901234567890"  # past 64 bits: the text goes to the exact (stdlib) decoder


@pytest.mark.parametrize(
    "text",
    [
        '{"a":NaN}',
        '{"a":Infinity}',
        '{"a":-Infinity}',
        '{"a":1e400}',
        '{"a":"\\ud800"}',
        '{"a":1e99999999999999999999}',
    ],
)
@pytest.mark.parametrize("wide", [False, True])
def test_what_json_cannot_hold_is_refused_on_read_whichever_decoder_runs(text: str, wide: bool) -> None:
    """The same text is refused with or without a wide integer beside it: NaN is never read and then
    refused on its way back in."""
    if wide:
        text = text[:-1] + f',"w":{WIDE}}}'
    with pytest.raises(ValueError):
        codec.loads(text)


@pytest.mark.parametrize("wide", [False, True])
def test_a_codec_reading_non_finite_reads_agnos_spelling_and_nothing_more(wide: bool) -> None:
    """read_non_finite takes NaN and the infinities as json.dumps writes them, wide integers exact beside them;
    what no json.dumps writes (a number overflowing to infinity, a lone surrogate, bad JSON) is still corrupt."""
    from agno_storage.errors import CorruptRowError
    from agno_storage.modes import SPECS, Mode

    spec = SPECS[Mode.AGENT]
    tail = f',"w":{WIDE}}}' if wide else "}"

    def row(session_data: str) -> list[Any]:
        return [
            "s" if n == "session_id" else session_data.encode() if n == "session_data" else None for n in spec.names
        ]

    lenient = codec.RowCodec(spec, "t", read_non_finite=True)
    data = lenient.decode(row('{"a":NaN,"b":Infinity,"c":-Infinity' + tail)).session_data
    assert data is not None and math.isnan(data["a"]) and data["b"] == math.inf and data["c"] == -math.inf
    assert sorted(data) == (["a", "b", "c", "w"] if wide else ["a", "b", "c"])
    if wide:  # exact, not a float near it
        assert type(data["w"]) is int and data["w"] == int(WIDE)
    with pytest.raises(CorruptRowError):
        codec.RowCodec(spec, "t").decode(row('{"a":NaN' + tail))
    for text in ('{"a":1e400', '{"a":"\\ud800"', '{"a":nan', '{"a":NaN,', '\ufeff{"a":NaN'):
        with pytest.raises(CorruptRowError) as corrupt:
            lenient.decode(row(text + tail))
        assert corrupt.value.column == "session_data"
    # JSON text in another encoding than UTF-8, which the stdlib would guess from its bytes.
    for encoding in ("utf-16", "utf-32-le"):
        text = ('{"a":NaN' + tail).encode(encoding)
        stored = ["s" if n == "session_id" else text if n == "session_data" else None for n in spec.names]
        with pytest.raises(CorruptRowError):
            lenient.decode(stored)


class Colour(enum.Enum):
    RED = "red"


class Text(str):
    pass


@pytest.mark.parametrize(
    ("value", "written"),
    [
        # A UUID as its canonical string (RFC 4122: 8-4-4-4-12 lowercase hex digits), a member as its value.
        ({"id": uuid.UUID(int=1)}, '{"id":"00000000-0000-0000-0000-000000000001"}'),
        ({"c": Colour.RED}, '{"c":"red"}'),
        ({"t": Text("x")}, None),
        ({"k": {Text("x"): 1}}, None),
        ({"n": 1.5}, '{"n":1.5}'),
    ],
)
def test_a_wide_integer_beside_a_value_changes_nothing_about_whether_it_is_taken(
    value: dict[str, Any], written: str | None
) -> None:
    """UUIDs and enum members are written as their string and value, other subclasses of str refused, with a
    wide integer beside them as without."""
    if written is None:
        for extra in ({}, {"w": 2**64}):
            with pytest.raises(InvalidInputError):
                codec.dumps({**value, **extra})
        return
    assert codec.dumps(value) == written
    assert codec.dumps({**value, "w": 2**64}) == written[:-1] + ',"w":18446744073709551616}'


class Odd(enum.Enum):
    NAN = math.nan
    INT_KEY = {1: "a"}  # noqa: RUF012 - a member's value, never mutated
    FINE = {"a": [1.5]}  # noqa: RUF012


class MyUUID(uuid.UUID):
    pass


class Label(str, enum.Enum):  # noqa: UP042 - a str mixin whose value differs from its data, as StrEnum cannot be
    """A member whose value is not its str data."""

    X = "x"

    def __new__(cls, data: str) -> Label:
        member = str.__new__(cls, data)
        member._value_ = "label"
        return member


def test_a_mixin_enum_member_is_written_as_its_value_on_both_paths() -> None:
    assert codec.dumps({"m": [Label.X]}) == '{"m":["label"]}'
    assert codec.dumps({"m": [Label.X], "w": 2**64}) == '{"m":["label"],"w":18446744073709551616}'


@pytest.mark.parametrize(
    ("value", "taken"),
    [({"e": Odd.NAN}, False), ({"e": Odd.INT_KEY}, False), ({"u": MyUUID(int=1)}, False), ({"e": Odd.FINE}, True)],
)
def test_an_enum_members_value_and_a_uuid_subclass_follow_the_same_rules_on_both_paths(
    value: dict[str, Any], taken: bool
) -> None:
    """A member is written as its value, so a NaN inside one is refused too (orjson would write null)."""
    for extra in ({}, {"w": 2**64}):
        if taken:
            assert json.loads(codec.dumps({**value, **extra}))["e"] == {"a": [1.5]}
        else:
            with pytest.raises(InvalidInputError):
                codec.dumps({**value, **extra})


@pytest.mark.parametrize("digits", [309, 310, 400, 4300])  # 4,300: the most Python turns into an int
def test_an_integer_of_any_length_reads_back_exactly(digits: int) -> None:
    """orjson reads an integer of 310 digits or more as an infinite float: it is read exactly all the same."""
    value = {"n": int("9" * digits), "s": "x😀", "f": 1.5}
    assert codec.loads(codec.dumps(value)) == value
    for bad in ('"f":1e400', '"s":"\\ud800"', '"x":NaN', '"\\udc00":1'):
        with pytest.raises(ValueError):
            codec.loads('{"n":' + "9" * digits + "," + bad + "}")


def test_how_deep_a_value_may_nest_does_not_depend_on_the_callers_stack() -> None:
    """A value the store takes from one caller reads back in any caller, however deep its stack."""
    value: Any = int(WIDE)
    for _ in range(900):
        value = [value]

    def deep(frames: int, fn: Any, arg: Any) -> Any:
        return fn(arg) if frames == 0 else deep(frames - 1, fn, arg)

    text = codec.dumps(value)
    assert deep(300, codec.dumps, value) == text
    assert deep(300, codec.loads, text) == value
    assert deep(300, codec.loads, text.encode()) == value


def _unwrapped(value: Any, depth: int) -> Any:
    for _ in range(depth):
        (value,) = value
    return value


#: Past the stdlib parser's reach (about 990 levels) and within orjson's (1,024).
_DEEP = 1000


@pytest.mark.parametrize(
    "body",
    [
        f"{WIDE},-{WIDE},9223372036854775808,-9223372036854775809,{'7' * 400}",
        f'"{WIDE}","a \\" {WIDE}",{WIDE}',
        f"12345678901234567890.5,0.1234567890123456789012,1{'0' * 20}e-5,{WIDE}",
        f'"\\\\u0001\\u0001\\u00010",{{"\\u0001\\u00011":"\\u0001"}},{WIDE}',
    ],
)
def test_text_nested_past_the_stdlibs_reach_reads_as_shallow_text_does(body: str) -> None:
    """Integers past 64 bits are read exactly as deep as orjson reads, and nothing else in the text changes:
    not digits in strings, floats, nor strings of control characters like those the deep reading uses."""
    shallow = codec.loads("[" + body + "]")
    deep = _unwrapped(codec.loads("[" * _DEEP + body + "]" * _DEEP), _DEEP - 1)
    assert deep == shallow
    assert [type(item) for item in deep] == [type(item) for item in shallow]


def test_text_nested_past_the_stdlibs_reach_refuses_what_shallow_text_refuses() -> None:
    from agno_storage.modes import SPECS, Mode

    spec = SPECS[Mode.AGENT]
    for body in (f"{'7' * 400},{{{WIDE}:1}}", f"{WIDE},NaN", f"{WIDE},1e400", f'{WIDE},"\\ud800"'):
        for depth in (1, _DEEP):
            with pytest.raises(ValueError):
                codec.loads("[" * depth + body + "]" * depth)
    # A store reading agno's NaN reads it at any depth, beside a wide integer.
    text = '{"d":' + "[" * _DEEP + f"NaN,{WIDE}" + "]" * _DEEP + "}"
    row = ["s" if n == "session_id" else text if n == "session_data" else None for n in spec.names]
    data = codec.RowCodec(spec, "t", read_non_finite=True).decode(row).session_data
    assert data is not None
    found = _unwrapped(data["d"], _DEEP - 1)
    assert math.isnan(found[0]) and found[1] == int(WIDE) and type(found[1]) is int


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(), children, max_size=5),
    max_leaves=40,
)


@settings(max_examples=300)
@given(json_values)
def test_round_trip_of_arbitrary_json(value: Any) -> None:
    text = codec.dumps(value)
    back = codec.loads(text)
    assert back == value or _both_nan_free_equal(back, value)
    # Whatever the spelling, the text is valid JSON that the stdlib agrees on.
    assert json.loads(text) == back
    # No raw characters Go would have escaped.
    for ch in "<>&\u2028\u2029":
        assert ch not in text


def _both_nan_free_equal(a: Any, b: Any) -> bool:
    # -0.0 == 0.0 in Python, so plain equality already covers signed zeros.
    return isinstance(a, float) and isinstance(b, float) and math.isclose(a, b)


def test_deep_nesting_round_trips() -> None:
    value: Any = "leaf"
    for i in range(200):
        value = {f"k{i}": [value]}
    assert codec.loads(codec.dumps(value)) == value


@pytest.mark.parametrize("leaf", ["1", "12345678901234567890"])  # orjson's path, and the exact one for wide integers
def test_stored_json_nested_past_the_decoders_reach_is_a_value_error(leaf: str) -> None:
    text = "[" * 3000 + leaf + "]" * 3000  # Go decodes up to 10,000 levels, so it can store this
    with pytest.raises(ValueError):
        codec.loads(text)


def test_nesting_past_the_encoders_reach_is_refused_cleanly() -> None:
    value: Any = "leaf"
    for _ in range(5000):
        value = [value]
    with pytest.raises(InvalidInputError):
        codec.dumps(value)


@pytest.mark.parametrize(
    ("text", "wide"),
    [
        ('{"t":0.0012345678901234567}', False),
        ('{"t":12345678901234567890.5}', False),
        ('{"t":1234567890123456789e3}', False),
        ('{"n":12345678901234567890}', True),
        ('{"n":-12345678901234567890}', True),
        ("[1,12345678901234567890]", True),
        ('{"s":"id-12345678901234567890"}', True),  # a false alarm costs only speed
        ('{"n":123456789012345678}', False),
    ],
)
def test_wide_integer_scan(text: str, wide: bool) -> None:
    assert codec._has_wide_integer(text.encode()) is wide
    assert codec.loads(text) == json.loads(text)


# Pieces that make digit runs of every length meet every alignment and context.
_pieces = st.one_of(
    st.text(alphabet="0123456789", min_size=1, max_size=45),
    st.sampled_from([".", "e", "E", "-", ",", ":", '"', "[", "]", "{", "}", " ", "a", "é"]),
)


# Text around the pieces so that the scan samples (it reads short texts whole): before them, after them, both.
_PADDING = " " * 9000
_paddings = st.sampled_from([("", ""), (_PADDING, ""), ("", _PADDING), (_PADDING, _PADDING)])


@given(st.lists(_pieces, max_size=40).map("".join), _paddings)
@settings(max_examples=400, deadline=None)
def test_the_sampled_wide_integer_filter_agrees_with_the_exact_scan(text: str, padding: tuple[str, str]) -> None:
    # The filter may only ever skip texts the exact scan clears: a miss would read a wide integer as a float.
    data = (padding[0] + text + padding[1]).encode()
    assert codec._has_wide_integer(data) == codec._has_wide_integer_exact(data)


@pytest.mark.parametrize("padding", [0, 9000])
@pytest.mark.parametrize("offset", range(13))
@pytest.mark.parametrize("length", [18, 19, 20, 31, 40])
def test_a_wide_integer_is_found_wherever_it_starts(offset: int, length: int, padding: int) -> None:
    number = "9" * length
    text = f'{{"p":"{"x" * offset}","n":{number},"q":"{"z" * padding}"}}'
    assert codec._has_wide_integer(text.encode()) is (length >= 19)
    assert codec.loads(text)["n"] == int(number)


# A run's timing metric as agno keeps it: a float whose 16 fraction digits are a place the sampled scan must look at.
_TIMED_RUN = '{"metrics":{"time":1.2345678901234567},"content":"' + "x" * 200 + '"}'


@pytest.mark.parametrize("padding", [0, 64_000])
@pytest.mark.parametrize("where", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("runs", [0, 3, 40, 400])
def test_a_wide_integer_among_many_long_floats_reads_back_exact(runs: int, where: float, padding: int) -> None:
    # Long floats everywhere (many places to look at) or few in much text: the scan looks at each, or
    # scans the whole text once; either way the integer past 64 bits is found, and the fractions are no alarm.
    items = [_TIMED_RUN] * runs + ['"' + "y" * padding + '"'] * bool(padding)
    without = "[" + ",".join(items) + "]"
    items.insert(int(len(items) * where), '{"n":123456789012345678901}')
    text = "[" + ",".join(items) + "]"
    assert codec._has_wide_integer(text.encode())
    assert codec.loads(text) == json.loads(text)
    assert {"n": 123456789012345678901} in codec.loads(text)
    assert not codec._has_wide_integer(without.encode())


# Any float a session may hold, non-finite ones and their NaN payloads included.
_any_float = st.floats(allow_nan=True, allow_infinity=True) | st.integers(0, 2**64 - 1).map(
    lambda bits: struct.unpack("<d", bits.to_bytes(8, "little"))[0]
)
_values_with_floats = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | _any_float | st.text() | st.binary().map(str),
    lambda children: (
        st.lists(children, max_size=6)
        | st.tuples(children, children)
        | st.dictionaries(st.text(), children, max_size=6)
    ),
    max_leaves=60,
)


@settings(max_examples=500)
@given(_values_with_floats)
def test_the_fast_non_finite_check_agrees_with_the_walk(value: Any) -> None:
    assert codec_exact.has_non_finite(value) == codec_exact.walk_non_finite(value)
    if codec_exact.has_non_finite(value):
        with pytest.raises(InvalidInputError):
            codec.dumps(value)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, -math.nan])
def test_a_non_finite_float_is_found_behind_values_marshal_refuses(bad: float) -> None:
    class Colour(enum.Enum):
        RED = "red"

    value = {"id": uuid.uuid4(), "c": Colour.RED, "deep": [[[{"x": [bad]}]]]}
    assert codec_exact.has_non_finite(value)
    with pytest.raises(InvalidInputError):
        codec.dumps(value)
    deep: Any = [bad]
    for _ in range(3000):  # deeper than marshal goes
        deep = [deep]
    assert codec_exact.has_non_finite(deep)


# The oracle for the deep reading: the stdlib's own parser, as deep as it is asked to go, in a thread with a
# stack for it; then orjson's depth limit and the lone-surrogate rule, which the store applies on every path.
_ORJSON_DEPTH = 1024


def _oracle(data: bytes, *, non_finite: bool) -> tuple[bool, Any]:
    """(True, value) for text a store reads, (False, None) for text it refuses (the NaN spelling: ``non_finite``)."""
    import sys
    import threading

    def refuse(name: str) -> Any:
        raise ValueError(name)

    def finite(text: str) -> float:
        value = float(text)
        if math.isinf(value):
            raise ValueError(text)
        return value

    outcome: list[tuple[bool, Any]] = []

    def parse() -> None:
        try:
            text = data.decode()
            if non_finite:
                outcome.append((True, json.loads(text, parse_float=finite)))
            else:
                outcome.append((True, json.loads(text, parse_constant=refuse, parse_float=finite)))
        except ValueError:
            outcome.append((False, None))

    limit = sys.getrecursionlimit()
    stack = threading.stack_size(256 << 20)
    sys.setrecursionlimit(20_000)
    try:
        thread = threading.Thread(target=parse)
        thread.start()
        thread.join()
    finally:
        threading.stack_size(stack)
        sys.setrecursionlimit(limit)
    ok, value = outcome[0]
    if not ok:
        return outcome[0]
    todo = [(value, 1)]
    while todo:
        item, depth = todo.pop()
        if type(item) in (dict, list):
            if depth > _ORJSON_DEPTH:
                return (False, None)
            todo.extend((child, depth + 1) for child in (item.values() if type(item) is dict else item))
            if type(item) is dict:
                todo.extend((key, depth) for key in item)
        elif type(item) is str and not codec_exact.is_utf8(item):
            return (False, None)
    return outcome[0]


def _same(a: Any, b: Any) -> bool:
    """Equal values of equal types, floats to the bit (-0.0, NaN), keys in the same order; for any depth."""
    todo = [(a, b)]
    while todo:
        x, y = todo.pop()
        if type(x) is not type(y):
            return False
        if type(x) is dict:
            if list(x) != list(y):
                return False
            todo.extend((x[key], y[key]) for key in x)
        elif type(x) is list:
            if len(x) != len(y):
                return False
            todo.extend(zip(x, y, strict=True))
        elif type(x) is float:
            if struct.pack("<d", x) != struct.pack("<d", y) and not (math.isnan(x) and math.isnan(y)):
                return False
        elif x != y:
            return False
    return True


_WS = st.text(alphabet=" \t\n\r", max_size=2)
_WIDE_TEXT = st.builds(
    lambda sign, first, rest: sign + first + rest,
    st.sampled_from(["", "-"]),
    st.sampled_from("123456789"),
    st.text(alphabet="0123456789", min_size=18, max_size=399),
)
_FLOAT_TEXT = st.sampled_from(
    ["1.0e+30", "12345678901234567890e5", "-0", "-0.0", "0.1234567890123456789012", "1E-400", "-1.5e-7", "7"]
) | st.builds(
    lambda mantissa, fraction, exponent: mantissa + fraction + exponent,
    st.from_regex(r"\A-?[1-9][0-9]{18,40}\Z"),
    st.sampled_from(["", ".5", ".0000000000000000000001"]),
    st.sampled_from(["", "e5", "E-5", "e+30", "e-320"]),
).filter(lambda text: text[-1:].isdigit() and not text.lstrip("-").isdigit())
_STRING_PIECES = [
    "12345678901234567890",
    "-98765432109876543210",
    '\\"',
    "\\\\",
    "\\u0001",
    "\\u0001\\u0001",
    "\\u0001\\u0001\\u00017",
    "\\\\u0001",
    "NaN",
    "-Infinity",
    "a",
    "é",
    "\\ud83d\\ude00",
    " ",
    "\\n",
]
_STRING_TEXT = st.lists(st.sampled_from(_STRING_PIECES), max_size=6).map(lambda pieces: '"' + "".join(pieces) + '"')
_CONSTANT_TEXT = st.sampled_from(["NaN", "Infinity", "-Infinity"])
_SCALAR_TEXT = (
    _WIDE_TEXT
    | _FLOAT_TEXT
    | _STRING_TEXT
    | _CONSTANT_TEXT
    | st.sampled_from(["true", "false", "null", "0", "-5", "9223372036854775807"])
)
#: Texts that are not JSON, each of a kind where a token-by-token rewrite could misread it.
_NOT_JSON = [
    "01234567890123456789012",
    "-01234567890123456789012",
    "{12345678901234567890:1}",
    "{NaN:1}",
    "[1,]",
    '{"a":1,}',
    "1NaN",
    "12345678901234567890NaN",
    '"a \\12345678901234567890, 1',
    '"a \\NaN, 1',
    '"unterminated 12345678901234567890',
]


def _items(draw: Any, scalar: Any) -> list[str]:
    def value(depth: int) -> str:
        kind = draw(st.integers(0, 3 if depth < 3 else 0))
        ws = draw(_WS)
        if kind == 0 or kind == 3:
            return ws + draw(scalar) + ws
        if kind == 1:
            return ws + "[" + ",".join(value(depth + 1) for _ in range(draw(st.integers(0, 3)))) + "]" + ws
        keys = [draw(_STRING_TEXT) for _ in range(draw(st.integers(0, 3)))]
        return ws + "{" + ",".join(f"{ws}{key}{ws}:{value(depth + 1)}" for key in keys) + "}" + ws

    return [value(0) for _ in range(draw(st.integers(1, 4)))]


@st.composite
def _deep_texts(draw: Any) -> bytes:
    """Text nested 900 to 1,030 levels deep around JSON values, with values after the deepest, and (at times) a
    piece that is not JSON among them."""
    depth = draw(st.integers(900, 1030))
    dicts = draw(st.integers(0, 2**16 - 1))
    sep = draw(_WS)
    kinds = [(dicts >> (level % 16)) & 1 for level in range(depth)]
    openers = sep.join('{"12345678901234567890 k":' if kind else "[" for kind in kinds)
    closers = sep.join("}" if kind else "]" for kind in reversed(kinds))
    inner = _items(draw, _SCALAR_TEXT)
    tail = _items(draw, _SCALAR_TEXT)
    bad = draw(st.none() | st.sampled_from(_NOT_JSON))
    if bad is not None:
        (inner if draw(st.booleans()) else tail).insert(draw(st.integers(0, 4)), bad)
    # The innermost level is a list, so that it holds the items whatever the openers were.
    text = openers + sep + "[" + ",".join(inner) + "]" + sep + closers
    return ("[" + sep + text + "," + ",".join(tail) + "]" + sep).encode()


@settings(max_examples=150, deadline=None)
@given(_deep_texts(), st.booleans())
def test_deep_text_reads_as_the_stdlibs_parser_reads_it_given_the_stack(data: bytes, non_finite: bool) -> None:
    """Text nested past the stdlib's reach within the interpreter's limit is read as the stdlib's parser reads it
    given a stack deep enough, and refused when that parser refuses it (or it is deeper than orjson reads)."""
    import sys

    ok, expected = _oracle(data, non_finite=non_finite)
    calls = [lambda: codec_exact.loads_exact(data, strict=True, non_finite=non_finite)]
    if not non_finite:
        calls.append(lambda: codec.loads(data))
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(1000)  # the interpreter's default, which Hypothesis raises while it runs a test
    try:
        for call in calls:
            if ok:
                assert _same(call(), expected)
            else:
                with pytest.raises(ValueError):
                    call()
    finally:
        sys.setrecursionlimit(limit)


@pytest.mark.parametrize("non_finite", [False, True])
def test_a_store_reads_deep_text_as_the_stdlibs_parser_reads_it_given_the_stack(
    tmp_path: Any, non_finite: bool
) -> None:
    """read() of a row written by hand holds what the stdlib's parser reads in its JSON column, or is a corrupt
    row where that parser refuses the text, for text nested past the stdlib's reach."""
    import sqlite3
    import sys

    from agno_storage import AgentSession, CorruptRowError, SqliteStorage

    db = tmp_path / "s.db"
    store = SqliteStorage("t", db_file=db, read_non_finite=non_finite)
    store.upsert(AgentSession(session_id="s", session_data={}))

    @settings(max_examples=150, deadline=None)
    @given(_deep_texts())
    def check(data: bytes) -> None:
        text = b'{"d":' + data + b"}"
        ok, expected = _oracle(text, non_finite=non_finite)
        with sqlite3.connect(db) as conn:
            conn.execute("UPDATE t SET session_data = ?", (text.decode(),))
        conn.close()
        limit = sys.getrecursionlimit()
        sys.setrecursionlimit(1000)  # the interpreter's default, which Hypothesis raises while it runs a test
        try:
            if ok:
                session = store.read("s")
                assert session is not None and _same(session.session_data, expected)
            else:
                with pytest.raises(CorruptRowError):
                    store.read("s")
        finally:
            sys.setrecursionlimit(limit)

    try:
        check()
    finally:
        store.close()


@pytest.mark.parametrize(
    "bad",
    [
        "01234567890123456789012",
        "-01234567890123456789012",
        '"a \\12345678901234567890, 1',
        '"a \\NaN, 1',
    ],
)
@pytest.mark.parametrize("non_finite", [False, True])
def test_text_nested_past_the_stdlibs_reach_refuses_what_is_not_json_after_the_deepest_level(
    bad: str, non_finite: bool
) -> None:
    """An integer of 19 digits or more with a leading zero, or an unterminated string whose last escape is not
    one, is not JSON after text nested past the stdlib's reach as anywhere else: the store refuses it whether
    the text reads NaN (read_non_finite) or goes to the exact reading for an integer orjson reads as infinity."""
    body = "[" + "[" * _DEEP + "]" * _DEEP + ("," + "7" * 400 if not non_finite else ",NaN") + "," + bad + "]"
    assert _oracle(body.encode(), non_finite=non_finite) == (False, None)  # not JSON, given the stack to see it
    with pytest.raises(ValueError):
        codec_exact.loads_exact(body.encode(), strict=True, non_finite=non_finite)
    if not non_finite:
        with pytest.raises(ValueError):
            codec.loads(body)


@pytest.mark.parametrize("non_finite", [False, True])
def test_text_nested_past_orjsons_limit_is_refused_whatever_the_recursion_limit(non_finite: bool) -> None:
    """An application that raises the interpreter's recursion limit still has text nested past 1,024 levels
    refused on the exact reading, as orjson refuses it on the fast one: a store reads the same rows either way."""
    import sys

    # orjson's first complaint is the integer it reads as infinity, which sends the text to the exact reading.
    body = "[" + "7" * 400 + ",NaN" * non_finite + "," + "[" * 1024 + "]" * 1024 + "]"
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(limit + 3000)
    try:
        with pytest.raises(ValueError):
            codec_exact.loads_exact(body.encode(), strict=True, non_finite=non_finite)
        if not non_finite:
            with pytest.raises(ValueError):
                codec.loads(body)
    finally:
        sys.setrecursionlimit(limit)
