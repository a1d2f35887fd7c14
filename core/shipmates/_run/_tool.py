"""Tools: typed Python functions (and absorbed siblings) the model can call."""

from __future__ import annotations

import inspect
import json
import re
import sys
from _thread import RLock
from collections.abc import Callable
from types import GenericAlias
from typing import TYPE_CHECKING, Any, overload

if TYPE_CHECKING:
    from pydantic import BaseModel, ValidationError

from .._crew._sibling import Provenance
from .._names import check_name
from .._startup import no_pydantic_plugin, skip_pydantic_plugin_scan_if_none
from .._text import JsonLimitError, parse_json_object

Bound = tuple[tuple[Any, ...], dict[str, Any]]
"""Positional and keyword arguments ready for the tool's function."""


class ToolArgumentsError(ValueError):
    """The model's arguments were not valid JSON or did not validate; the text is for the model."""


class Tool:
    """A function the model may call: name, description, JSON-schema parameters and an executor.

    Calling the tool object calls the underlying function directly (no validation), so a
    decorated function stays usable as a function.

    A tool made by :func:`tool` builds its pydantic arguments model on first need: ``parameters``
    and ``schema`` (what the model sees) and :meth:`bind` (validating a call) build it once and
    keep it, so defining an agent whose tools are never used in a run costs no pydantic.
    """

    __slots__ = (
        "__dict__",
        "_bind",
        "_build",
        "_parameters",
        "_schema",
        "description",
        "fn",
        "is_async",
        "name",
        "provenance",
        "sibling",
        "timeout",
    )

    def __init__(
        self,
        name: str,
        description: str,
        parameters: dict[str, Any],
        fn: Callable[..., Any],
        *,
        bind: Callable[[dict[str, Any]], Bound],
        is_async: bool | None = None,
        timeout: float | None = None,
        sibling: Any = None,
        provenance: Provenance | None = None,
    ) -> None:
        self.name = check_name(name, what="tool")
        self.description = description
        self.fn = fn
        self.is_async = inspect.iscoroutinefunction(fn) if is_async is None else is_async
        self.timeout = timeout
        self.sibling = sibling
        """The absorbed sibling, when this tool delegates to one."""
        self.provenance = provenance
        self._build: Callable[[], tuple[dict[str, Any], Callable[[dict[str, Any]], Bound]]] | None = None
        self._parameters: dict[str, Any] | None = parameters
        self._bind = bind
        self._schema: dict[str, Any] | None = {
            "type": "function",
            "function": {"name": name, "description": description, "parameters": parameters},
        }

    @classmethod
    def _deferred(
        cls,
        name: str,
        description: str,
        fn: Callable[..., Any],
        build: Callable[[], tuple[dict[str, Any], Callable[[dict[str, Any]], Bound]]],
        *,
        timeout: float | None = None,
    ) -> Tool:
        """A tool whose ``parameters`` and validator come from ``build()`` on first need."""
        self = cls.__new__(cls)
        self.name = check_name(name, what="tool")
        self.description = description
        self.fn = fn
        self.is_async = inspect.iscoroutinefunction(fn)
        self.timeout = timeout
        self.sibling = None
        self.provenance = None
        self._build = build
        self._parameters = None
        self._schema = None
        self._bind = _unbuilt
        return self

    def _materialize(self) -> dict[str, Any]:
        """Run the deferred build once (under a lock: tools may be first used from two threads)."""
        with _build_lock:
            build = self._build
            if build is not None:
                parameters, bind = build()
                self._parameters, self._bind, self._build = parameters, bind, None
        assert self._parameters is not None
        return self._parameters

    @property
    def parameters(self) -> dict[str, Any]:
        """The JSON schema of the arguments (``{"type": "object", "properties": ...}``)."""
        parameters = self._parameters
        return parameters if parameters is not None else self._materialize()

    @parameters.setter
    def parameters(self, value: dict[str, Any]) -> None:
        self._materialize()
        self._parameters = value

    @property
    def schema(self) -> dict[str, Any]:
        """The OpenAI-format tool schema handed to models, built once."""
        schema = self._schema
        if schema is None:
            parameters = self.parameters
            schema = {
                "type": "function",
                "function": {"name": self.name, "description": self.description, "parameters": parameters},
            }
            self._schema = schema
        return schema

    @schema.setter
    def schema(self, value: dict[str, Any]) -> None:
        self._schema = value

    @property
    def is_delegation(self) -> bool:
        """True when the tool is an absorbed sibling."""
        return self.sibling is not None

    def bind(self, arguments: dict[str, Any]) -> Bound:
        """Validate parsed JSON arguments; raise :class:`ToolArgumentsError` with text for the model."""
        if self._build is not None:
            self._materialize()
        return self._bind(arguments)

    def parse(self, raw: str | dict[str, Any] | None) -> dict[str, Any]:
        """Parse the model's raw JSON arguments into a dict (empty text means no arguments)."""
        if isinstance(raw, dict):
            return raw
        if raw is None or not raw.strip():
            return {}
        try:
            value = parse_json_object(raw)
        except JsonLimitError as exc:
            raise ToolArgumentsError(
                f"error: the arguments for tool '{self.name}' were refused: {exc}; call it again with "
                f"a small JSON object matching its parameters: {json.dumps(self.parameters)}"
            ) from None
        except ValueError as exc:
            raise ToolArgumentsError(
                f"error: the arguments for tool '{self.name}' are not valid JSON ({exc}); "
                f"call it again with a JSON object matching its parameters: {json.dumps(self.parameters)}"
            ) from None
        if not isinstance(value, dict):
            raise ToolArgumentsError(
                f"error: the arguments for tool '{self.name}' must be a JSON object, got "
                f"{type(value).__name__}; expected parameters: {json.dumps(self.parameters)}"
            )
        return value

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        kind = "sibling" if self.sibling is not None else "tool"
        return f"<Tool {self.name!r} ({kind})>"


