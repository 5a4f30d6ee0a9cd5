"""Where agno_storage's time goes: cProfile of its hot paths on small sessions.

    python -m bench.profile [--n 500] [--top 12]

Prints, for upsert (synchronous FULL and NORMAL), upsert_many, read and the
newest-20 list, the functions with the most own time.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import tempfile
from collections.abc import Callable
from pathlib import Path

from agno_storage import SqliteStorage
from bench import sessions
from bench.child import bulk_dicts
from bench.contenders import TABLE
from bench.harness import ours_session


def profile(label: str, fn: Callable[[], object], ops: int, top: int) -> str:
    prof = cProfile.Profile()
    prof.enable()
    fn()
    prof.disable()
    buf = io.StringIO()
    stats = pstats.Stats(prof, stream=buf)
    total = stats.total_tt  # type: ignore[attr-defined]
    stats.sort_stats("tottime").print_stats(top)
    lines = [f"## {label}: {total / ops * 1e6:.1f} µs per op under the profiler ({ops} ops)"]
    keep = False
    for line in buf.getvalue().splitlines():
        if line.strip().startswith("ncalls"):
            keep = True
        if keep and line.strip():
            lines.append(line.replace(str(Path(__file__).resolve().parent.parent) + "/", ""))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.profile")
    p.add_argument("--n", type=int, default=500)
    p.add_argument("--top", type=int, default=12)
    args = p.parse_args(argv)
    n = args.n
    small = [ours_session(sessions.small(i)) for i in range(n)]
    with tempfile.TemporaryDirectory() as tmp:
        out = []
        for sync in ("FULL", "NORMAL"):
            st = SqliteStorage(table_name=TABLE, db_file=Path(tmp) / f"p-{sync}.db", synchronous=sync)
            st.create()

            def upsert_all(st: SqliteStorage = st) -> None:
                for s in small:
                    st.upsert(s)

            out.append(profile(f"upsert new small, synchronous={sync}", upsert_all, n, args.top))
            if sync == "FULL":

                def read_all(st: SqliteStorage = st) -> None:
                    for s in small:
                        st.read(s.session_id)

                out.append(profile("read small", read_all, n, args.top))

                def recent(st: SqliteStorage = st) -> None:
                    for k in range(50):
                        st.get_recent_sessions(entity_id=f"agent-{k % 10:02d}", limit=20)

                out.append(profile("newest 20 of one agent", recent, 50, args.top))
            st.close()
        st = SqliteStorage(table_name=TABLE, db_file=Path(tmp) / "bulk.db")
        st.create()
        count = 10 * n
        gen = (ours_session(t, **over) for t, over in bulk_dicts(count))
        out.append(profile("upsert_many small", lambda: st.upsert_many(gen), count, args.top))
        st.close()
    print("\n\n".join(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
