"""The agno 3 records' converter is strict both ways, and the writer's rows are its dict form."""

from __future__ import annotations

import json
import uuid
from datetime import datetime

import attrs
import pytest
from cattrs.errors import ClassValidationError
from hypothesis import given, settings
from hypothesis import strategies as st

from agno_storage.agno3 import ddl
from agno_storage.agno3.records import Agno3Memory, Agno3Run, Agno3Session, make_converter
from agno_storage.agno3.rows import Rows
from agno_storage.agno3.runs import ID_NAMESPACE, RunBuilder, make_id


def _row() -> dict[str, object]:
    return {
        "run_id": "r1",
        "session_id": "s1",
        "run_type": "agent",
        "agent_id": "a",
        "team_id": None,
        "workflow_id": None,
        "user_id": "u",
        "parent_run_id": None,
        "status": "COMPLETED",
        "run_index": 0,
        "run_data": {"content": "hi"},
        "created_at": 1,
        "updated_at": None,
    }


def test_a_row_round_trips() -> None:
    converter = make_converter()
    run = converter.structure(_row(), Agno3Run)
    assert converter.unstructure(run) == _row()


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("run_id", 5, "expected str, got int: 5"),
        ("run_index", "0", "expected int, got str: '0'"),
        ("created_at", 1.5, "expected int, got float: 1.5"),
        ("run_data", [], "expected an object, got list"),
    ],
)
def test_nothing_is_coerced(key: str, value: object, expected: str) -> None:
    converter = make_converter()  # outside the raises: a converter that cannot be built is no refusal
    with pytest.raises(ClassValidationError) as caught:
        converter.structure({**_row(), key: value}, Agno3Run)
    # The one field refused, and by the strict hook, not by anything else in the row.
    (error,) = caught.value.exceptions
    assert type(error) is TypeError and str(error) == expected
    assert [note for note in getattr(error, "__notes__", []) if note.endswith(f" @ attribute {key}")]


def test_unknown_keys_are_refused() -> None:
    with pytest.raises(Exception):  # noqa: B017
        make_converter().structure({**_row(), "extra": 1}, Agno3Run)


def _records() -> list[tuple[str, object]]:
    nested = {"messages": [{"role": "user", "content": "héllo", "metrics": {"input_tokens": 3}}], "n": [1, 2.5, None]}
    session = Agno3Session(
        session_id="s1",
        session_type="agent",
        agent_id="a",
        team_id=None,
        workflow_id=None,
        user_id="u",
        session_data={"session_state": {"k": [1, {"x": True}]}},
        agent_data=None,
        team_data=None,
        workflow_data=None,
        metadata={"agno_v1": {"stamp": "x", "run_ids": ["r1"]}},
        summary=None,
        created_at=1,
        updated_at=2,
    )
    run = make_converter().structure({**_row(), "run_data": nested}, Agno3Run)
    memory = Agno3Memory(
        memory_id="m1",
        memory="likes tea",
        input=None,
        agent_id=None,
        team_id=None,
        user_id="u",
        topics=["tea"],
        feedback=None,
        created_at=1,
        updated_at=1,
    )
    return [(ddl.SESSIONS, session), (ddl.RUNS, run), (ddl.MEMORIES, memory)]


@pytest.mark.parametrize(("table", "record"), _records(), ids=[t for t, _ in _records()])
def test_every_row_is_what_the_converter_unstructures(table: str, record: object) -> None:
    """The writer's parameter tuple: the converter's dict in column order, JSON columns as text json.loads reads back."""
    data = make_converter().unstructure(record)
    assert list(data) == list(ddl.COLUMNS[table])
    row = Rows().of(table, record)
    assert len(row) == len(data)
    for column, value in zip(ddl.COLUMNS[table], row, strict=True):
        if column in ddl.JSON_COLUMNS[table]:
            assert isinstance(value, str) and json.loads(value) == data[column]
        else:
            assert value == data[column]