def _unbuilt(arguments: dict[str, Any]) -> Bound:  # never called: bind() builds first
    raise AssertionError("tool used before its arguments model was built")


# Reentrant: a build runs user code (pydantic calls a parameter type's hooks), which might
# touch another tool.
_build_lock = RLock()


def validation_message(tool_name: str, exc: ValidationError, parameters: dict[str, Any]) -> str:
    """Turn a pydantic error into one line the model can act on."""
    problems = []
    for err in exc.errors(include_url=False):
        where = ".".join(str(p) for p in err["loc"]) or "arguments"
        got = f" (got {err['input']!r})" if err["type"] != "missing" else ""
        problems.append(f"{where}: {err['msg']}{got}")
    return (
        f"error: invalid arguments for tool '{tool_name}': {'; '.join(problems)}. "
        f"Call it again with arguments matching: {json.dumps(parameters)}"
    )


_ARGS_HEADER = re.compile(r"^\s*(Args|Arguments|Parameters)\s*:\s*$", re.IGNORECASE)
_SECTION = re.compile(r"^[A-Z][A-Za-z ]*:\s*$")
_ARG_LINE = re.compile(r"^\s*\*{0,2}(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")


def _parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """Split a docstring into its description (the text before the first section) and the
    Google-style ``Args:`` descriptions."""
    summary: list[str] = []
    params: dict[str, str] = {}
    section: str | None = None
    indent: int | None = None
    current: str | None = None
    for line in inspect.cleandoc(doc).splitlines():
        stripped = line.strip()
        if line[:1].strip() and _SECTION.match(line):
            section = "args" if _ARGS_HEADER.match(line) else "other"
            indent = current = None
            continue
        if section is None:
            summary.append(line)
        elif section == "args" and stripped:
            depth = len(line) - len(line.lstrip())
            match = _ARG_LINE.match(line)
            if match and (indent is None or depth <= indent):
                indent, current = depth, match.group(1)
                params[current] = match.group(2).strip()
            elif current is not None:
                params[current] = f"{params[current]} {stripped}".strip()
    return "\n".join(summary).strip(), params


def _strip_titles(schema: dict[str, Any]) -> dict[str, Any]:
    schema.pop("title", None)
    for prop in schema.get("properties", {}).values():
        if isinstance(prop, dict):
            prop.pop("title", None)
    return schema


def _resolve_hints(fn: Callable[..., Any], localns: dict[str, Any] | None) -> dict[str, Any]:
    """Type hints of ``fn``, string annotations (``from __future__ import annotations``) evaluated."""
    raw = getattr(fn, "__annotations__", None)
    if not isinstance(raw, dict):
        return {}
    globalns = getattr(inspect.unwrap(fn), "__globals__", {})
    hints: dict[str, Any] = {}
    for key, value in raw.items():
        if key == "return":
            continue
        if isinstance(value, str):
            try:
                value = eval(value, globalns, localns or {})  # as typing.get_type_hints does
            except Exception as exc:
                raise TypeError(
                    f"cannot resolve the type hint {value!r} of parameter '{key}' of {fn!r}: {exc}; "
                    "define the type at module level"
                ) from exc
        hints[key] = value
    return hints


