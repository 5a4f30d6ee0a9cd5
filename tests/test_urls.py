"""One URL parser for every entry point: what it accepts, what it refuses, and that all agree."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agno_storage import InvalidInputError, Mode, SqliteStorage, open_storage
from agno_storage.urls import (
    PostgresTarget,
    SqliteTarget,
    parse,
    parse_location,
    postgres_conninfo,
    without_password,
)
from tests.sessions import make_session


@pytest.mark.parametrize(
    ("url", "target"),
    [
        ("sqlite:///rel/x.db", SqliteTarget("rel/x.db")),
        ("sqlite:////abs/x.db", SqliteTarget("/abs/x.db")),
        ("SQLite:///x.db", SqliteTarget("x.db")),
        ("sqlite+pysqlite:///x.db", SqliteTarget("x.db")),
        ("sqlite://", SqliteTarget(None)),
        ("sqlite:///", SqliteTarget(None)),
        ("sqlite:///:memory:", SqliteTarget(None)),
        ("postgresql://u@h/db", PostgresTarget("postgresql://u@h/db")),
        ("postgres://u@h:5433/db", PostgresTarget("postgresql://u@h:5433/db")),
        ("PostgreSQL+psycopg://u:pw@h/db", PostgresTarget("postgresql://u:pw@h/db")),
    ],
)
def test_parse_names_the_engine_and_the_database(url: str, target: object) -> None:
    assert parse(url) == target


@pytest.mark.parametrize(
    "url",
    ["mysql://h/db", "x.db", "sqlite:/x.db", "sqlite://host/x.db", "sqlite:///x.db?mode=ro", "", "://x", 5, None],
)
def test_parse_refuses_what_no_engine_takes(url: object) -> None:
    with pytest.raises(InvalidInputError):
        parse(url)


@pytest.mark.parametrize(
    ("url", "timeout"),
    [
        ("sqlite:///x.db?timeout=30", 30.0),
        ("sqlite:///x.db?timeout=2.5&check_same_thread=false", 2.5),
        ("sqlite:///x.db?check_same_thread=False", None),
        ("sqlite:///?timeout=1", 1.0),
    ],
)
def test_a_sqlite_url_takes_the_driver_settings_sqlalchemy_users_write_in_it(url: str, timeout: float | None) -> None:
    """SQLAlchemy hands a SQLite URL's timeout (seconds to wait for a lock) and check_same_thread to sqlite3, and
    agno's users write them in db_url: the timeout is the store's busy_timeout; check_same_thread means nothing
    to a store whose threads each have their own connection."""
    from sqlalchemy.engine import make_url

    target = parse(url)
    assert isinstance(target, SqliteTarget)
    assert target.path == (make_url(url).database or None) and target.timeout == timeout


@pytest.mark.parametrize(
    ("url", "named"),
    [
        ("sqlite:///x.db?mode=ro", "'mode'"),
        ("sqlite:///x.db?uri=true&mode=ro", "'uri'"),
        ("sqlite:///x.db?isolation_level=IMMEDIATE", "'isolation_level'"),
        ("sqlite:///x.db?timeout=soon", "timeout"),
        ("sqlite:///x.db?timeout=1&timeout=2", "timeout"),
        ("sqlite:///x.db?check_same_thread=maybe", "check_same_thread"),
        ("sqlite:///x.db?timeout", "timeout"),
        ("sqlite:///x.db?timeout=nan", "timeout"),
        ("sqlite:///x.db?timeout=-1", "timeout"),
    ],
)
def test_a_sqlite_url_refuses_settings_it_would_not_honour_and_names_them(url: str, named: str) -> None:
    with pytest.raises(InvalidInputError, match=named):
        parse(url)


def test_a_sqlite_urls_timeout_is_the_stores_busy_timeout(tmp_path: Path) -> None:
    db = tmp_path / "x.db"
    store = SqliteStorage("agent_sessions", db_url=f"sqlite:///{db}?timeout=30")
    assert store.busy_timeout == 30.0 and store.pragmas["busy_timeout"] == 30000
    store.upsert(make_session(Mode.AGENT, "s"))
    assert store.db_path == str(db)
    store.close()
    with pytest.raises(InvalidInputError, match="busy_timeout"):
        SqliteStorage("agent_sessions", db_url=f"sqlite:///{db}?timeout=30", busy_timeout=5)
    with pytest.raises(InvalidInputError, match="timeout"):
        SqliteStorage("agent_sessions", db_url=f"sqlite:///{db}?timeout=-1")
    assert SqliteStorage("agent_sessions", db_file=str(db)).busy_timeout == 10.0


@pytest.mark.parametrize("value", ["3000000", "1e300"])
def test_a_wait_past_sqlites_longest_is_refused_saying_how_long_a_wait_may_be(tmp_path: Path, value: str) -> None:
    """SQLite waits at most 2**31 - 1 milliseconds; a longer timeout= or busy_timeout was refused as "must be
    seconds >= 0", which it was."""
    for kwargs in ({"db_url": f"sqlite:///{tmp_path}/x.db?timeout={value}"}, {"busy_timeout": float(value)}):
        with pytest.raises(InvalidInputError, match=r"from 0 to 2147483\.647 seconds"):
            SqliteStorage("agent_sessions", db_file=None if "db_url" in kwargs else tmp_path / "x.db", **kwargs)


