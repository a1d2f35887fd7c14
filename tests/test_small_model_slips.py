"""What a small model gets wrong in tool calling, handled by the run loop (issue 11, point 4).

Each test scripts a model behind litellm's real code path (a ``CustomLLM`` provider) that makes
one of the slips a 1.5B model made on the demo crew, and checks what the user and the tools see.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from shipmates import Agent, ShipmatesError, tool
from support import litellm_offline
from support.litellm_offline import custom_provider

_no_openai_settings = litellm_offline._no_openai_settings
litellm_lib = litellm_offline.litellm_lib

pytestmark = pytest.mark.filterwarnings("ignore:.*ReadOnly.*:UserWarning")

RAN: list[int] = []


@tool
def double(n: int) -> int:
    """Double n."""
    RAN.append(n)
    return 2 * n


@tool
def flaky(n: int) -> int:
    """Fails for every n."""
    RAN.append(n)
    raise ValueError(f"no luck with {n}")


class Script:
    """The model's replies, one per request: text, or a list of (name, arguments) tool calls."""

    def __init__(self) -> None:
        self.replies: list[Any] = []
        self.requests: list[list[dict[str, Any]]] = []
        self.tool_choices: list[Any] = []
        self.tools: list[list[str]] = []
        """The names of the tools offered with each request."""


@pytest.fixture
def script(litellm_lib: Any) -> Iterator[Script]:
    from litellm.llms.custom_llm import CustomLLM

    scripted = Script()

    class Scripted(CustomLLM):
        async def acompletion(self, model: str, messages: list[Any], *args: Any, **kwargs: Any) -> Any:
            scripted.requests.append(json.loads(json.dumps(messages)))
            optional = kwargs.get("optional_params") or {}
            scripted.tool_choices.append(optional.get("tool_choice"))
            scripted.tools.append([t["function"]["name"] for t in optional.get("tools") or []])
            reply = scripted.replies.pop(0)
            if isinstance(reply, Exception):
                raise reply
            if isinstance(reply, str):
                message: dict[str, Any] = {"role": "assistant", "content": reply}
            else:
                text, calls = reply if isinstance(reply, tuple) else (None, reply)
                message = {
                    "role": "assistant",
                    "content": text,
                    "tool_calls": [
                        {
                            "id": f"c{i}",
                            "type": "function",
                            "function": {"name": n, "arguments": json.dumps(a)},
                        }
                        for i, (n, a) in enumerate(calls)
                    ],
                }
            finish = "tool_calls" if message.get("tool_calls") else "stop"
            return litellm_lib.ModelResponse(choices=[{"message": message, "finish_reason": finish}])

    RAN.clear()
    for _ in custom_provider(litellm_lib, "slips", Scripted()):
        yield scripted


def _run(agent: Agent, query: str) -> Any:
    return asyncio.run(agent.arun(query))


@pytest.mark.parametrize(
    "written",
    [
        '```json\n{"name": "double", "arguments": {"n": 21}}\n```',
        '<tool_call>\n{"name": "double", "arguments": {"n": 21}}\n</tool_call>',
        '{"name": "double", "arguments": {"n": 21}}',
        '[{"type": "function", "function": {"name": "double", "arguments": "{\\"n\\": 21}"}}]',
    ],
)
def test_a_tool_call_written_as_text_is_run_not_printed(script: Script, written: str) -> None:
    script.replies = [written, "It is 42."]
    result = _run(Agent("doubler", model="slips/any", tools=[double]), "double 21")
    assert result.output == "It is 42."
    assert RAN == [21]
    assert [(e.tool, e.status, e.result) for e in result.events] == [("double", "ok", "42")]
    tool_message = script.requests[1][-1]
    assert tool_message["role"] == "tool" and tool_message["content"] == "42"


