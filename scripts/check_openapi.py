"""Holds docs/openapi.yaml against the running HTTP API.

Run by tools/local-runner/tests/openapi.rs, which serves the real function
behind the local API Gateway and passes what the code itself owns (its
route table and the fields its JSON parsers know):

    check_openapi.py SPEC BASE_URL CODE_JSON NO_KAFKA_URL

(NO_KAFKA_URL: the same API deployed without Kafka, for the 503 of async
submit.)

1. Every named request example of the document is sent, in document order
   with deletes last; openapi-core validates the request (it must fail for
   an example marked `x-invalid`, pass otherwise) and the response against
   the operation (status, content type, body schema, required headers);
   the status must be the example's `x-status`.
2. Drift: the document's (method, path) pairs equal the code's routes;
   every other method on a documented path answers 405 with the `Allow`
   header the document implies and a valid Problem; a path outside them
   answers 404. Every route with a body answers another content type with
   415 and a body over the code's limit with 413, both documented. Each
   JSON request body's documented properties equal the fields its parser
   knows. Async submit on a deployment without Kafka answers the
   documented 503 with its Retry-After header.
3. The OpenAPI 3.0 form that API Gateway imports
   (scripts/openapi_for_apigateway.py) is a valid 3.0 document.

Prints one line per check and exits non-zero on any failure.
"""

import base64
import json
import sys

import requests
import yaml
from jsonschema_path import SchemaPath
from openapi_core import Config, OpenAPI
from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import OpenAPIV30SpecValidator

import openapi_for_apigateway

METHODS = ["get", "put", "post", "delete", "patch", "head", "options"]
# The local stack is deployed like ApiAuthorization=NONE: nothing checks a
# signature. The document requires the sigv4 scheme (its header) as AWS
# does, so the examples carry one.
AUTH = {"authorization": "AWS4-HMAC-SHA256 Credential=local/execute-api, Signature=0"}

failures = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    if not ok:
        failures.append(what)


def operations(spec):
    """(method, path, operation) in document order, deletes last."""
    ops = [
        (method, path, item[method])
        for path, item in spec["paths"].items()
        for method in METHODS
        if method in item
    ]
    return [o for o in ops if o[0] != "delete"] + [o for o in ops if o[0] == "delete"]


def parameters(spec, path, op):
    """The operation's parameters, path-level ones included, refs resolved."""
    params = spec["paths"][path].get("parameters", []) + op.get("parameters", [])
    resolved = []
    for p in params:
        if "$ref" in p:
            name = p["$ref"].rsplit("/", 1)[1]
            p = spec["components"]["parameters"][name]
        resolved.append(p)
    return resolved


def examples(spec, path, op):
    """(name, content type or None, body bytes or None, example) of an operation."""
    out = []
    for ctype, media in op.get("requestBody", {}).get("content", {}).items():
        for name, ex in media.get("examples", {}).items():
            if ctype == "application/json":
                body = json.dumps(ex["value"]).encode()
            else:
                # Binary bodies (protobuf) are written as base64.
                body = base64.b64decode(ex["value"])
            out.append((name, ctype, body, ex))
    for name, ex in op.get("x-examples", {}).items():
        out.append((name, None, None, ex))
    return out


def send(spec, base_url, method, path, op, name, ctype, body):
    url_path, query = path, {}
    for p in parameters(spec, path, op):
        value = p.get("examples", {}).get(name, {}).get("value")
        if value is None:
            if p.get("required"):
                raise SystemExit(f"{method} {path}: example {name!r} has no value for {p['name']}")
            continue
        if p["in"] == "path":
            url_path = url_path.replace("{" + p["name"] + "}", requests.utils.quote(str(value)))
        else:
            query[p["name"]] = str(value)
    headers = dict(AUTH)
    if ctype:
        headers["content-type"] = ctype
    request = requests.Request(method.upper(), base_url + url_path, params=query, headers=headers, data=body)
    prepared = request.prepare()
    response = requests.Session().send(prepared, timeout=60)
    return prepared, response