@pytest.mark.parametrize(
    "value",
    [float("nan"), float("inf"), [1, float("-inf")], 2**70, {1: "a"}, "lone \udc80 surrogate", [[[]]] * 2],
    ids=["nan", "inf", "nested-inf", "wide-int", "int-key", "surrogate", "plain"],
)
def test_json_orjson_cannot_write_as_it_is_gets_json_dumps_text(value: object) -> None:
    """NaN, infinities, wide ints, non-str keys, lone surrogates: json.dumps's text, as agno 3 writes them."""
    run = make_converter().structure({**_row(), "run_data": {"v": None}}, Agno3Run)
    run = attrs.evolve(run, run_data={"v": value, "n": None})
    text = Rows().of(ddl.RUNS, run)[ddl.COLUMNS[ddl.RUNS].index("run_data")]
    assert json.loads(text) == json.loads(json.dumps({"v": value, "n": None}))
    if value != [[[]]] * 2:
        assert text == json.dumps({"v": value, "n": None})


def test_a_value_json_cannot_hold_is_refused() -> None:
    run = make_converter().structure(_row(), Agno3Run)
    with pytest.raises(TypeError):
        Rows().of(ddl.RUNS, attrs.evolve(run, run_data={"when": datetime.now()}))


def _every_field_set(cls: type) -> object:
    """An instance of ``cls`` whose every field holds a value that is not its default (so a field pickling lost
    or put in another's place would show)."""
    values: dict[str, object] = {}
    for i, field in enumerate(attrs.fields(cls)):
        if field.type in ("int", int):
            values[field.name] = 100 + i
        elif field.type in ("bool", bool):
            values[field.name] = field.default is not True
        elif "tuple" in str(field.type) and "tuple[Any" in str(field.type):
            values[field.name] = ((f"row-{i}", i),)
        elif "tuple" in str(field.type):
            values[field.name] = (f"{field.name}-{i}",)
        else:
            values[field.name] = f"{field.name}-{i}"
    return cls(**values)


def test_what_workers_send_back_unpickles_to_the_same_records() -> None:
    """Batches cross the pipe from a migration worker pickled field by field (``ByFields``): every field comes
    back, in its own place, for each class that does so."""
    import pickle

    from agno_storage.agno3 import chunks  # noqa: F401 - its classes are ByFields' subclasses too
    from agno_storage.agno3.records import ByFields

    classes = ByFields.__subclasses__()
    assert {c.__name__ for c in classes} >= {"Encoded", "Previous", "SessionRuns", "ModeCount"}
    for cls in classes:
        record = _every_field_set(cls)
        back = pickle.loads(pickle.dumps(record, protocol=pickle.HIGHEST_PROTOCOL))
        assert type(back) is cls
        assert attrs.asdict(back, recurse=False) == attrs.asdict(record, recurse=False)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.text(), st.integers(), st.none()), max_size=4))
def test_made_ids_are_the_uuid5_of_their_parts(parts: list[object]) -> None:
    # Ids made for runs and memories that had none are stored, and a rerun finds its earlier rows by them: the
    # hand-built uuid5 must give uuid.uuid5's text for every part, lone surrogates refused alike.
    try:
        expected: str | None = str(uuid.uuid5(ID_NAMESPACE, "\x1f".join(str(p) for p in parts)))
    except UnicodeEncodeError:
        expected = None
    if expected is None:
        with pytest.raises(UnicodeEncodeError):
            make_id(*parts)
    else:
        assert make_id(*parts) == expected


@pytest.mark.parametrize("run_type", ["agent", "team", "workflow"])
def test_a_run_builder_puts_each_value_in_its_column(run_type: str) -> None:
    """RunBuilder.add makes each row by position: every column must get its own value, for each kind of run."""
    builder = RunBuilder(session_id="s-1", user_id="u-1", created_at=5)
    builder.add({"run_id": "r-0", "created_at": 1}, "agent", None)
    data = {"run_id": "r-1", "agent_id": "a-1", "team_id": "t-1", "workflow_id": "w-1", "status": "RUNNING"}
    run = builder.add(data | {"created_at": 7}, run_type, "p-1")
    assert attrs.asdict(run, recurse=False) == {
        "run_id": "r-1",
        "session_id": "s-1",
        "run_type": run_type,
        "agent_id": "a-1" if run_type == "agent" else None,
        "team_id": "t-1" if run_type == "team" else None,
        "workflow_id": "w-1",
        "user_id": "u-1",
        "parent_run_id": "p-1",
        "status": "RUNNING",
        "run_index": 1,
        "run_data": data | {"created_at": 7},
        "created_at": 7,
        "updated_at": 7,
    }
