"""A deterministic agno model that answers from a script and records its input.

Real agno Agents, Teams and Workflows run on it with no network and no API
key. Every call records the messages agno sent (role and text), so a test or
an example can show that history loaded from storage reached the model.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

from agno.models.base import Model
from agno.models.message import Message
from agno.models.response import ModelResponse


@dataclass
class FakeReply:
    """The raw provider response the fake model hands to its own parser."""

    content: str


@dataclass
class FakeModel(Model):
    """Answers ``"<prefix> #<n>: <last user text>"`` and records every call.

    Thread-safety: none; one model per test. Deep copies share the recorder
    (agno deep-copies models when it copies agents), so calls made through a
    copy are still visible on the original.
    """

    id: str = "fake-model"
    name: str | None = "FakeModel"
    provider: str | None = "Fake"
    prefix: str = "reply"
    calls: list[list[dict[str, str]]] = field(default_factory=list)

    def __deepcopy__(self, memo: dict[int, Any]) -> FakeModel:
        return self

    # -- what the fake says -------------------------------------------------
    def _answer(self, messages: list[Message]) -> FakeReply:
        seen = [{"role": m.role, "content": m.get_content_string()} for m in messages]
        self.calls.append(seen)
        last_user = next((m["content"] for m in reversed(seen) if m["role"] == "user"), "")
        return FakeReply(content=f"{self.prefix} #{len(self.calls)}: {last_user}")

    def seen_texts(self, call: int = -1) -> list[str]:
        """The message texts of one recorded call (the last by default)."""
        return [m["content"] for m in self.calls[call]]

    # -- agno's abstract methods ---------------------------------------------
    def invoke(self, *args: Any, **kwargs: Any) -> FakeReply:
        return self._answer(kwargs["messages"])

    async def ainvoke(self, *args: Any, **kwargs: Any) -> FakeReply:
        return self._answer(kwargs["messages"])

    def invoke_stream(self, *args: Any, **kwargs: Any) -> Iterator[FakeReply]:
        yield self._answer(kwargs["messages"])

    # agno annotates its abstract ainvoke_stream as a coroutine returning a
    # generator, but calls it as the async generator every provider defines.
    async def ainvoke_stream(self, *args: Any, **kwargs: Any) -> AsyncIterator[FakeReply]:  # type: ignore[override]
        yield self._answer(kwargs["messages"])

    def parse_provider_response(self, response: Any, **kwargs: Any) -> ModelResponse:
        return ModelResponse(role="assistant", content=response.content)

    def parse_provider_response_delta(self, response: Any) -> ModelResponse:
        return ModelResponse(role="assistant", content=response.content)
