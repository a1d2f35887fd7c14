"""``shipmates models``: the models a session can use, the aliases from the config file, the default."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator
from typing import IO, Any

from .._models._session import DEFAULT_MODEL_TIMEOUT
from .._settings import model_from
from .._text import terminal_safe


def print_models(*, out: IO[str] | None = None) -> int:
    """Registered models, config aliases and the default with where it comes from."""
    from .._config import config_path, read_config
    from .._models._model import DEFAULT_MODEL
    from .._models._registry import registered_models

    out = out or sys.stdout
    config = read_config()
    names: dict[int, list[str]] = {}
    models = registered_models()
    for name, model in models.items():  # a model registered with aliases is listed once
        names.setdefault(id(model), []).append(name)
    for first, *aliases in sorted(names.values()):
        model = models[first]
        doc = (type(model).__doc__ or "").strip().splitlines()
        also = f" (aliases: {', '.join(aliases)})" if aliases else ""
        print(f"{first}{also}: {terminal_safe(doc[0]) if doc else type(model).__name__}", file=out)
    for alias in config.models.values():
        extra = f", api_base {alias.api_base}" if alias.api_base else ""
        print(f"{alias.name}: alias of {alias.model}{extra} (config)", file=out)
    env = model_from()
    if env:
        default, source = env, "SHIPMATES_MODEL"
    elif config.default_model:
        default, source = config.default_model, str(config_path())
    else:
        default, source = DEFAULT_MODEL, "built in"
    print(f"default: {default} (from {source})", file=out)
    print("Any litellm model string works too, e.g. --model openai/gpt-4o-mini.", file=out)
    return 0


def set_default(name: str, *, out: IO[str] | None = None) -> int:
    """``shipmates models default NAME``: write the default model to the config file."""
    from .._config import set_default_model

    out = out or sys.stdout
    name = name.strip()
    if not name:
        print("error: the model name is empty", file=sys.stderr)
        return 2
    path = set_default_model(name)
    print(f"default model: {name} (written to {path})", file=out)
    if model_from():
        print("note: SHIPMATES_MODEL is set in this shell and still wins over the config file", file=out)
    return 0


def add_model_arguments(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """The options that choose and reach the session's model (``chat``, and ``serve``)."""
    parser.add_argument(
        "--model",
        metavar="NAME",
        help="model for this session: a registered name (default 'offline'), an alias from the config "
        "file, or any litellm model string, e.g. openai/gpt-4o-mini (also SHIPMATES_MODEL)",
    )
    parser.add_argument(
        "--api-base",
        metavar="URL",
        help="the model server's URL, e.g. http://127.0.0.1:8080/v1 for a local OpenAI-compatible "
        "server (also SHIPMATES_API_BASE)",
    )
    parser.add_argument(
        "--api-key-env",
        metavar="VAR",
        help="the NAME of the environment variable that holds the API key (never the key itself; "
        "also SHIPMATES_API_KEY_ENV)",
    )
    parser.add_argument(
        "-o",
        "--option",
        action="append",
        metavar="KEY=VALUE",
        dest="model_options",
        help="a litellm option for the model, repeatable: -o temperature=0 -o max_tokens=200 (values "
        "are JSON when they parse; also SHIPMATES_MODEL_OPTIONS)",
    )
    parser.add_argument(
        "--model-timeout",
        type=float,
        metavar="SECONDS",
        help=f"longest wait for a model call to answer (default {DEFAULT_MODEL_TIMEOUT:g}; "
        "also SHIPMATES_MODEL_TIMEOUT)",
    )


def model_flags(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of ``read_settings`` that :func:`add_model_arguments`' flags give."""
    return {
        "model": getattr(args, "model", None),
        "api_base": getattr(args, "api_base", None),
        "api_key_env": getattr(args, "api_key_env", None),
        "options": getattr(args, "model_options", None),
        "model_timeout": getattr(args, "model_timeout", None),
    }


@contextlib.contextmanager
def model_session(args: argparse.Namespace) -> Iterator[None]:
    """The session's model and settings from ``args`` (:func:`add_model_arguments`), the
    environment and the config file, for the block; a bad value is a ``SettingsError``."""
    from .._models._session import use_session
    from .._settings import read_settings

    with use_session(read_settings(**model_flags(args))):
        yield
