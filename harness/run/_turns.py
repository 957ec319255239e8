"""Multi-turn cases (``turns:``): a sample is a conversation, one request per user turn, each after the answer before.

Before each later turn the previous answer is added as the assistant message — the answer as the cassette keeps it
(secrets out, the eval's personal data masked), so that a replay rebuilds every turn's request exactly and finds it
in the cassette by the one matching rule (``harness.record._cassettes.request_key``). An answer's tool calls are not
carried on: ``turns:`` has no tool results to send, so a turn answered with tool calls ends the conversation, and the
sample fails with the reason. A turn without an answer ends it too: the later turns are not sent, and the sample errors
with that turn's kind (``harness.run._scoring.conversed`` makes the row).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..checks import _builtins as checks
from ._row import AnsweredBy

if TYPE_CHECKING:  # the SDK's import is the runner's: the pre-flight (and `promptvcr estimate`) runs without it
    from . import _client as client

# One turn's answer: (the request body in the variant's own model, the turn's number from 0) → the result and who
# gave it (the runner's ``RunningCase._answer``: the fallback chain holds per turn)
Answerer = Callable[[dict[str, Any], int], "tuple[client.CallResult, AnsweredBy]"]


@dataclass(frozen=True)
class Turn:
    body: dict[str, Any]  # the turn's request as the variant's model gets it (what its checks see)
    result: client.CallResult
    answered_by: AnsweredBy


def follow_up(body: Mapping[str, Any], assistant: Mapping[str, Any], user: str) -> dict[str, Any]:
    """The next turn's request: ``body``'s messages, the answer to them, the user's next turn."""
    return {**body, "messages": [*body["messages"], dict(assistant), {"role": "user", "content": user}]}


def assistant_message(response: Mapping[str, Any]) -> dict[str, Any]:
    """The answer of ``response`` as the assistant message of the next request."""
    answer = checks.Answer.from_response(response)
    message: dict[str, Any] = {"role": "assistant", "content": answer.content}
    if answer.refusal is not None:
        message["refusal"] = answer.refusal
    return message


def called(response: Mapping[str, Any]) -> tuple[str, ...]:
    """The names of the tools an answer calls: a conversation can't go on past them (no tool results to send)."""
    return tuple(call.name for call in checks.Answer.from_response(response).tool_calls)


def converse(first: dict[str, Any], followups: Sequence[str], answer: Answerer) -> list[Turn]:
    """Every turn sent in order until one has no answer or calls tools (a single request when there are no
    ``followups``)."""
    said: list[Turn] = []
    body = first
    for number in range(len(followups) + 1):
        if number:
            previous = said[-1].result.response
            assert previous is not None  # the loop stops at a turn without an answer
            body = follow_up(body, assistant_message(previous), followups[number - 1])
        result, answered_by = answer(body, number)
        said.append(Turn(body, result, answered_by))
        if result.response is None or number == len(followups) or called(result.response):
            break
    return said
