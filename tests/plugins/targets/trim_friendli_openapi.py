"""Writes ``friendli_openapi.yaml``: the part of FriendliAI's published OpenAPI spec mmship uses.

Not a test: run it by hand when FriendliAI publishes a new spec, then rerun the tests::

    python tests/plugins/targets/trim_friendli_openapi.py PATH/TO/openapi.yaml COMMIT

``openapi.yaml`` comes from the GitHub repository ``friendliai/friendli-openapi``
(Apache-2.0). The copy keeps the paths in :data:`PATHS` unchanged, every schema they
reference (transitively) and the security schemes, and drops the ``x-mint`` blocks
(documentation-site pages) to keep the file small. Nothing else is edited.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

PATHS = (
    "/dedicated/beta/endpoint",
    "/dedicated/beta/endpoint/{endpoint_id}",
    "/dedicated/beta/endpoint/{endpoint_id}/status",
    "/dedicated/beta/endpoint/{endpoint_id}/sleep",
    "/dedicated/beta/endpoint/{endpoint_id}/wake",
    "/dedicated/beta/endpoint/{endpoint_id}/terminate",
    "/dedicated/beta/endpoint/{endpoint_id}/restart",
    "/dedicated/v1/chat/completions",
    "/dedicated/v1/embeddings",
)
OUT = Path(__file__).with_name("friendli_openapi.yaml")


def _drop_docs(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _drop_docs(v) for k, v in node.items() if k != "x-mint"}
    if isinstance(node, list):
        return [_drop_docs(v) for v in node]
    return node


def _refs(node: Any, found: set[str], schemas: dict[str, Any]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith("#/components/schemas/"):
                name = value.rsplit("/", 1)[1]
                if name not in found:
                    found.add(name)
                    _refs(schemas[name], found, schemas)
            else:
                _refs(value, found, schemas)
    elif isinstance(node, list):
        for value in node:
            _refs(value, found, schemas)


def trim(spec: dict[str, Any]) -> dict[str, Any]:
    """The kept paths, the schemas they reference and the security schemes."""
    paths = {p: _drop_docs(spec["paths"][p]) for p in PATHS}
    schemas = spec["components"]["schemas"]
    found: set[str] = set()
    _refs(paths, found, schemas)
    return {
        "openapi": spec["openapi"],
        "info": spec["info"],
        "servers": spec["servers"],
        "paths": paths,
        "components": {
            "schemas": {name: schemas[name] for name in sorted(found)},
            "securitySchemes": spec["components"]["securitySchemes"],
        },
    }


def main(argv: list[str]) -> None:
    """``trim_friendli_openapi.py OPENAPI_YAML COMMIT``."""
    source, commit = Path(argv[0]), argv[1]
    spec = yaml.safe_load(source.read_text(encoding="utf-8"))
    header = (
        "# FriendliAI's published OpenAPI spec, trimmed to what mmship uses.\n"
        "# Source: https://github.com/friendliai/friendli-openapi, file openapi.yaml,\n"
        f"# commit {commit}.\n"
        "# License: Apache-2.0 (FriendliAI). Modified: only the paths mmship calls, the schemas\n"
        "# they reference and the security schemes are kept; x-mint documentation blocks are\n"
        "# dropped. Regenerate with tests/plugins/targets/trim_friendli_openapi.py; do not edit.\n"
    )
    body = yaml.safe_dump(trim(spec), sort_keys=False, allow_unicode=True, width=100)
    OUT.write_text(header + body, encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1:])