def test_parse_location_takes_a_bare_path_as_a_sqlite_file() -> None:
    assert parse_location("data/x.db") == SqliteTarget("data/x.db")
    assert parse_location("sqlite:///x.db") == SqliteTarget("x.db")
    with pytest.raises(InvalidInputError):
        parse_location("")


def test_postgres_conninfo_passes_libpq_keyword_strings_and_refuses_sqlite() -> None:
    assert postgres_conninfo("host=h dbname=d") == "host=h dbname=d"
    assert postgres_conninfo("postgresql+psycopg://u@h/db") == "postgresql://u@h/db"
    with pytest.raises(InvalidInputError, match="db_url"):
        postgres_conninfo("sqlite:///x.db")


def test_every_entry_point_accepts_the_same_spelling(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A scheme in capitals passed open_storage's check and was refused by the store it opened.
    monkeypatch.chdir(tmp_path)
    store = open_storage("SQLite:///x.db", "s")
    store.upsert(make_session(Mode.AGENT, "s1"))
    assert SqliteStorage("s", db_url="SQLITE+pysqlite:///x.db").read("s1") is not None
    from agno_storage.agno import SqliteStorage as AgnoSqliteStorage

    adapter = AgnoSqliteStorage("s", db_url="Sqlite:///x.db")
    assert adapter.backend == "sqlite"
    assert adapter.read("s1") is not None


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://ada:s3cret@db.example/app", "postgresql://ada:***@db.example/app"),
        ("postgresql://ada@db.example/app", "postgresql://ada@db.example/app"),
        ("postgresql://db.example/app", "postgresql://db.example/app"),
        ("sqlite:///data/agno.db", "sqlite:///data/agno.db"),
        ("data/agno.db", "data/agno.db"),
        ("postgresql://ada:s3cret@[::1/app", "postgresql://ada:***@[::1/app"),  # unparsable, masked all the same
        ("postgresql://ada:s3:c@r@db/app", "postgresql://ada:***@db/app"),
        (
            "postgresql://ada@db/app?sslmode=require&password=s3cret",
            "postgresql://ada@db/app?sslmode=require&password=***",
        ),
        ("host=db password=s3cret user=ada", "host=db password=*** user=ada"),
        ("host=db password='s3 \\'cret' user=ada", "host=db password=*** user=ada"),
        ("postgressql://ada:s3cret@db/app", "postgressql://ada:***@db/app"),  # a scheme no engine takes
        ("postgresql://ada:s3?cr#et@db/app", "postgresql://ada:***@db/app"),  # libpq reads ? and # in it
        ("host=db password=s3&cret user=ada", "host=db password=*** user=ada"),
        ("host=db password=s3\\ cret user=ada", "host=db password=*** user=ada"),
        ("host=db sslpassword=keypass", "host=db sslpassword=***"),
        ("postgresql://ada@db/app?sslpassword=kp&x=1", "postgresql://ada@db/app?sslpassword=***&x=1"),
        ("postgresql://ada@db/app?passwor%64=s3cret", "postgresql://ada@db/app?passwor%64=***"),
        ("sqlite:///data/password=1.db", "sqlite:///data/password=1.db"),  # a file name, not a setting
        ("data/password=1.db", "data/password=1.db"),
        ("postgresql://ada@db/app?password=s3#cret", "postgresql://ada@db/app?password=***"),  # libpq: no fragment
        ("host=db application_name='x password=y' dbname=app", "host=db application_name='x password=y' dbname=app"),
        ("backup.password=2024.db", "backup.password=2024.db"),  # file names, not settings
        ("notes-password=old.db", "notes-password=old.db"),
        ("C:\\data\\password=1.db", "C:\\data\\password=1.db"),
        (" postgresql://ada:s3cret@db/app", " postgresql://ada:***@db/app"),
        ("host='db'password=s3cret", "host='db'password=***"),  # libpq needs no space after a quote
        ("host=db password='x'sslpassword=s3cret", "host=db password=***sslpassword=***"),
        ("postgresql://a#b:s3cret@db/app", "postgresql://a#b:***@db/app"),  # libpq: # and ? in the user too
        ("postgresql://us?er:s3cret@db/app", "postgresql://us?er:***@db/app"),
        ("postgresql://us?er@db/app?password=s3cret", "postgresql://us?er@db/app?password=***"),
        ("postgresql://us?er:pw@db/app?sslpassword=s3cret", "postgresql://us?er:***@db/app?sslpassword=***"),
        ("postgresql://db?password=s3cret", "postgresql://db?password=***"),  # no user, no path
    ],
)
def test_without_password_masks_only_a_password(url: str, shown: str) -> None:
    assert without_password(url) == shown


