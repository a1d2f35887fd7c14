"""The session's settings, read once from the command line, the environment and the defaults.

:func:`read_settings` validates every ``SHIPMATES_*`` variable the command uses when it reads
them: a bad value is a :class:`SettingsError` naming the variable, the value and what is
accepted, instead of being ignored (or failing later, far from its cause). The frozen
:class:`Settings` it returns is passed down (CLI -> ``run_chat`` -> the crew and the chat
session); nothing writes the environment.

Cheap to import (the standard library and ``_errors`` only): every command reads its settings.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ._errors import ShipmatesError

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
T = TypeVar("T")


class SettingsError(ShipmatesError):
    """A setting has a value shipmates cannot use; the message names it and the accepted range."""


@dataclass(frozen=True)
class Settings:
    """What one ``shipmates`` command was asked to do, and how.

    ``None`` means "not set": the library's own default applies (for ``only``/``exclude``,
    discovery then reads ``SHIPMATES_AGENTS`` and ``SHIPMATES_EXCLUDE_AGENTS`` itself, so its
    reasons keep naming the variable).
    """

    model: str | None = None
    """``--model``, else ``SHIPMATES_MODEL``; None: the default model (``offline``)."""
    captain: str | None = None
    """``--captain``; None: the built-in general captain."""
    only: tuple[str, ...] | None = None
    """``--only`` names (allow-list)."""
    exclude: tuple[str, ...] | None = None
    """``--exclude`` names (deny-list)."""
    prefer: tuple[str, ...] | None = None
    """``--prefer`` tokens (which copy wins a name clash)."""
    memory_turns: int | None = None
    """``--memory``, else ``SHIPMATES_MEMORY_TURNS``: turns remembered (0: none); None: the
    last 200 messages."""
    tool_timeout: float | None = None
    """``SHIPMATES_TOOL_TIMEOUT``: seconds a tool or sibling may run; None: the default (120)."""
    tool_threads: int | None = None
    """``SHIPMATES_TOOL_THREADS``: worker threads for sync tools; None: automatic."""
    load_timeout: float | None = None
    """``SHIPMATES_LOAD_TIMEOUT``: seconds a sibling or plugin may take to load; None: no limit."""
    max_result_chars: int | None = None
    """``SHIPMATES_MAX_RESULT_CHARS``: longest tool result the model sees; None: the default."""
    max_tokens: int | None = None
    """``--max-tokens``, else ``SHIPMATES_MAX_TOKENS``: tokens each run's whole tree may use."""
    max_cost: float | None = None
    """``--max-cost``, else ``SHIPMATES_MAX_COST``: US dollars each run's whole tree may spend."""
    max_delegations: int | None = None
    """``--max-delegations``, else ``SHIPMATES_MAX_DELEGATIONS``: sibling calls per run, any depth."""
    strict: bool = False
    """``SHIPMATES_STRICT``: a sibling or plugin that fails to load is an error, not a warning."""
    discovery_cache: bool = True
    """``SHIPMATES_DISCOVERY_CACHE``: keep the entry-point scan on disk between runs."""
    trace: bool = True
    """The live trace (``--no-trace`` turns it off)."""
    approve: bool = False
    """``--approve``: ask before each tool call and delegation."""
    verbose: bool = False
    """``-v``: tracebacks of failing plugin hooks (the ``shipmates`` logger at DEBUG)."""
    api_base: str | None = None
    """``--api-base``, else ``SHIPMATES_API_BASE``: the session model's server URL."""
    api_key_env: str | None = None
    """``--api-key-env``, else ``SHIPMATES_API_KEY_ENV``: the NAME of the variable holding the key."""
    model_options: dict[str, Any] = field(default_factory=dict)
    """``-o KEY=VALUE`` over ``SHIPMATES_MODEL_OPTIONS``: litellm options of the session model."""
    model_timeout: float | None = None
    """``--model-timeout``, else ``SHIPMATES_MODEL_TIMEOUT``: seconds per model call; None: 120."""
    model_retries: int | None = None
    """``SHIPMATES_MODEL_RETRIES``: retries of a failed model call; None: the default (1)."""
    log: bool = True
    """Record each turn in the conversation log (``--no-log`` or ``SHIPMATES_LOG=0`` turn it off)."""
    conversation: str | None = None
    """``--cid ID``: resume that logged conversation; ``--continue``: ``"latest"``; None: a new one."""
    system: str | None = None
    """``-s/--system``: the captain's instructions instead of its own."""
    triage: bool | None = None
    """``--triage``, else ``SHIPMATES_TRIAGE``: the captain asks which tools a request needs
    first; None: as the model's config alias says."""