def main():
    spec_path, base_url, code_path, no_kafka_url = sys.argv[1:5]
    with open(spec_path) as f:
        spec = yaml.safe_load(f)
    with open(code_path) as f:
        code = json.load(f)
    # The 3.0 form API Gateway imports (scripts/openapi_for_apigateway.py).
    errors = [e.message for e in OpenAPIV30SpecValidator(openapi_for_apigateway.convert(spec)).iter_errors()]
    check(not errors, f"the OpenAPI 3.0 form for API Gateway is valid {errors[:3]}")
    # The local stack's address, as one of the document's servers.
    spec["servers"].append({"url": base_url})
    spec["servers"].append({"url": no_kafka_url})
    # openapi-core reads application/json; the API's other JSON media types
    # are JSON too.
    config = Config(extra_media_type_deserializers={
        "application/problem+json": json.loads,
        "application/cloudevents-batch+json": json.loads,
    })
    openapi = OpenAPI(SchemaPath.from_dict(spec), config=config)  # validates the document itself
    print("ok   the document is valid OpenAPI " + spec["openapi"])

    ops = operations(spec)
    documented = {(m.upper(), p) for m, p, _ in ops}
    served = {(m, p) for m, p in code["routes"]}
    check(documented == served,
          f"routes: documented only {sorted(documented - served)}, served only {sorted(served - documented)}")

    # 1. Every example, through the API and the validator.
    for method, path, op in ops:
        exs = examples(spec, path, op)
        check(any(200 <= e[3]["x-status"] < 300 for e in exs), f"{method.upper()} {path} has a successful example")
        for name, ctype, body, ex in exs:
            what = f"{method.upper()} {path} [{name}{', ' + ctype if ctype else ''}]"
            prepared, response = send(spec, base_url, method, path, op, name, ctype, body)
            req = RequestsOpenAPIRequest(prepared)
            errors = [str(e) for e in [_error(lambda: openapi.validate_request(req))] if e]
            invalid = bool(ex.get("x-invalid"))
            check(bool(errors) == invalid,
                  f"{what}: the request is {'refused' if invalid else 'valid'} by the document {errors}")
            check(response.status_code == ex["x-status"],
                  f"{what}: status {response.status_code} (documented {ex['x-status']}) {response.text[:300]}")
            if invalid:
                # A request the document refuses has no operation to check
                # the answer against: it must be a valid Problem.
                problem = response.json()
                check(not list(_problem_validator(spec).iter_errors(problem)), f"{what}: a valid Problem")
                continue
            error = _error(lambda: openapi.validate_response(req, RequestsOpenAPIResponse(response)))
            check(error is None, f"{what}: the response matches the document {error or ''}")

    # 2a. Other methods on documented paths: 405 and the Allow header.
    for path in spec["paths"]:
        allowed = sorted(m.upper() for m in METHODS if m in spec["paths"][path])
        concrete = path.replace("{name}", "accounts")
        for method in ["GET", "PUT", "POST", "DELETE", "PATCH"]:
            if method in allowed:
                continue
            response = requests.request(method, base_url + concrete, headers=AUTH, timeout=60)
            allow = sorted(m.strip() for m in response.headers.get("allow", "").split(","))
            check(response.status_code == 405 and allow == allowed,
                  f"{method} {path}: 405 allowing {allowed} (got {response.status_code}, {allow})")
            check(not list(_problem_validator(spec).iter_errors(response.json())), f"{method} {path}: a valid Problem")
    response = requests.get(base_url + "/databases/accounts/undocumented", headers=AUTH, timeout=60)
    check(response.status_code == 404 and response.json().get("code") == "NOT_FOUND",
          "a path outside the document: 404 NOT_FOUND")

    # 2b. Refusals no example can show (their requests are outside the
    # document): another content type, and a body over the code's limit,
    # on every route with a body. Each status must be documented for the
    # operation, with a valid Problem.
    for method, path, op in ops:
        if "requestBody" not in op:
            continue
        concrete = base_url + path.replace("{name}", "accounts")
        for status, headers, body in [
            (415, {"content-type": "text/plain"}, b"{}"),
            (413, {"content-type": "application/json"}, b" " * (code["max_body_bytes"] + 1)),
        ]:
            response = requests.request(method.upper(), concrete, headers={**AUTH, **headers}, data=body, timeout=60)
            documented = str(status) in op["responses"]
            check(response.status_code == status and documented,
                  f"{method.upper()} {path}: {status} for {headers['content-type']} of {len(body)} bytes, "
                  f"documented: {documented} (got {response.status_code})")
            check(not list(_problem_validator(spec).iter_errors(response.json())),
                  f"{method.upper()} {path}: {status} is a valid Problem")

    # 2c. 503 (with Retry-After): async submit where no Kafka is configured.
    path = "/databases/{name}/transactions"
    op = spec["paths"][path]["post"]
    ex = op["requestBody"]["content"]["application/json"]["examples"]["async"]
    prepared, response = send(spec, no_kafka_url, "post", path, op, "async", "application/json",
                              json.dumps(ex["value"]).encode())
    check(response.status_code == 503, f"POST {path} [async] without Kafka: 503 (got {response.status_code})")
    error = _error(lambda: openapi.validate_response(RequestsOpenAPIRequest(prepared),
                                                     RequestsOpenAPIResponse(response)))
    check(error is None, f"POST {path} [async] without Kafka: the 503 matches the document {error or ''}")

    # 2d. JSON request bodies: documented properties = the parser's fields.
    bodies = {}
    for method, path, op in ops:
        media = op.get("requestBody", {}).get("content", {}).get("application/json")
        if media:
            schema = media["schema"]
            if "$ref" in schema:
                schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
            bodies[f"{method.upper()} {path}"] = sorted(schema["properties"])
    parsed = {route: sorted(fields) for route, fields in code["request_fields"].items()}
    check(bodies.keys() == parsed.keys(), f"JSON bodies: documented {sorted(bodies)}, parsed {sorted(parsed)}")
    for route in sorted(bodies.keys() & parsed.keys()):
        check(bodies[route] == parsed[route],
              f"{route}: documented fields {bodies[route]} = parsed fields {parsed[route]}")

    print(f"{len(failures)} failed", flush=True)
    sys.exit(1 if failures else 0)


def _error(f):
    try:
        f()
        return None
    except Exception as e:  # openapi-core's validation errors, with their causes
        causes = getattr(e, "schema_errors", None) or [getattr(e, "__cause__", None)]
        return f"{type(e).__name__}: {e} {[str(c)[:300] for c in causes if c]}"


def _problem_validator(spec):
    schema = dict(spec["components"]["schemas"]["Problem"])
    return OAS31Validator(schema)


if __name__ == "__main__":
    main()