def _function_tool(
    fn: Callable[..., Any],
    name: str | None,
    description: str | None,
    timeout: float | None,
    localns: dict[str, Any] | None = None,
) -> Tool:
    # What is cheap and catches most mistakes happens now: the name, the docstring, the
    # signature and the type hints (a misspelt type fails here, naming the parameter). The
    # pydantic model (importing pydantic, building the schema and the validator: most of a
    # sibling's load time) waits for the first schema or call, see _arguments_builder.
    tool_name: str = name or str(getattr(fn, "__name__", ""))
    doc_description, arg_docs = _parse_docstring(inspect.getdoc(fn) or "")
    signature = inspect.signature(fn)
    hints = _resolve_hints(fn, localns)
    params: list[tuple[str, Any, Any, str | None]] = []
    for pname, param in signature.parameters.items():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        annotation = hints.get(pname, param.annotation)
        if annotation is inspect.Parameter.empty:
            annotation = Any
        default = ... if param.default is inspect.Parameter.empty else param.default
        params.append((pname, annotation, default, arg_docs.get(pname)))
    return Tool._deferred(
        tool_name,
        description if description is not None else doc_description,
        fn,
        _arguments_builder(tool_name, fn, params),
        timeout=timeout,
    )


def _arguments_builder(
    tool_name: str, fn: Callable[..., Any], params: list[tuple[str, Any, Any, str | None]]
) -> Callable[[], tuple[dict[str, Any], Callable[[dict[str, Any]], Bound]]]:
    """The deferred half of :func:`_function_tool`: the JSON schema and the validating
    ``bind``, built once on first need; through pydantic, unless :func:`_plain_arguments`
    gives the same without it."""

    def build() -> tuple[dict[str, Any], Callable[[dict[str, Any]], Bound]]:
        plain = _plain_arguments(params, pydantic_build)
        return plain if plain is not None else pydantic_build()

    def pydantic_build() -> tuple[dict[str, Any], Callable[[dict[str, Any]], Bound]]:
        skip_pydantic_plugin_scan_if_none()
        from pydantic import ConfigDict, Field, ValidationError, create_model

        try:
            fields: dict[str, Any] = {
                pname: (annotation, Field(default, description=doc))
                for pname, annotation, default, doc in params
            }
            args_model: type[BaseModel] = create_model(
                f"{tool_name}_arguments",
                __config__=ConfigDict(arbitrary_types_allowed=True),
                **fields,
            )
            parameters = _strip_titles(args_model.model_json_schema())
        except Exception as exc:  # pydantic's own errors are TypeErrors too
            where = getattr(fn, "__qualname__", None) or repr(fn)
            module = getattr(fn, "__module__", None)
            raise TypeError(
                f"cannot build the parameters of tool '{tool_name}' (function "
                f"{f'{module}.' if module else ''}{where}) with pydantic: {exc}"
            ) from exc
        parameters.setdefault("properties", {})
        validate = args_model.model_validate

        def bind(arguments: dict[str, Any]) -> Bound:
            try:
                instance = validate(arguments)
            except ValidationError as exc:
                raise ToolArgumentsError(validation_message(tool_name, exc, parameters)) from None
            return (), instance.__dict__

        return parameters, bind

    return build


# -- the pydantic-free path for plain parameters --------------------------------------------------

_PLAIN_TYPES: dict[Any, str] = {int: "integer", float: "number", str: "string", bool: "boolean"}
_BASEMODEL_NAMES = frozenset(
    {
        "construct",
        "copy",
        "dict",
        "from_orm",
        "json",
        "parse_file",
        "parse_obj",
        "parse_raw",
        "schema",
        "schema_json",
        "update_forward_refs",
        "validate",
    }
)
"""``pydantic.BaseModel``'s public names outside ``model_*``: a field so named makes pydantic
warn, so such tools take the pydantic path (tests/test_tool_plain.py checks the list)."""