def test_json_naming_no_tool_is_sent_back_once_then_answered(script: Script) -> None:
    script.replies = ['{"name": "triple", "arguments": {"n": 2}}', "I can only double: 4."]
    result = _run(Agent("doubler", model="slips/any", tools=[double]), "triple 2")
    assert result.output == "I can only double: 4."
    note = script.requests[1][-1]
    assert note["role"] == "user" and "'triple'" in note["content"] and "double" in note["content"]
    assert RAN == []


def test_identical_calls_in_one_turn_run_once_and_each_gets_the_result(script: Script) -> None:
    script.replies = [[("double", {"n": 4}), ("double", {"n": 4}), ("double", {"n": 5})], "8, 8 and 10."]
    result = _run(Agent("doubler", model="slips/any", tools=[double]), "double 4 twice and 5")
    assert sorted(RAN) == [4, 5]
    answers = {m["tool_call_id"]: m["content"] for m in script.requests[1] if m["role"] == "tool"}
    assert answers == {"c0": "8", "c1": "8", "c2": "10"}
    assert result.output == "8, 8 and 10."


def test_a_repeated_failing_call_is_not_run_again_and_then_stops_the_run(script: Script) -> None:
    call = [("flaky", {"n": 3})]
    script.replies = [call, call, call, "never reached"]
    with pytest.raises(ShipmatesError) as info:
        _run(Agent("tryer", model="slips/any", tools=[flaky]), "try 3")
    assert RAN == [3]  # run once; the repeats were answered without running it
    told = script.requests[2][-1]["content"]
    assert "already failed" in told and "no luck with 3" in told
    message = str(info.value)
    assert "kept repeating the call flaky" in message and "no luck with 3" in message


def test_a_repeated_delegation_is_not_run_again_and_then_the_model_must_answer(script: Script) -> None:
    # Seen with the demo crew: a captain asking its siblings the same questions in turn after
    # turn until max_turns, although it had every answer after the first round.
    asked: list[str] = []

    class Doubler:
        name, description = "doubler", "Doubles a number."

        def invoke(self, query: str) -> str:
            asked.append(query)
            return "8"

    captain = Agent("captain", model="slips/any")
    captain.absorb(Doubler())
    call = [("doubler", {"query": "double 4"})]
    script.replies = [call, call, call, "It is 8."]
    result = _run(captain, "double 4")
    assert result.status == "ok" and result.output == "It is 8."
    assert asked == ["double 4"]  # once; the repeats got the answer the captain already had
    told = script.requests[2][-1]["content"]
    assert "already answered" in told and "8" in told
    assert script.tool_choices == [None, None, None, "none"]  # the third ask: now it answers


def test_a_plain_tool_asked_again_runs_again(script: Script) -> None:
    call = [("double", {"n": 4})]
    script.replies = [call, call, "8, twice."]
    result = _run(Agent("doubler", model="slips/any", tools=[double]), "double 4, then check it")
    assert RAN == [4, 4] and result.output == "8, twice."


def test_the_parameter_description_as_query_passes_the_users_request_on(script: Script) -> None:
    """The slip the 1.5B model made most: the query's own description sent as the query. The
    sibling gets what the user asked instead, as the captain should have sent."""
    from shipmates._run._sibling_tool import query_description

    asked: list[str] = []

    class Echo:
        name, description = "echo", "Echoes what it is asked."

        def invoke(self, query: str) -> str:
            asked.append(query)
            return f"echo: {query}"

    captain = Agent("captain", model="slips/any")
    captain.absorb(Echo())
    script.replies = [[("echo", {"query": query_description("echo")})], "echo: ask echo to say hi"]
    result = _run(captain, "ask echo to say hi")
    assert asked == ["ask echo to say hi"]
    assert result.output == "echo: ask echo to say hi"


def test_a_placeholder_query_outside_a_run_is_an_error_naming_the_fix() -> None:
    from shipmates._run._sibling_tool import query_description, sibling_tool
    from shipmates._run._tool import ToolArgumentsError

    class Echo:
        name, description = "echo", "Echoes."

        def invoke(self, query: str) -> str:
            return query

    tool = sibling_tool(Echo())
    for placeholder in ("", "  ", query_description("echo")):
        with pytest.raises(ToolArgumentsError, match="Call 'echo' again with what the user asked"):
            tool.bind({"query": placeholder})