def read_settings(
    environ: Mapping[str, str] | None = None,
    *,
    model: str | None = None,
    captain: str | None = None,
    only: Sequence[str] | None = None,
    exclude: Sequence[str] | None = None,
    prefer: Sequence[str] | None = None,
    memory: int | None = None,
    trace: bool = True,
    approve: bool = False,
    verbose: bool = False,
    api_base: str | None = None,
    api_key_env: str | None = None,
    options: Sequence[str] | None = None,
    model_timeout: float | None = None,
    max_tokens: int | None = None,
    max_cost: float | None = None,
    max_delegations: int | None = None,
    log: bool | None = None,
    conversation: str | None = None,
    system: str | None = None,
    triage: bool | None = None,
) -> Settings:
    """The settings from the flags given (None: not given), then ``environ`` (default:
    ``os.environ``), then the defaults. Raises :class:`SettingsError` for a bad value."""
    env = os.environ if environ is None else environ
    if memory is not None:
        _check_whole(memory, "--memory", minimum=0, meaning="turns to remember; 0: none")
    if model_timeout is not None and not 0 < model_timeout < float("inf"):
        raise _invalid("--model-timeout", model_timeout, "a number of seconds > 0, such as 30 or 2.5")
    if max_tokens is not None:
        _check_whole(max_tokens, "--max-tokens", minimum=1, meaning=_TOKENS)
    if max_delegations is not None:
        _check_whole(max_delegations, "--max-delegations", minimum=0, meaning=_DELEGATIONS)
    if max_cost is not None and not _is_dollars(max_cost):
        raise _invalid("--max-cost", max_cost, _DOLLARS)
    return Settings(
        model=(model or "").strip() or model_from(env),
        captain=captain,
        only=tuple(only) if only is not None else None,
        exclude=tuple(exclude) if exclude is not None else None,
        prefer=tuple(prefer) if prefer is not None else None,
        memory_turns=memory if memory is not None else memory_turns_from(env),
        tool_timeout=tool_timeout_from(env),
        tool_threads=tool_threads_from(env),
        load_timeout=load_timeout_from(env),
        max_result_chars=max_result_chars_from(env),
        max_tokens=max_tokens if max_tokens is not None else max_tokens_from(env),
        max_cost=max_cost if max_cost is not None else max_cost_from(env),
        max_delegations=max_delegations if max_delegations is not None else max_delegations_from(env),
        strict=strict_from(env),
        discovery_cache=discovery_cache_from(env),
        trace=trace,
        approve=approve,
        verbose=verbose,
        api_base=(api_base or "").strip() or env_text(env, "SHIPMATES_API_BASE"),
        api_key_env=_key_variable(api_key_env, "--api-key-env")
        or _key_variable(env_text(env, "SHIPMATES_API_KEY_ENV"), "SHIPMATES_API_KEY_ENV"),
        model_options={**model_options_from(env), **parse_options(options or (), "-o")},
        model_timeout=model_timeout
        if model_timeout is not None
        else _positive_number(env, "SHIPMATES_MODEL_TIMEOUT"),
        model_retries=model_retries_from(env),
        log=_flag(env, "SHIPMATES_LOG", default=True) if log is None else log,
        conversation=conversation,
        system=system,
        triage=triage if triage is not None else triage_from(env),
    )


_TOKENS = "input plus output tokens of a run's whole tree"
_DELEGATIONS = "sibling calls per run, at any depth; 0: none"
_DOLLARS = "a number of US dollars > 0, such as 0.50"


def _is_dollars(value: float) -> bool:
    return 0 < value < float("inf")


def max_tokens_from(environ: Mapping[str, str] | None = None) -> int | None:
    """``SHIPMATES_MAX_TOKENS`` (None when unset); a bad value is a SettingsError."""
    env = os.environ if environ is None else environ
    return _whole(env, "SHIPMATES_MAX_TOKENS", minimum=1, meaning=_TOKENS)


def max_cost_from(environ: Mapping[str, str] | None = None) -> float | None:
    """``SHIPMATES_MAX_COST`` in US dollars (None when unset); a bad value is a SettingsError."""
    env = os.environ if environ is None else environ
    return _parsed(env, "SHIPMATES_MAX_COST", float, _is_dollars, _DOLLARS)