def _agno_storage() -> Any:
    from agno_storage.agno import SqliteStorage as AgnoSqliteStorage

    return AgnoSqliteStorage


@pytest.mark.parametrize(
    "call",
    [
        lambda: parse("postgressql://ada:s3cret@db/app"),
        lambda: parse("sqlite://ada:s3cret@db/x.db"),
        lambda: parse("mysql://ada:s3cret@db/app"),
        lambda: postgres_conninfo("sqlite:////tmp/x.db?password=s3cret"),
        lambda: SqliteStorage("t", db_url="postgresql://ada:s3cret@db/app"),
        lambda: _agno_storage()("t", db_url="postgresql://ada:s3cret@db/app", db_file="x.db"),
    ],
)
def test_no_error_message_shows_a_password(call: Any) -> None:
    with pytest.raises(InvalidInputError) as caught:
        call()
    assert "s3cret" not in str(caught.value)


@pytest.mark.parametrize("call", [postgres_conninfo, parse_location])
def test_a_url_with_spaces_around_it_is_refused_without_its_password(call: Any) -> None:
    with pytest.raises(InvalidInputError) as caught:
        call(" postgresql://ada:s3cret@db/app")
    assert "s3cret" not in str(caught.value) and "spaces" in str(caught.value)


def test_a_keyword_connection_string_whose_password_holds_a_scheme_is_not_taken_for_a_url() -> None:
    assert postgres_conninfo("host=db password=a://s3cret") == "host=db password=a://s3cret"


def test_the_command_and_the_server_show_a_url_alike(pg_server: Any, capsys: pytest.CaptureFixture[str]) -> None:
    from agno_storage.cli import main
    from agno_storage.web.source import PostgresSource
    from tests.pgserver import SUPERUSER

    url = f"postgresql://{SUPERUSER}:s3cret@127.0.0.1:{pg_server.port}/postgres"
    masked = f"postgresql://{SUPERUSER}:***@127.0.0.1:{pg_server.port}/postgres"
    assert main(["info", url, "--table", "no_such_table", "--schema", "no_such_schema"]) == 1
    err = capsys.readouterr().err
    assert f"no table 'no_such_table' in {masked};" in err and "s3cret" not in err
    source = PostgresSource(url, schema_name="no_such_schema")
    try:
        assert source.describe() == f"{masked} (schema 'no_such_schema')"
    finally:
        source.close()


