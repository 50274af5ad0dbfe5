"""FriendliAI's published API definition as a checker for requests and answers.

The definition is ``friendli_openapi.yaml``: FriendliAI's own OpenAPI 3.1 spec (repository
``friendliai/friendli-openapi``), trimmed to the paths mmship calls; its header names the
source commit. :class:`Contract` checks one HTTP exchange against it in two layers:

* **published**: openapi-core validates the path and method, the path/query/header
  parameters, the bearer security, the JSON body and the answer (status documented for the
  operation, body against its schema) exactly as the spec states them;
* **strict**: what the published schemas allow but FriendliAI's server silently ignores:
  a query parameter or ``X-Friendli-*`` header the operation does not declare (``?projectId=``
  lists the whole team) and an object property no schema declares. The published schemas
  leave ``additionalProperties`` open, so this layer validates again with every object schema
  closed (``unevaluatedProperties: false``).

The fake API answers with the published layer (a 422 for what the real server rejects) and
records both layers' findings, so a test fails when mmship sends, or the fake answers,
anything the definition does not describe.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import yaml
from jsonschema import Draft202012Validator
from openapi_core import OpenAPI
from openapi_core.testing import MockRequest, MockResponse
from openapi_core.validation.request.exceptions import ParameterValidationError
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SPEC_PATH = Path(__file__).with_name("friendli_openapi.yaml")
HOST = "https://api.friendli.ai"
_URI = "urn:friendli-openapi"
_METHODS = ("get", "put", "post", "delete", "patch")


@dataclass
class Operation:
    """One operation of the spec, matched to a concrete request path."""

    method: str
    pattern: str
    spec: dict[str, Any]
    path_params: dict[str, str]

    @property
    def id(self) -> str:
        """The spec's ``operationId`` (``dedicatedListEndpoints``...)."""
        return str(self.spec.get("operationId"))

    def declared(self, where: str) -> set[str]:
        """Names of the parameters declared ``in: where`` (query, header, path)."""
        return {p["name"] for p in self.spec.get("parameters", []) if p.get("in") == where}

    def pointer(self, *parts: str) -> str:
        """A JSON pointer into the spec document below this operation."""
        escaped = [p.replace("~", "~0").replace("/", "~1") for p in ("paths", self.pattern, self.method, *parts)]
        return "#/" + "/".join(escaped)


def _close_objects(node: Any) -> Any:
    """A copy of ``node`` where every object schema with ``properties`` and no stated
    ``additionalProperties`` refuses properties it does not declare."""
    if isinstance(node, dict):
        out = {k: _close_objects(v) for k, v in node.items()}
        if isinstance(node.get("properties"), dict) and "additionalProperties" not in node:
            out.setdefault("unevaluatedProperties", False)
        return out
    if isinstance(node, list):
        return [_close_objects(v) for v in node]
    return node


def _leaves(error: Any) -> list[Any]:
    if not error.context:
        return [error]
    return [leaf for sub in error.context for leaf in _leaves(sub)]


def _loc(error: Any) -> tuple[list[Any], str, str]:
    """(loc below the body, msg, type) for one jsonschema error, in FastAPI's shape (the
    spec's ``HTTPValidationError``)."""
    while error.context:  # anyOf/oneOf: report the alternative that got furthest into the body
        error = max(_leaves(error), key=lambda e: len(e.absolute_path))
    path = list(error.absolute_path)
    if error.validator == "required":
        missing = next((p for p in error.validator_value if isinstance(error.instance, dict) and p not in error.instance
                        and repr(p) in error.message), None)
        return [*path, missing] if missing else path, "Field required", "missing"
    if error.validator == "unevaluatedProperties":
        return path, error.message, "extra_forbidden"
    return path, error.message, str(error.validator)


