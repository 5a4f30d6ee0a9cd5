"""Deterministic agent sessions shaped like the ones agno 1.8.4 writes.

``Agent.get_agent_session`` stores ``memory`` as the memory's ``to_dict()``
with ``runs`` replaced by the session's ``RunResponse.to_dict()`` list; each
run holds its messages (``Message.to_dict()``, metrics on assistant turns)
and aggregated metrics. ``agent_data`` holds the name, agent_id and the
model's ``to_dict()``; ``session_data`` the session name, state and
``SessionMetrics``. Sizes are set by the number of runs: a small session is
about 7 KiB of JSON, a large one about 700 KiB.
"""

from __future__ import annotations

from typing import Any

import orjson

BASE_TS = 1_730_000_000
SMALL_RUNS = 3
LARGE_RUNS = 330

_TOPICS = (
    "the weather in Lisbon",
    "a SQL query for monthly revenue",
    "the difference between WAL and rollback journals",
    "a packing list for a week of hiking",
    "why the build fails on ARM",
    "how to cache embeddings",
    "a summary of the quarterly report",
    "unit tests for the parser",
)


def _seconds(k: int) -> float:
    return 1.25 + (k % 17) / 16 + k / 7_777_777


def _metrics(k: int) -> dict[str, Any]:
    return {
        "input_tokens": 412 + k % 97,
        "output_tokens": 118 + k % 61,
        "total_tokens": 530 + k % 97 + k % 61,
        "prompt_tokens": 412 + k % 97,
        "completion_tokens": 118 + k % 61,
        # Full-precision floats, as a timer's readings are (agno writes what perf_counter differences give).
        "time": _seconds(k),
        "time_to_first_token": 0.3125 + (k % 5) / 32 + k / 9_999_991,
    }


def _message(role: str, content: str, ts: int, k: int) -> dict[str, Any]:
    msg: dict[str, Any] = {
        "content": content,
        "from_history": False,
        "stop_after_tool_call": False,
        "role": role,
        "created_at": ts,
    }
    if role == "assistant":
        msg["metrics"] = _metrics(k)
    return msg


def _run(seed: int, r: int, session_id: str, agent_id: str) -> dict[str, Any]:
    k = seed * 1009 + r
    ts = BASE_TS + seed * 60 + r
    topic = _TOPICS[k % len(_TOPICS)]
    question = f"Question {k}: can you help me with {topic}? Please keep it short & concrete (<200 words)."
    answer = f"Sure. Here is what I found about {topic}, step by step, for request {k}. " + " ".join(
        f"Point {j}: detail {k * 7 + j} explains part {j} of the answer." for j in range(9)
    )
    messages = [
        _message("system", "You are a helpful assistant. Answer briefly and cite sources when you can.", ts, k),
        _message("user", question, ts, k),
        _message("assistant", answer, ts, k),
    ]
    m = _metrics(k)
    return {
        "content": answer,
        "content_type": "str",
        "messages": messages,
        "metrics": {name: [value] for name, value in m.items()},
        "model": "gpt-4o-mini",
        "model_provider": "OpenAI",
        "run_id": f"run-{seed:07d}-{r:04d}",
        "agent_id": agent_id,
        "session_id": session_id,
        # agno 1.8.4 stamps a run with the second its process imported agno, before any of the run's messages.
        "created_at": BASE_TS + seed * 60 - 1,
        "status": "RUNNING",
    }


def agno_session(
    i: int, *, n_runs: int = SMALL_RUNS, n_users: int = 100, n_agents: int = 10, prefix: str = "s"
) -> dict[str, Any]:
    """The ``i``-th session as a dict of agno 1.x AgentSession fields; same ``i`` gives the same dict."""
    session_id = f"{prefix}-{i:07d}"
    agent_id = f"agent-{i % n_agents:02d}"
    user_id = f"user-{(i * 7) % n_users:04d}"
    runs = [_run(i, r, session_id, agent_id) for r in range(n_runs)]
    input_tokens = sum(412 + (i * 1009 + r) % 97 for r in range(n_runs))
    return {
        "session_id": session_id,
        "user_id": user_id,
        "agent_id": agent_id,
        "team_session_id": None,
        "memory": {
            "runs": runs,
            "memories": [{"memory": f"User {user_id} prefers short answers", "input": "keep it short"}],
            "create_user_memories": False,
            "update_user_memories_after_run": True,
            "create_session_summary": False,
            "update_session_summary_after_run": True,
        },
        "agent_data": {
            "name": f"Assistant {i % n_agents}",
            "agent_id": agent_id,
            "model": {"name": "OpenAIChat", "id": "gpt-4o-mini", "provider": "OpenAI"},
        },
        "session_data": {
            "session_name": f"Session {i}",
            "session_state": {"current_session_id": session_id, "current_user_id": user_id, "step": i % 13},
            "session_metrics": {
                "input_tokens": input_tokens,
                "output_tokens": 118 * n_runs,
                "total_tokens": input_tokens + 118 * n_runs,
                "time": sum(_seconds(i * 1009 + r) for r in range(n_runs)),
                "time_to_first_token": 0.3125 + i / 9_999_991,
            },
        },
        "extra_data": {"source": "bench", "index": i},
        # Distinct, increasing creation times so "newest first" has one answer.
        "created_at": BASE_TS + i,
    }


def changed(d: dict[str, Any]) -> dict[str, Any]:
    """Session ``d`` as its agent writes it back after one more step; ``d`` is left as it is.

    The session state's step moves on and extra_data gains a revision: two
    JSON columns differ from ``d``'s, the size barely. What every contender
    writes in "upsert existing", so none resends a row identical to the
    stored one.
    """
    out: dict[str, Any] = orjson.loads(orjson.dumps(d))
    out["session_data"]["session_state"]["step"] += 1
    out["extra_data"]["revision"] = 1
    return out


def small(i: int, **kw: Any) -> dict[str, Any]:
    return agno_session(i, n_runs=SMALL_RUNS, **kw)


def large(i: int, **kw: Any) -> dict[str, Any]:
    return agno_session(i, n_runs=LARGE_RUNS, prefix=kw.pop("prefix", "L"), **kw)


def json_bytes(d: dict[str, Any]) -> int:
    """Bytes of a session's four JSON columns, as orjson writes them."""
    return sum(len(orjson.dumps(d[k])) for k in ("memory", "session_data", "extra_data", "agent_data"))
