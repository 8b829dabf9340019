"""A normalised view of an OpenAPI document: what clients rely on, without wording or component names."""

from __future__ import annotations

from typing import Any

SCALAR_KEYS = ("type", "enum", "const", "minimum", "maximum", "format")


def shape(spec: dict, schema: dict | None, seen: frozenset[str] = frozenset()) -> dict:
    """A schema with references resolved, ``allOf`` merged, ``X | null`` as ``nullable`` and wording dropped.

    A reference back to a schema being resolved (a tree's ``children``) stays a reference: ``{"recursive": name}``.
    """
    schema = dict(schema or {})
    while "$ref" in schema:
        name = schema.pop("$ref").rsplit("/", 1)[-1]
        if name in seen:
            return {"recursive": name}
        seen = seen | {name}
        schema = {**spec["components"]["schemas"][name], **schema}
    if "allOf" in schema:
        merged: dict[str, Any] = {"type": "object", "properties": {}, "required": []}
        for part in schema["allOf"]:
            part = shape(spec, part, seen)
            merged["properties"].update(part.get("properties", {}))
            merged["required"] += part.get("required", [])
        merged["required"] = sorted(merged["required"])
        return merged
    if "anyOf" in schema:
        options = [s for s in schema["anyOf"] if s != {"type": "null"}]
        shaped = [shape(spec, s, seen) for s in options]
        inner = shaped[0] if len(shaped) == 1 else {"anyOf": shaped}
        return {**inner, "nullable": True} if len(options) < len(schema["anyOf"]) else inner
    if schema.get("type") == "object" or "properties" in schema:
        props = {name: shape(spec, sub, seen) for name, sub in schema.get("properties", {}).items()}
        out = {"type": "object", "properties": props, "required": sorted(schema.get("required", []))}
        return out
    if schema.get("type") == "array":
        return {"type": "array", "items": shape(spec, schema.get("items"), seen)}
    out = {k: schema[k] for k in SCALAR_KEYS if k in schema}
    if "const" in out:
        out.pop("type", None)
    if "enum" in out:
        out["enum"] = sorted(out["enum"])
    return out


def contract(spec: dict) -> dict:
    """Per operation: parameters (name, in, required, type, bounds, default), request body and response bodies."""
    operations = {}
    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            parameters = {
                (p["name"], p["in"]): {
                    "required": bool(p.get("required")),
                    **shape(spec, p["schema"]),
                    **({"default": p["schema"]["default"]} if p["schema"].get("default") is not None else {}),
                }
                for p in op.get("parameters", [])
            }
            body = {
                media: shape(spec, content.get("schema"))
                for media, content in op.get("requestBody", {}).get("content", {}).items()
            }
            responses = {
                status: {media: shape(spec, c.get("schema")) for media, c in response.get("content", {}).items()}
                for status, response in op["responses"].items()
            }
            operations[(method, path)] = {"parameters": parameters, "body": body, "responses": responses}
    return operations


def lost(old: dict, new: dict, where: str = "") -> list[str]:
    """What ``new`` no longer says that ``old`` did: a missing field or status, or a different type or bound.

    New fields and newly required ones are not losses (they were in the responses all along, undocumented)."""
    problems = []
    for key, value in old.items():
        here = f"{where}/{key}"
        if key not in new:
            problems.append(f"{here}: missing")
        elif key == "required" and isinstance(value, list):
            problems += [f"{here}: {name} no longer required" for name in value if name not in new[key]]
        elif isinstance(value, dict) and isinstance(new[key], dict):
            problems += lost(value, new[key], here)
        elif value != new[key]:
            problems.append(f"{here}: {value!r} became {new[key]!r}")
    return problems
