"""Tools whose parameters are plain (int, float, str, bool and lists of them) skip pydantic.

The schema they give and the arguments they bind must be exactly pydantic's: proven here
over a few hundred generated signatures and a few thousand argument sets, against the same
tools built through pydantic.
"""

from __future__ import annotations

import contextlib
import json
import random
from typing import Any

import pytest
from shipmates import Tool, tool
from shipmates._run import _tool
from shipmates._run._tool import ToolArgumentsError

TYPES = ["int", "float", "str", "bool", "list[int]", "list[float]", "list[str]", "list[bool]"]
OTHER_TYPES = ["int | None", "list", "dict[str, int]", "tuple[int, int]", "Any"]
DEFAULTS = ["None", "0", "3", "-7", "2.5", "1.0", "True", "False", "'x'", "''", "[1, 2]", "float('inf')"]
DOCS = [None, "", "the value", "a longer\n    description"]
VALUES: list[Any] = [
    0,
    1,
    -5,
    2**70,
    1.5,
    2.0,
    -0.0,
    float("inf"),
    True,
    False,
    "3",
    "2.5",
    "x",
    "",
    "true",
    None,
    [],
    [1, 2],
    [1.0, 2.5],
    ["a", "b"],
    [True],
    [1, "a"],
    ["1"],
    [1, True],
    {"a": 1},
    (1, 2),
]
NAMES = ["n", "value", "query", "x1", "limit", "flag", "items", "copy", "model_x", "_hidden", "json"]


def _source(rng: random.Random, index: int) -> str:
    params, docs = [], []
    names = rng.sample(NAMES, rng.randint(0, 4))
    seen_default = False
    for name in names:
        annotation = rng.choice(TYPES if rng.random() < 0.9 else OTHER_TYPES)
        text = f"{name}: {annotation}"
        if seen_default or rng.random() < 0.4:
            seen_default = True
            text += f" = {rng.choice(DEFAULTS)}"
        params.append(text)
        doc = rng.choice(DOCS)
        if doc is not None:
            docs.append(f"        {name}: {doc}")
    args = "\n    Args:\n" + "\n".join(docs) if docs else ""
    return f"def f{index}({', '.join(params)}):\n    '''Tool {index}.\n{args}\n    '''\n    return 0\n"


def _tools(source: str, index: int, monkeypatch: pytest.MonkeyPatch) -> tuple[Tool, Tool]:
    namespace: dict[str, Any] = {"Any": Any}
    exec(source, namespace)
    fn = namespace[f"f{index}"]
    plain = tool(fn)
    with monkeypatch.context() as patch:
        patch.setattr(_tool, "_plain_arguments", lambda params, fallback: None)
        through_pydantic = tool(fn)
        with contextlib.suppress(TypeError):  # built now, while pydantic is forced
            through_pydantic.parameters  # noqa: B018
    return plain, through_pydantic


def _outcome(t: Tool, arguments: dict[str, Any]) -> tuple[str, Any]:
    try:
        args, kwargs = t.bind(arguments)
    except ToolArgumentsError as exc:
        return "error", str(exc)
    except Exception as exc:
        return "raised", repr(exc)
    return "bound", (args, {k: (type(v), v) for k, v in kwargs.items()})


@pytest.mark.filterwarnings("ignore:Field name .* shadows an attribute")
def test_plain_parameters_give_exactly_pydantics_schema_and_binding(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(8)
    fast = 0
    for index in range(300):
        source = _source(rng, index)
        plain, through_pydantic = _tools(source, index, monkeypatch)
        try:
            expected = json.dumps(through_pydantic.parameters)
        except TypeError:  # a name or default pydantic refuses: both fail alike
            with pytest.raises(TypeError):
                plain.parameters  # noqa: B018
            continue
        assert json.dumps(plain.parameters) == expected, source
        fast += "_plain_arguments" in plain._bind.__qualname__
        names = [*plain.parameters["properties"], "extra"]
        for _ in range(12):
            arguments = {name: rng.choice(VALUES) for name in names if rng.random() < 0.7}
            assert _outcome(plain, arguments) == _outcome(through_pydantic, arguments), (source, arguments)
    assert fast > 100  # most generated signatures did take the plain path


def test_the_fib_tool_needs_no_pydantic() -> None:
    import subprocess
    import sys

    code = (
        "import sys\nfrom shipmates import tool\n"
        "def fibonacci(n: int, names: list[str] = None) -> int:\n    '''Fib.'''\n    return n\n"
        "t = tool(fibonacci)\nt.parameters\nassert t.bind({'n': 8}) == ((), {'n': 8, 'names': None})\n"
        "print('pydantic' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_basemodel_names_that_take_the_pydantic_path_are_all_listed() -> None:
    from pydantic import BaseModel

    public = {n for n in dir(BaseModel) if not n.startswith(("_", "model_"))}
    assert public <= _tool._BASEMODEL_NAMES