def test_a_message_is_scrubbed_without_garbling_it_or_showing_a_short_passwords_letters() -> None:
    """The URL a message quotes whole is masked whole; a password equal to the user name, or of one letter,
    is not masked wherever its letters occur (which garbled the message and showed the password)."""
    from agno_storage.ops.db import scrubbed

    same = "postgresql://postgres:postgres@127.0.0.1:1/nope_db"
    assert scrubbed(f"opening DST '{same}': connection refused", same) == (
        "opening DST 'postgresql://postgres:***@127.0.0.1:1/nope_db': connection refused"
    )
    short = "postgresql://app:o@db/app"
    assert scrubbed(f"{short}: connection to server failed", short) == (
        "postgresql://app:***@db/app: connection to server failed"
    )
    long = "postgresql://app:s3cr3tPW@db/app"
    assert (
        scrubbed('invalid URI query parameter: "s3cr3tPW@db/app"', long) == 'invalid URI query parameter: "***@db/app"'
    )
    assert scrubbed("nothing secret here", "postgresql://app@db/app") == "nothing secret here"
    # A short password standing alone (quoted, decoded from its percent-encoding) is masked there only; the URL
    # as the driver was given it (no "+psycopg") is masked whole.
    assert scrubbed('invalid: "abc" in "abcde"', "postgresql://u:a%62c@h/db") == 'invalid: "***" in "abcde"'
    given = "postgresql+psycopg://u:abc@[::1/db"
    said = scrubbed('end of string reached in URI: "postgresql://u:abc@[::1/db"', given)
    assert "abc" not in said and "u:***@" in said


@pytest.mark.parametrize(
    "key", ["password", "sslpassword", "oauth_client_secret", "scram_client_key", "scram_server_key"]
)
def test_every_secret_setting_of_libpq_is_masked(key: str) -> None:
    """The settings libpq itself shows as secrets (its "*" display flag), in a connection string or a URL."""
    from agno_storage.urls import without_password

    assert "S3CR3T" not in without_password(f"host=db dbname=app {key}=S3CR3T")
    assert "S3CR3T" not in without_password(f"postgresql://u@db/app?{key}=S3CR3T")


@pytest.mark.parametrize(
    "url", ["sqlite:///my%20sessions.db", "sqlite:///a%25b.db", "sqlite:///a%3Fb.db", "sqlite:///caf%C3%A9.db"]
)
def test_a_sqlite_url_names_the_file_sqlalchemy_and_so_agno_opens(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """agno's store opens a db_url through SQLAlchemy, which percent-decodes the path: the same URL given to this
    store must open the same file, or an Agent switched to it starts a new file without its history."""
    from agno.storage.session.agent import AgentSession as AgnoAgentSession
    from agno.storage.sqlite import SqliteStorage as AgnoSqliteStorage
    from sqlalchemy.engine import make_url

    from agno_storage.agno import SqliteStorage as AdapterSqliteStorage

    monkeypatch.chdir(tmp_path)
    assert parse(url) == SqliteTarget(make_url(url).database)
    agno_store = AgnoSqliteStorage(table_name="agent_sessions", db_url=url, mode="agent")
    agno_store.create()
    agno_store.upsert(AgnoAgentSession(session_id="s1", user_id="u", agent_id="a", memory={"runs": []}))
    ours = AdapterSqliteStorage(table_name="agent_sessions", db_url=url, mode="agent")
    try:
        found = ours.read("s1")
        assert found is not None and found.session_id == "s1"
    finally:
        ours.close()
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(("-wal", "-shm"))] == [make_url(url).database]