def test_text_beside_a_tool_call_reaches_the_trace(script: Script) -> None:
    from shipmates._cli._trace import Tracer, tracing

    lines: list[str] = []
    script.replies = [("Let me double it.", [("double", {"n": 2})]), "4"]
    with tracing(Tracer(lines.append)):  # as a piped chat traces (the built-in trace plugin)
        _run(Agent("doubler", model="slips/any", tools=[double]), "double 2")
    assert lines[0] == "[doubler] says: Let me double it."
    assert lines[1].startswith("[doubler] double(n=2) -> 4")


class _Crewmate:
    """A sibling that answers ``reply`` and records what it was asked."""

    def __init__(self, name: str, description: str, reply: str) -> None:
        self.name, self.description, self.reply = name, description, reply
        self.asked: list[str] = []

    def invoke(self, query: str) -> str:
        self.asked.append(query)
        return self.reply


def _triaged_captain() -> tuple[Agent, _Crewmate, _Crewmate]:
    factor = _Crewmate("factor", "Factors a whole number into primes.", "2, 2, 3, 7")
    fib = _Crewmate("fib", "Computes Fibonacci numbers.", "144")
    return Agent("captain", model="slips/any", tools=[factor, fib], triage=True), factor, fib


def test_triage_naming_no_sibling_offers_no_tools(script: Script) -> None:
    """Asked to translate, a 1.5B model made up a number for factor; asked first which crew
    members the request needs, it answered the request instead ("Guten Morgen"): no name, so
    the run offers no tools and the model answers itself."""
    captain, factor, fib = _triaged_captain()
    script.replies = ["Guten Morgen", "Guten Morgen."]
    result = _run(captain, "Translate 'good morning' into German.")
    assert result.output == "Guten Morgen." and result.status == "ok"
    assert factor.asked == fib.asked == []
    triage_request = script.requests[0]
    assert "- factor: Factors a whole number into primes." in triage_request[0]["content"]
    assert triage_request[-1] == {"role": "user", "content": "Translate 'good morning' into German."}
    assert script.tools == [[], []]  # the triage call has no tools, and nor has the turn
    assert result.usage.model_calls == 2  # the triage call counts with the run


def test_triage_names_keep_every_tool_and_remind_once_of_one_left_out(script: Script) -> None:
    """The 1.5B model handed "Factor 84, and tell me fib(12)" whole to factor, then answered
    the fib part from memory, leaving factor's answer out: triage named both, so it is
    reminded of fib once, and its answer after that stands."""
    captain, factor, fib = _triaged_captain()
    script.replies = [
        "factor, fib",
        [("factor", {"query": "Factor 84, and tell me fib(12)"})],
        "fib(12) is 144.",
        [("fib", {"query": "fib(12)"})],
        "84 = 2 x 2 x 3 x 7, and fib(12) is 144.",
    ]
    result = _run(captain, "Factor 84, and tell me fib(12).")
    assert result.output == "84 = 2 x 2 x 3 x 7, and fib(12) is 144."
    assert factor.asked == ["Factor 84, and tell me fib(12)"] and fib.asked == ["fib(12)"]
    assert script.tools[1:] == [["factor", "fib"]] * 4
    reminder = script.requests[3][-1]
    assert reminder["role"] == "user" and "You have not asked fib yet" in reminder["content"]
    assert [e.tool for e in result.events] == ["factor", "fib"]