def max_delegations_from(environ: Mapping[str, str] | None = None) -> int | None:
    """``SHIPMATES_MAX_DELEGATIONS`` (None when unset); a bad value is a SettingsError."""
    env = os.environ if environ is None else environ
    return _whole(env, "SHIPMATES_MAX_DELEGATIONS", minimum=0, meaning=_DELEGATIONS)


def memory_turns_from(environ: Mapping[str, str] | None = None) -> int | None:
    """``SHIPMATES_MEMORY_TURNS`` (None when unset or empty); a bad value is a SettingsError."""
    env = os.environ if environ is None else environ
    return _whole(env, "SHIPMATES_MEMORY_TURNS", minimum=0, meaning="turns to remember; 0: none")


_FORBIDDEN_OPTIONS = {
    "api_key": "never put a key on the command line: name the variable that holds it with "
    "--api-key-env VAR (or SHIPMATES_API_KEY_ENV)",
    "model": "choose the model with --model",
    "api_base": "use --api-base",
    "timeout": "use --model-timeout",
    "messages": "shipmates sends the conversation itself",
    "tools": "shipmates sends the tools itself",
}


def parse_options(items: Sequence[str], name: str) -> dict[str, Any]:
    """``["temperature=0", "stop=[\"x\"]"]`` -> ``{"temperature": 0, "stop": ["x"]}``: each value
    parsed as JSON when it parses, else kept as a string. A SettingsError names ``name``."""
    options: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise _invalid(name, item, "KEY=VALUE with a litellm option name, such as temperature=0")
        if key in _FORBIDDEN_OPTIONS:
            raise SettingsError(f"{name} {key}=...: not accepted here; {_FORBIDDEN_OPTIONS[key]}")
        raw = raw.strip()
        try:
            options[key] = json.loads(raw)
        except ValueError:
            options[key] = raw
    return options


