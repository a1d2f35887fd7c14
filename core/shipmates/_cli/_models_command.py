"""``shipmates models``: the models a session can use, the aliases from the config file, the default."""

from __future__ import annotations

import sys
from typing import IO

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