def test_triage_reminds_only_once_and_not_when_nothing_named_was_called(script: Script) -> None:
    captain, factor, fib = _triaged_captain()
    script.replies = ["The factorization of 84 uses fib too", "2, 2, 3, 7 and 144."]
    result = _run(captain, "Factor 84, and tell me fib(12).")
    assert result.output == "2, 2, 3, 7 and 144."  # it called neither: its answer stands
    assert len(script.requests) == 2 and factor.asked == fib.asked == []

    captain, _factor, fib = _triaged_captain()
    script.replies = [
        "factor, fib",
        [("factor", {"query": "Factor 84"})],
        "Only 2, 2, 3, 7.",
        "Still 2, 2, 3, 7.",
    ]
    result = _run(captain, "Factor 84, and tell me fib(12).")
    assert result.output == "Still 2, 2, 3, 7." and fib.asked == []
    assert sum("You have not asked" in str(m.get("content")) for m in result.messages) == 1


def test_triage_sees_the_recent_conversation_for_a_follow_up(script: Script) -> None:
    from shipmates import Session

    captain, _factor, _fib = _triaged_captain()
    memory = Session()
    script.replies = [
        "fib",
        [("fib", {"query": "fib(15)"})],
        "fib(15) is 610.",
        "factor",
        "610 = 2 x 5 x 61.",
    ]
    asyncio.run(captain.arun("What is fib(15)?", session=memory))
    asyncio.run(captain.arun("Now factor that number.", session=memory))
    follow_up = script.requests[3]
    assert [m["content"] for m in follow_up[1:]] == [
        "What is fib(15)?",
        "fib(15) is 610.",
        "Now factor that number.",
    ]


def test_without_triage_there_is_no_extra_call(script: Script) -> None:
    captain, _factor, _fib = _triaged_captain()
    captain.triage = False
    script.replies = [[("fib", {"query": "fib(12)"})], "144."]
    assert _run(captain, "fib(12)?").output == "144."
    assert script.tools == [["factor", "fib"]] * 2


def test_triage_leaves_the_offline_router_alone() -> None:
    """The offline router picks tools by words itself: no triage call, the same routing."""
    captain, _factor, fib = _triaged_captain()
    captain.model = "offline"
    assert _run(captain, "fib of 12").output == "144"
    assert fib.asked == ["fib of 12"]


def test_a_model_alias_with_triage_triages_captains_only_and_the_agent_can_say_no(script: Script) -> None:
    """``triage = true`` in a config alias: a captain on that model triages, a sibling agent
    without siblings of its own does not, and ``Agent(triage=False)`` (``/triage off``) wins."""
    from shipmates._config import ModelAlias
    from shipmates._models._session import ModelConfig, session_config

    token = session_config.set(ModelConfig(aliases={"small": ModelAlias("small", "slips/any", triage=True)}))
    try:
        helper = Agent("helper", "Doubles numbers.", model="small", tools=[double])
        captain = Agent("captain", model="small", tools=[helper])
        script.replies = [
            "helper",
            [("helper", {"query": "double 4"})],
            [("double", {"n": 4})],
            "8",
            "It is 8.",
        ]
        assert _run(captain, "double 4").output == "It is 8."
        assert script.tools == [[], ["helper"], ["double"], ["double"], ["helper"]]  # one triage call

        captain.triage = False
        script.requests.clear()
        script.replies = ["No doubling needed."]
        assert _run(captain, "hello").output == "No doubling needed."
        assert len(script.requests) == 1
    finally:
        session_config.reset(token)


def test_an_empty_triage_reply_keeps_every_tool(script: Script) -> None:
    """A reasoning model can spend the short triage call thinking and say nothing: that names
    no sibling, but tells nothing either, so the turn keeps its tools."""
    captain, _factor, fib = _triaged_captain()
    script.replies = ["", [("fib", {"query": "fib(12)"})], "144."]
    assert _run(captain, "fib(12)?").output == "144."
    assert script.tools == [[], ["factor", "fib"], ["factor", "fib"]] and fib.asked == ["fib(12)"]


