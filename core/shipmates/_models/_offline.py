"""The offline default model: a deterministic keyword router, not a language model.

It needs no network, no API key and no litellm. Given the user's text it picks the one tool
whose name and description best match the words (exact words, then prefixes: ``fib`` matches
``fibonacci``), fills the arguments it can read from the text (integers and numbers in
order, the whole text for string parameters such as a sibling's ``query``), calls it, and
answers with the tool's result. When nothing matches it says so and lists what the crew
can do. It does not understand language: for real answers set ``SHIPMATES_MODEL`` to a
litellm model.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

from ._model import Messages, ModelResponse, Schemas, ToolCall

_WORD = re.compile(r"[A-Za-z]+")
_INT = re.compile(r"(?<![\w.])-?\d+(?![\d.])")
_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?")
_DELTA = re.compile(r"\s*\S+\s*")
_CAMEL = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")
_STOP = frozenset(
    {
        *("a", "an", "and", "are", "as", "at", "be", "by", "can", "do", "does", "for", "from", "give"),
        *("how", "i", "in", "is", "it", "its", "me", "my", "of", "on", "or", "please", "tell", "that"),
        *("the", "this", "to", "what", "whats", "which", "who", "with", "you", "your"),
    }
)


def _words(text: str) -> list[str]:
    return [w for w in (m.lower() for m in _WORD.findall(text)) if w not in _STOP and len(w) > 1]


def _name_tokens(name: str) -> set[str]:
    return {t.lower() for part in re.split(r"[_\-\s]+", name) for t in _CAMEL.findall(part)}


def _prefix(a: str, b: str, least: int) -> bool:
    return len(a) >= least and len(b) >= least and (a.startswith(b) or b.startswith(a))


def score(text_words: list[str], name: str, description: str) -> float:
    """How well the user's words match a tool (0: not at all)."""
    full = name.lower()
    tokens = _name_tokens(name)
    desc = set(_words(description))
    total = 0.0
    for w in set(text_words):
        if w == full:
            total += 6
        elif w in tokens:
            total += 4
        elif any(_prefix(w, t, 3) for t in (full, *tokens)):
            total += 3
        elif w in desc:
            total += 1
        elif any(_prefix(w, d, 4) for d in desc):
            total += 0.5
    return total


def _type_of(spec: dict[str, Any]) -> str | None:
    typ = spec.get("type")
    if isinstance(typ, str):
        return typ
    for option in spec.get("anyOf", ()):
        if isinstance(option, dict) and option.get("type") not in (None, "null"):
            return str(option["type"])
    return None


def fill_arguments(text: str, parameters: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Arguments read from ``text`` for a JSON schema, and the required ones it could not fill."""
    ints = [int(m) for m in _INT.findall(text)]
    numbers = [float(m) for m in _NUMBER.findall(text)]
    props: dict[str, Any] = parameters.get("properties") or {}
    required = set(parameters.get("required") or ())
    args: dict[str, Any] = {}
    missing: list[str] = []
    for pname, spec in props.items():
        spec = spec if isinstance(spec, dict) else {}
        typ = _type_of(spec)
        if "enum" in spec:
            hit = [v for v in spec["enum"] if isinstance(v, str) and v.lower() in text.lower()]
            if hit:
                args[pname] = hit[0]
        elif typ == "integer" and ints:
            args[pname] = ints.pop(0)
            numbers = numbers[1:]
        elif typ == "number" and numbers:
            args[pname] = numbers.pop(0)
        elif typ == "string":
            args[pname] = text
        elif typ == "array" and (spec.get("items") or {}).get("type") == "integer" and ints:
            args[pname], ints = ints, []
        elif typ is None and pname in required:  # untyped: a number if there is one, else the text
            args[pname] = ints.pop(0) if ints else text
        if pname not in args and pname in required and "default" not in spec:
            missing.append(f"{pname} ({typ or 'value'})")
    return args, missing


def _user_text(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):  # content parts
                return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
            return str(content or "")
    return ""


class OfflineRouter:
    """Deterministic keyword router used as the default model (see the module docstring)."""

    model_id = "offline"
    routes_by_words = True
    """It picks tools by matching words itself: a captain's triage (``--triage``) skips it."""

    async def complete(
        self, messages: Messages, tools: Schemas, settings: dict[str, Any] | None = None
    ) -> ModelResponse:
        """Route the last user message to a tool, or answer with the last tool results (``settings``
        are accepted and ignored)."""
        results = []
        for message in reversed(messages):
            if message.get("role") != "tool":
                break
            results.append(str(message.get("content") or ""))
        if results:
            answer = "\n".join(reversed(results))
            return ModelResponse(content=answer if answer.strip() else "(the tool returned nothing)")
        text = _user_text(messages)
        return self.route(text, tools, len([m for m in messages if m.get("role") == "assistant"]) + 1)

    async def stream(
        self, messages: Messages, tools: Schemas, settings: dict[str, Any] | None = None
    ) -> AsyncIterator[str | ModelResponse]:
        """:meth:`complete`, its text streamed word by word (each delta keeps its whitespace)."""
        response = await self.complete(messages, tools)
        for word in _DELTA.findall(response.content or ""):
            yield word
        yield response

    def route(self, text: str, tools: list[dict[str, Any]], n: int = 1) -> ModelResponse:
        """The response for ``text``: a tool call, or a reply saying what the crew can do."""
        words = _words(text)
        ranked = []
        for index, schema in enumerate(tools):
            fn = schema.get("function", schema)
            s = score(words, str(fn.get("name", "")), str(fn.get("description") or ""))
            if s >= 1:
                ranked.append((-s, index, fn))
        ranked.sort(key=lambda r: (r[0], r[1]))
        first_missing: tuple[str, list[str]] | None = None
        for _, _, fn in ranked:
            args, missing = fill_arguments(text, fn.get("parameters") or {})
            if not missing:
                import json

                call = ToolCall(id=f"offline-{n}", name=fn["name"], arguments=json.dumps(args))
                return ModelResponse(content=None, tool_calls=[call])
            if first_missing is None:
                first_missing = (fn["name"], missing)
        if first_missing is not None:
            name, missing = first_missing
            return ModelResponse(
                content=(
                    f"I would ask '{name}', but it needs {', '.join(missing)} and I could not read that "
                    f"from {text!r}. Try for example: {name} 8"
                )
            )
        return ModelResponse(content=self.no_match(text, tools))

    @staticmethod
    def no_match(text: str, tools: list[dict[str, Any]]) -> str:
        """The reply when no tool matches: what the router is and what the crew can do."""
        head = (
            "I'm the offline router, not a language model: I pass your request to the tool or sibling "
            "whose name or description matches your words"
        )
        if not tools:
            return (
                f"{head}, but this agent has none. For free-form answers set SHIPMATES_MODEL to a "
                "litellm model (for example openai/gpt-4o-mini or ollama/llama3.1)."
            )
        lines = [f"{head}, and nothing matched {text.strip()!r}. What this crew can do:"]
        for schema in tools:
            fn = schema.get("function", schema)
            desc = str(fn.get("description") or "").strip().splitlines()
            lines.append(f"  {fn.get('name')}: {desc[0] if desc else '(no description)'}")
        first = tools[0].get("function", tools[0]).get("name")
        lines.append(
            f"Name one of them, for example '{first} ...'. For free-form answers set SHIPMATES_MODEL "
            "to a litellm model (for example openai/gpt-4o-mini)."
        )
        return "\n".join(lines)
