"""Every error (the store's and the operations') is a StorageError, carries its context, and pickles intact."""

from __future__ import annotations

import pickle

import pytest

from agno_storage import errors
from agno_storage.errors import StorageError
from agno_storage.ops import errors as ops_errors

CASES = [
    errors.StorageError("m", table="t", session_id="s", column="c"),
    errors.InvalidInputError("m", table="t", session_id="s", column="memory"),
    errors.SchemaMismatchError("m", table="t", expected_mode="agent", found_mode="team"),
    errors.SchemaVersionError("m", table="t", found_version=1, current_version=2),
    errors.CorruptRowError("m", table="t", session_id="s", column="memory"),
    errors.BusyError("m", table="t"),
    errors.OwnershipError("m", table="t", session_id="s", user_id="bob"),
    errors.ConnectionLostError("m", table="t"),
    # The operations' (import, copy, prune, backup): an import's error pickled and read back in another process.
    ops_errors.ExportFormatError("m", line=3, imported=2, table="t", session_id="s", column="user_id"),
    ops_errors.RowsKeptError("m", table="t"),
    ops_errors.HotJournalError("m", path="p"),
    ops_errors.OutputIsSourceError("m", path="p"),
    ops_errors.DatabaseMissingError("m"),
]


@pytest.mark.parametrize("error", CASES, ids=lambda e: type(e).__name__)
def test_errors_pickle_with_their_attributes(error: StorageError) -> None:
    back = pickle.loads(pickle.dumps(error))
    assert type(back) is type(error)
    assert str(back) == str(error) == "m"
    assert vars(back) == vars(error)


def test_every_public_error_derives_from_storage_error() -> None:
    for name in errors.__all__:
        assert issubclass(getattr(errors, name), StorageError)
    for name in ops_errors.__all__:
        if name[0].isupper():
            assert issubclass(getattr(ops_errors, name), StorageError)


def test_every_error_of_the_operations_is_pickled_here() -> None:
    pickled = {type(e).__name__ for e in CASES}
    assert {n for n in ops_errors.__all__ if n[0].isupper()} <= pickled


def test_invalid_input_is_also_a_value_error() -> None:
    assert issubclass(errors.InvalidInputError, ValueError)


def test_importing_the_package_needs_neither_agno_nor_psycopg() -> None:
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import agno_storage\n"
        "assert 'agno' not in sys.modules, 'agno imported'\n"
        "assert 'psycopg' not in sys.modules, 'psycopg imported'\n"
        "assert agno_storage.PostgresStorage.__name__ == 'PostgresStorage'\n"
        "assert 'psycopg' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
