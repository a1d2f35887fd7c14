"""A pydantic input model for a remote typed sibling, built from the JSON schema in its card."""

from __future__ import annotations

from typing import Any


def model_from_schema(name: str, schema: dict[str, Any]) -> Any:
    """A pydantic model whose JSON schema is exactly ``schema`` (the served sibling's input).

    Simple top-level fields are typed so the captain catches obvious mistakes; the serving
    side validates against the real model.
    """
    import copy
    from typing import Optional

    from pydantic import BaseModel, ConfigDict, create_model

    kinds: dict[str, Any] = {
        "string": str,
        "integer": int,
        "number": float,
        "boolean": bool,
        "array": list,
        "object": dict,
    }
    required = set(schema.get("required") or ())
    fields: dict[str, Any] = {}
    for key, spec in (schema.get("properties") or {}).items():
        if not key.isidentifier() or key.startswith("_") or hasattr(BaseModel, key):
            continue
        kind = kinds.get(str(spec.get("type"))) if isinstance(spec, dict) else None
        kind = kind or Any
        if key in required:
            fields[key] = (kind, ...)
        else:
            fields[key] = (Optional[kind], spec.get("default") if isinstance(spec, dict) else None)  # noqa: UP045
    safe = "".join(c if c.isalnum() else "_" for c in name)
    try:
        model = create_model(f"{safe}_input", __config__=ConfigDict(extra="allow"), **fields)
    except Exception:
        model = create_model(f"{safe}_input", __config__=ConfigDict(extra="allow"))
    frozen = copy.deepcopy(schema)

    def model_json_schema(cls: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return copy.deepcopy(frozen)

    model.model_json_schema = classmethod(model_json_schema)
    return model