def test_triage_reads_names_as_words_and_a_longer_name_wins() -> None:
    from shipmates import ModelResponse
    from shipmates._run._triage import Triage

    def crew(*names: str) -> Agent:
        def make(name: str) -> Any:
            def fn(q: str) -> str:
                return q

            fn.__name__ = name.replace("-", "_")
            fn.__doc__ = f"The {name} tool."
            return tool(fn, name=name)

        return Agent("captain", tools=[make(n) for n in names])

    def read(agent: Agent, reply: str) -> tuple[list[str], bool]:
        triaged = Triage.of(agent, ModelResponse(content=reply))
        return triaged.named, triaged.none_fit

    weather = crew("get_weather", "web-search")
    assert read(weather, "get weather, Web Search") == (["get_weather", "web-search"], False)
    assert read(weather, "Weather") == ([], False)  # related, not named: every tool stays
    assert read(weather, "Paris") == ([], True)
    assert read(weather, "<think>The user wants the weather, so") == ([], False)  # thinking only
    assert read(weather, "<think>hmm</think>none") == ([], True)
    assert read(crew("search", "search_docs"), "search_docs") == (["search_docs"], False)


def test_a_failed_triage_call_leaves_every_tool(script: Script) -> None:
    captain, _factor, fib = _triaged_captain()
    script.replies = [RuntimeError("the triage call broke"), [("fib", {"query": "fib(12)"})], "144."]
    assert _run(captain, "fib(12)?").output == "144." and fib.asked == ["fib(12)"]
    assert script.tools[1:] == [["factor", "fib"], ["factor", "fib"]]


def test_no_reminder_on_the_last_turn_or_once_it_must_answer(script: Script) -> None:
    captain, _factor, _fib = _triaged_captain()
    captain.max_turns = 2
    script.replies = ["factor, fib", [("factor", {"query": "Factor 84"})], "2, 2, 3, 7; fib(12) is 144."]
    result = _run(captain, "Factor 84, and tell me fib(12).")
    assert result.status == "ok" and result.output == "2, 2, 3, 7; fib(12) is 144."

    captain, factor, _fib = _triaged_captain()
    call = [("factor", {"query": "Factor 84"})]
    script.replies = ["factor, fib", call, call, call, "2, 2, 3, 7."]  # it keeps asking: must answer
    result = _run(captain, "Factor 84, and tell me fib(12).")
    assert result.output == "2, 2, 3, 7." and factor.asked == ["Factor 84"]
    assert not any("You have not asked" in str(m.get("content")) for m in result.messages)


def test_the_reminder_and_the_draft_it_replaced_are_not_remembered(script: Script) -> None:
    from shipmates import Session

    captain, _factor, _fib = _triaged_captain()
    memory = Session(max_turns=1)
    script.replies = [
        "factor, fib",
        [("factor", {"query": "Factor 84"})],
        "fib(12) is 144.",
        [("fib", {"query": "fib(12)"})],
        "84 = 2 x 2 x 3 x 7; fib(12) = 144.",
    ]
    asyncio.run(captain.arun("Factor 84, and tell me fib(12).", session=memory))
    remembered = [(m["role"], m.get("content")) for m in memory.messages]
    assert remembered[0] == ("user", "Factor 84, and tell me fib(12).")  # one turn, the user's
    assert ("assistant", "fib(12) is 144.") not in remembered
    assert not any("You have not asked" in str(content) for _, content in remembered)
    assert remembered[-1] == ("assistant", "84 = 2 x 2 x 3 x 7; fib(12) = 144.")


def test_when_none_fits_after_tool_calls_the_tools_stay_but_may_not_be_called(script: Script) -> None:
    """Some providers refuse a conversation with tool calls in it but no tools: after earlier
    delegations, "none fits" keeps the tools and sends tool_choice none."""
    from shipmates import Session

    captain, _factor, _fib = _triaged_captain()
    memory = Session()
    script.replies = ["fib", [("fib", {"query": "fib(12)"})], "144.", "Paris", "You're welcome."]
    asyncio.run(captain.arun("fib(12)?", session=memory))
    assert asyncio.run(captain.arun("Thanks!", session=memory)).output == "You're welcome."
    assert script.tools[-1] == ["factor", "fib"] and script.tool_choices[-1] == "none"