def _plain_field(annotation: Any) -> tuple[dict[str, Any], Any] | None:
    """The JSON schema of a plain annotation and its item type (None for a scalar); None when
    the annotation is not one of ``int``, ``float``, ``str``, ``bool`` or ``list`` of them."""
    kind = _PLAIN_TYPES.get(annotation) if isinstance(annotation, type) else None
    if kind is not None:
        return {"type": kind}, None
    if type(annotation) is GenericAlias and annotation.__origin__ is list and len(annotation.__args__) == 1:
        item = annotation.__args__[0]
        item_kind = _PLAIN_TYPES.get(item) if isinstance(item, type) else None
        if item_kind is not None:
            return {"items": {"type": item_kind}, "type": "array"}, item
    return None


def _plain_default(value: Any) -> bool:
    """A default pydantic would neither copy nor describe differently: None, or an exact bool,
    int, str, or finite float (a list default is copied by pydantic: that takes its path)."""
    if value is None or type(value) in (bool, int, str):
        return True
    return type(value) is float and value - value == 0  # not inf or nan


def _plain_arguments(
    params: list[tuple[str, Any, Any, str | None]],
    fallback: Callable[[], tuple[dict[str, Any], Callable[[dict[str, Any]], Bound]]],
) -> tuple[dict[str, Any], Callable[[dict[str, Any]], Bound]] | None:
    """Schema and ``bind`` without pydantic, for parameters that are all plain (see
    :func:`_plain_field`); None when any is not, or when a pydantic plugin is installed (it
    would expect to see every validator built).

    The schema is pydantic's to the key order (pydantic sorts a field's keys; titles are
    stripped). ``bind`` accepts arguments whose values already have exactly the parameter's
    type (and ignores unknown keys, as pydantic does); anything else (a missing argument, a
    ``"4"`` for an int, a bool for an int, an int for a float) goes to pydantic, built on
    first need, which converts it or words the error exactly as before.
    """
    fields: list[tuple[str, Any, Any, Any]] = []
    properties: dict[str, Any] = {}
    required: list[str] = []
    for pname, annotation, default, doc in params:
        plain = _plain_field(annotation)
        if plain is None or pname.startswith(("_", "model_")) or pname in _BASEMODEL_NAMES:
            return None
        schema, item = plain
        if default is ...:
            required.append(pname)
        elif _plain_default(default):
            schema["default"] = default
        else:
            return None
        if doc is not None:
            schema["description"] = doc
        properties[pname] = dict(sorted(schema.items()))
        fields.append((pname, annotation if item is None else list, item, default))
    if not no_pydantic_plugin():
        return None
    parameters: dict[str, Any] = {"properties": properties}
    if required:
        parameters["required"] = required
    parameters["type"] = "object"
    slow: list[Callable[[dict[str, Any]], Bound]] = []

    def bind(arguments: dict[str, Any]) -> Bound:
        values: dict[str, Any] = {}
        for pname, kind, item, default in fields:
            value = arguments.get(pname, _MISSING)
            if value is _MISSING and default is not ...:
                value = default
            elif type(value) is not kind or (item is not None and not all(type(v) is item for v in value)):
                break
            elif item is not None:
                value = list(value)  # pydantic hands the function a new list
            values[pname] = value
        else:
            return (), values
        if not slow:
            with _build_lock:
                if not slow:
                    slow.append(fallback()[1])
        return slow[0](arguments)

    return parameters, bind


_MISSING = object()


@overload
def tool(
    fn: Callable[..., Any],
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    timeout: float | None = None,
) -> Tool: ...


@overload
def tool(
    *, name: str | None = None, description: str | None = None, timeout: float | None = None
) -> Callable[[Callable[..., Any]], Tool]: ...


def tool(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    timeout: float | None = None,
) -> Tool | Callable[[Callable[..., Any]], Tool]:
    """Turn a typed function (sync or async) into a :class:`Tool`.

    The name is the function's, the description its docstring (``Args:`` lines describe the
    parameters) and the JSON-schema parameters come from its type hints, through pydantic.
    Use bare (``@tool``) or with options (``@tool(name=..., description=..., timeout=...)``).
    """
    # The caller's locals resolve string annotations naming classes defined in a function.
    localns = dict(sys._getframe(1).f_locals)
    if fn is not None:
        return _function_tool(fn, name, description, timeout, localns)

    def decorate(func: Callable[..., Any]) -> Tool:
        return _function_tool(func, name, description, timeout, localns)

    return decorate


def as_tool(obj: Tool | Callable[..., Any]) -> Tool:
    """A :class:`Tool` as is; a plain function through :func:`tool`."""
    if isinstance(obj, Tool):
        return obj
    if callable(obj):
        return _function_tool(obj, None, None, None)
    raise TypeError(f"not a tool or function: {obj!r}")