class Contract:
    """Checks requests and answers against the trimmed published spec."""

    def __init__(self, path: Path = SPEC_PATH) -> None:
        self.document: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
        self.openapi = OpenAPI.from_dict(copy.deepcopy(self.document))
        self._registry = Registry().with_resources([
            (_URI, Resource(contents=self.document, specification=DRAFT202012)),
            (_URI + "-strict", Resource(contents=_close_objects(self.document), specification=DRAFT202012)),
        ])
        self._patterns = [
            (re.compile("^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(p)) + "$"), p)
            for p in self.document["paths"]
        ]

    # --- facts the fake and the tests read ----------------------------------------------

    def schema(self, name: str) -> dict[str, Any]:
        """A component schema."""
        return self.document["components"]["schemas"][name]

    def enum(self, name: str) -> list[str]:
        """The values of an enum schema (``InferenceDeploymentStatus``...)."""
        return list(self.schema(name)["enum"])

    @cached_property
    def instance_options(self) -> dict[str, str]:
        """Documented ``instanceOptionId`` values -> their description ("1x NVIDIA H100")."""
        text = self.schema("DedicatedEndpointCreateBody")["properties"]["instanceOptionId"]["description"]
        return {m.group(2): m.group(1).strip() for m in re.finditer(r"^\s*- (.+?): `([^`]+)`", text, re.M)}

    @cached_property
    def phases(self) -> list[str]:
        """The documented initialisation phases, in order."""
        variants = self.schema("DedicatedEndpointStatus")["properties"]["phase"]["anyOf"]
        return next(list(v["enum"]) for v in variants if "enum" in v)

    def schema_errors(self, name: str, instance: Any) -> list[str]:
        """Messages for every way ``instance`` breaks the component schema ``name`` (strict)."""
        validator = self._validator(f"#/components/schemas/{name}", strict=True)
        return [e.message for e in validator.iter_errors(instance)]

    def default(self, schema: str, field: str) -> Any:
        """A property's documented default."""
        return self.schema(schema)["properties"][field].get("default")

    # --- matching -----------------------------------------------------------------------

    def operation(self, method: str, raw_path: str) -> Operation | None:
        """The operation a request goes to (path parameters percent-decoded), or None."""
        for regex, pattern in self._patterns:
            match = regex.match(raw_path)
            if match and method.lower() in self.document["paths"][pattern]:
                params = {k: unquote(v) for k, v in match.groupdict().items()}
                return Operation(method.lower(), pattern, self.document["paths"][pattern][method.lower()], params)
        return None

    def _validator(self, pointer: str, strict: bool) -> Draft202012Validator:
        base = _URI + ("-strict" if strict else "")
        return Draft202012Validator({"$ref": base + pointer}, registry=self._registry)

    def query(self, method: str, raw_path: str, query: Iterable[tuple[str, str]]) -> tuple[dict[str, Any], list[tuple[list[Any], str, str]]]:
        """The declared query parameters, typed and with their documented defaults, and
        (loc, msg, type) for each one that breaks its schema."""
        request = MockRequest(HOST, method, raw_path, args=list(query), headers={"Authorization": "Bearer x"})
        result = self.openapi.unmarshal_request(request)
        errors = [([e.location, e.name], str(e), "parameter") for e in result.errors if isinstance(e, ParameterValidationError)]
        return dict(result.parameters.query), errors

    def body_errors(self, op: Operation, body: Any, *, strict: bool = False) -> list[tuple[list[Any], str, str]]:
        """(loc, msg, type) for every way ``body`` breaks the operation's request schema."""
        if "requestBody" not in op.spec:
            return []
        validator = self._validator(op.pointer("requestBody", "content", "application/json", "schema"), strict)
        return [_loc(e) for e in sorted(validator.iter_errors(body), key=lambda e: list(map(str, e.absolute_path)))]

    def answer_errors(self, op: Operation, status: int, body: Any, *, strict: bool = False) -> list[str]:
        """Messages for every way ``body`` breaks the schema of the documented answer ``status``."""
        content = op.spec["responses"].get(str(status), {}).get("content", {})
        if "application/json" not in content:
            return []
        validator = self._validator(op.pointer("responses", str(status), "content", "application/json", "schema"), strict)
        return [f"{'.'.join(map(str, e.absolute_path)) or 'answer'}: {e.message}" for e in validator.iter_errors(body)]

    # --- the two layers -----------------------------------------------------------------

    def request_problems(
        self, method: str, raw_path: str, query: Iterable[tuple[str, str]], headers: Mapping[str, str], body: bytes
    ) -> list[str]:
        """Everything wrong with one request, published and strict layers together."""
        where = f"{method.upper()} {raw_path}"
        query = list(query)
        request = MockRequest(HOST, method, raw_path, args=query, headers=dict(headers), data=body or None)
        problems = []
        try:
            self.openapi.validate_request(request)
        except Exception as exc:  # openapi-core raises one error class per failed layer
            cause = getattr(exc, "__cause__", None)
            details = getattr(cause, "schema_errors", None) or ()
            problems.append(f"{where}: {type(exc).__name__}: {exc}" + "".join(f"; {d.message}" for d in details))
        op = self.operation(method, raw_path)
        if op is None:
            return problems or [f"{where}: no such operation in FriendliAI's spec"]
        declared = op.declared("query")
        problems += [f"{where}: query parameter {name!r} is not declared (declared: {sorted(declared)})"
                     for name, _ in query if name not in declared]
        header_names = {n.lower() for n in op.declared("header")}
        problems += [f"{where}: header {name!r} is not declared" for name in headers
                     if name.lower().startswith("x-friendli") and name.lower() not in header_names]
        if body and "requestBody" in op.spec:
            try:
                parsed = json.loads(body)
            except ValueError:
                return [*problems, f"{where}: the body is not JSON"]
            problems += [f"{where}: {'.'.join(map(str, ['body', *loc]))}: {msg}"
                         for loc, msg, kind in self.body_errors(op, parsed, strict=True) if kind == "extra_forbidden"]
        return problems

    def response_problems(self, method: str, raw_path: str, status: int, body: bytes, content_type: str) -> list[str]:
        """Everything wrong with one answer: an undocumented status, a body that breaks the
        published schema, or a property no schema declares."""
        where = f"{method.upper()} {raw_path} -> {status}"
        request = MockRequest(HOST, method, raw_path, headers={"Authorization": "Bearer x"})
        response = MockResponse(body, status_code=status, content_type=content_type or "application/json")
        problems = []
        try:
            self.openapi.validate_response(request, response)
        except Exception as exc:
            cause = getattr(exc, "__cause__", None)
            details = getattr(cause, "schema_errors", None) or ()
            problems.append(f"{where}: {type(exc).__name__}: {exc}" + "".join(f"; {d.message}" for d in details))
        op = self.operation(method, raw_path)
        if op is not None and body:
            try:
                parsed = json.loads(body)
            except ValueError:
                return [*problems, f"{where}: the answer is not JSON"]
            problems += [f"{where}: {m}" for m in self.answer_errors(op, status, parsed, strict=True)
                         if "Unevaluated properties" in m]
        return problems


_CONTRACT: Contract | None = None


def contract() -> Contract:
    """The shared :class:`Contract` (loading the spec takes a moment)."""
    global _CONTRACT
    if _CONTRACT is None:
        _CONTRACT = Contract()
    return _CONTRACT
