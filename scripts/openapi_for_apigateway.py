"""Prints docs/openapi.yaml as OpenAPI 3.0 for API Gateway's import.

API Gateway imports OpenAPI 2.0 and 3.0 definitions; the document is 3.1
(JSON Schema 2020-12). This rewrites the few 3.1 forms it uses into their
3.0 equivalents and changes nothing else:

| 3.1 | 3.0 |
|---|---|
| `type: [T, 'null']`, a `{type: 'null'}` branch of oneOf | `type: T` (or the branches) with `nullable: true` |
| `type: [T, U, ...]` | no `type` (any), the types named in the description |
| `const: v` | `enum: [v]` |
| `contentMediaType: application/protobuf` (binary bodies) | `type: string, format: binary` |
| `contentEncoding: base64` | `format: byte` |
| `info.summary`, `info.license.identifier` | dropped |

    .venv/bin/python scripts/openapi_for_apigateway.py [docs/openapi.yaml] > openapi-3.0.yaml

scripts/check_openapi.py (make test) checks that the result is a valid
OpenAPI 3.0 document.
"""

import sys

import yaml


def schema_30(node):
    """A 3.1 schema (and every schema under it) in 3.0 form."""
    if isinstance(node, list):
        return [schema_30(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: schema_30(v) for k, v in node.items()}
    types = out.get("type")
    if isinstance(types, list):
        rest = [t for t in types if t != "null"]
        if len(rest) < len(types):
            out["nullable"] = True
        if len(rest) == 1:
            out["type"] = rest[0]
        else:
            del out["type"]
            note = "One of: " + ", ".join(rest) + "."
            out["description"] = (out.get("description", "") + " " + note).strip()
    if "oneOf" in out:
        branches = [b for b in out["oneOf"] if b != {"type": "null"}]
        if len(branches) < len(out["oneOf"]):
            out["nullable"] = True
            out["oneOf"] = branches
    if "const" in out:
        out["enum"] = [out.pop("const")]
    if "contentMediaType" in out:
        out.pop("contentMediaType")
        out["type"] = "string"
        out["format"] = "binary"
    if out.pop("contentEncoding", None) == "base64":
        out["format"] = "byte"
    return out


def convert(doc):
    doc = dict(doc)
    doc["openapi"] = "3.0.3"
    info = dict(doc["info"])
    info.pop("summary", None)
    if "license" in info:
        info["license"] = {k: v for k, v in info["license"].items() if k != "identifier"}
    doc["info"] = info
    components = dict(doc["components"])
    components["schemas"] = {name: schema_30(s) for name, s in components["schemas"].items()}
    doc["components"] = components
    # Inline schemas (parameters, responses, bodies) are converted likewise.
    doc["paths"] = _inline(doc["paths"])
    components["parameters"] = _inline(components.get("parameters", {}))
    components["responses"] = _inline(components.get("responses", {}))
    return doc


def _inline(node):
    if isinstance(node, list):
        return [_inline(n) for n in node]
    if not isinstance(node, dict):
        return node
    return {k: (schema_30(v) if k == "schema" else _inline(v)) for k, v in node.items()}


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "docs/openapi.yaml"
    with open(path) as f:
        doc = yaml.safe_load(f)
    yaml.safe_dump(convert(doc), sys.stdout, sort_keys=False, allow_unicode=True)


if __name__ == "__main__":
    main()