def model_options_from(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """``SHIPMATES_MODEL_OPTIONS``: ``temperature=0,max_tokens=200`` or a JSON object."""
    env = os.environ if environ is None else environ
    raw = env_text(env, "SHIPMATES_MODEL_OPTIONS")
    if raw is None:
        return {}
    if raw.startswith("{"):
        try:
            value = json.loads(raw)
        except ValueError:
            value = None
        if not isinstance(value, dict):
            raise _invalid("SHIPMATES_MODEL_OPTIONS", raw, 'a JSON object, such as {"temperature": 0}')
        return parse_options([f"{k}={json.dumps(v)}" for k, v in value.items()], "SHIPMATES_MODEL_OPTIONS")
    return parse_options([part for part in raw.split(",") if part.strip()], "SHIPMATES_MODEL_OPTIONS")


def _key_variable(name: str | None, where: str) -> str | None:
    """The name of an environment variable; what looks like a key itself is refused unread."""
    name = (name or "").strip()
    if not name:
        return None
    if not all(c.isalnum() or c == "_" for c in name) or name[0].isdigit():
        raise SettingsError(
            f"{where} takes the NAME of the environment variable that holds the key (such as "
            "OPENAI_API_KEY), not the key itself"
        )
    return name


def model_retries_from(environ: Mapping[str, str] | None = None) -> int | None:
    """``SHIPMATES_MODEL_RETRIES`` (None when unset); a bad value is a SettingsError."""
    env = os.environ if environ is None else environ
    return _whole(env, "SHIPMATES_MODEL_RETRIES", minimum=0, meaning="retries of a failed model call")


def model_from(environ: Mapping[str, str] | None = None) -> str | None:
    """``SHIPMATES_MODEL``, stripped; None when unset or blank (any model name is accepted)."""
    return env_text(os.environ if environ is None else environ, "SHIPMATES_MODEL")


def tool_timeout_from(environ: Mapping[str, str] | None = None) -> float | None:
    """``SHIPMATES_TOOL_TIMEOUT`` in seconds (None when unset); a bad value is a SettingsError."""
    return _positive_number(os.environ if environ is None else environ, "SHIPMATES_TOOL_TIMEOUT")


def load_timeout_from(environ: Mapping[str, str] | None = None) -> float | None:
    """``SHIPMATES_LOAD_TIMEOUT`` in seconds (None when unset: no limit); a bad value is a SettingsError."""
    return _positive_number(os.environ if environ is None else environ, "SHIPMATES_LOAD_TIMEOUT")


def tool_threads_from(environ: Mapping[str, str] | None = None) -> int | None:
    """``SHIPMATES_TOOL_THREADS`` (None when unset or 0: automatic); a bad value is a SettingsError."""
    env = os.environ if environ is None else environ
    return _whole(env, "SHIPMATES_TOOL_THREADS", minimum=0, meaning="worker threads; 0: automatic") or None


def max_result_chars_from(environ: Mapping[str, str] | None = None) -> int | None:
    """``SHIPMATES_MAX_RESULT_CHARS`` (None when unset); a bad value is a SettingsError."""
    env = os.environ if environ is None else environ
    meaning = "characters of one tool result the model sees"
    return _whole(env, "SHIPMATES_MAX_RESULT_CHARS", minimum=1, meaning=meaning)


def strict_from(environ: Mapping[str, str] | None = None) -> bool:
    """``SHIPMATES_STRICT`` (default off); a value that is not a yes or a no is a SettingsError."""
    return _flag(os.environ if environ is None else environ, "SHIPMATES_STRICT", default=False)


def triage_from(environ: Mapping[str, str] | None = None) -> bool | None:
    """``SHIPMATES_TRIAGE`` as a flag; None when it is not set."""
    env = os.environ if environ is None else environ
    if env_text(env, "SHIPMATES_TRIAGE") is None:
        return None
    return _flag(env, "SHIPMATES_TRIAGE", default=False)


def discovery_cache_from(environ: Mapping[str, str] | None = None) -> bool:
    """``SHIPMATES_DISCOVERY_CACHE`` (default on); a value that is not a yes or a no is a SettingsError."""
    return _flag(os.environ if environ is None else environ, "SHIPMATES_DISCOVERY_CACHE", default=True)


def otel_enabled(environ: Mapping[str, str] | None = None) -> bool:
    """OpenTelemetry on: ``SHIPMATES_OTEL`` a yes (or ``console``), else any ``OTEL_EXPORTER_OTLP_*``
    variable set; ``SHIPMATES_OTEL`` a no turns it off. A bad value is a SettingsError."""
    env = os.environ if environ is None else environ
    raw = env_text(env, "SHIPMATES_OTEL")
    if raw is None:
        return any(key.startswith("OTEL_EXPORTER_OTLP_") for key in env)
    return raw.lower() == "console" or _flag(env, "SHIPMATES_OTEL", default=False)


def otel_exporter(environ: Mapping[str, str] | None = None) -> str | None:
    """Where shipmates' own tracer provider sends spans: ``"console"`` (``SHIPMATES_OTEL=console``),
    ``"otlp"`` (an ``OTEL_EXPORTER_OTLP_*`` variable is set), or None (nowhere)."""
    env = os.environ if environ is None else environ
    if (env_text(env, "SHIPMATES_OTEL") or "").lower() == "console":
        return "console"
    return "otlp" if any(key.startswith("OTEL_EXPORTER_OTLP_") for key in env) else None


def env_text(environ: Mapping[str, str], name: str) -> str | None:
    """The variable's value, stripped; None when unset or blank."""
    return environ.get(name, "").strip() or None


def _invalid(name: str, raw: object, expected: str) -> SettingsError:
    return SettingsError(f"{name}={raw!r} is not valid: expected {expected}")


def _check_whole(value: int, name: str, *, minimum: int, meaning: str) -> int:
    if value < minimum:
        raise _invalid(name, value, f"a whole number >= {minimum} ({meaning})")
    return value


def _whole(environ: Mapping[str, str], name: str, *, minimum: int, meaning: str) -> int | None:
    expected = f"a whole number >= {minimum} ({meaning})"
    return _parsed(environ, name, int, lambda value: value >= minimum, expected)


def _positive_number(environ: Mapping[str, str], name: str) -> float | None:
    expected = "a number of seconds > 0, such as 30 or 2.5"
    return _parsed(environ, name, float, lambda value: 0 < value < float("inf"), expected)


def _parsed(
    environ: Mapping[str, str],
    name: str,
    parse: Callable[[str], T],
    accept: Callable[[T], bool],
    expected: str,
) -> T | None:
    """The variable parsed; None when unset or blank; a SettingsError when it does not parse
    or is out of range."""
    raw = env_text(environ, name)
    if raw is None:
        return None
    try:
        value = parse(raw)
    except ValueError:
        raise _invalid(name, raw, expected) from None
    if not accept(value):
        raise _invalid(name, raw, expected)
    return value


def _flag(environ: Mapping[str, str], name: str, *, default: bool) -> bool:
    raw = env_text(environ, name)
    if raw is None:
        return default
    word = raw.lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise _invalid(name, raw, f"one of {', '.join(sorted(_TRUE))} or {', '.join(sorted(_FALSE))}")
