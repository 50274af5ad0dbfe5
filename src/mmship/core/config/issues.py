"""Config problems as people read them: path, line, what was expected, what came, the fix.

:class:`ConfigIssue` is one problem; :func:`issues_from_validation` turns a pydantic
``ValidationError`` into issues (unknown keys get a ``did you mean`` from the keys that
section takes; a key written in the wrong section is pointed to its section);
:func:`config_error` folds issues into one :class:`~mmship.core.errors.ConfigError`.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Union

from pydantic import BaseModel, ValidationError

from mmship.core.errors import ConfigError

#: A place in the YAML tree: keys and list indexes from the top.
YamlPath = tuple[Any, ...]

_SECRET_KEY = re.compile(r"(token|secret|password|passwd|api_?key|credential)", re.IGNORECASE)


def format_path(path: Sequence[Any]) -> str:
    """``("model", "inputs", 0, "shape")`` -> ``model.inputs[0].shape``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + str(part)
    return text


def show_value(value: Any) -> str:
    """A value as it reads in YAML: ``'fp61'``, ``[1, 224, 224, 3]``, ``null``, a mapping."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping" if value else "an empty mapping"
    if isinstance(value, list):
        text = "[" + ", ".join(show_value(v) for v in value) + "]"
    elif isinstance(value, str):
        text = repr(value)
    else:
        text = str(value)
    return text if len(text) <= 80 else text[:77] + "..."


def kind_of(value: Any) -> str:
    """What a value is, in words (``a list``, ``text``, ``a number``)."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"a boolean ({show_value(value)})"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return f"a list ({show_value(value)})"
    if isinstance(value, str):
        return f"text ({show_value(value)})"
    return f"a number ({value})"


#: Words people write for a value under another name.
ALIASES: dict[str, str] = {
    "gpu": "cuda",
    "trt": "tensorrt",
    "torch": "pytorch",
    "onnx": "onnxruntime",
    "ort": "onnxruntime",
    "half": "fp16",
    "float16": "fp16",
    "float32": "fp32",
    "float": "fp32",
    "full": "fp32",
    "qint8": "int8",
    "cpu": "cpu_utilization",
    "memory": "memory_utilization",
    "mem": "memory_utilization",
    "requests": "request_count",
}


def suggest(word: str, choices: Iterable[str]) -> str | None:
    """The choice ``word`` most likely meant (an alias, a typo or a prefix), or ``None``."""
    options = [c for c in choices if isinstance(c, str)]
    alias = ALIASES.get(str(word).strip().lower())
    if alias in options:
        return alias
    close = difflib.get_close_matches(str(word), options, n=1, cutoff=0.6)
    if close:
        return close[0]
    lowered = str(word).lower()
    if len(lowered) < 3:
        return None
    prefixed = [c for c in options if c.lower().startswith(lowered) or (len(c) >= 3 and lowered.startswith(c.lower()))]
    return prefixed[0] if len(prefixed) == 1 else None


@dataclass
class ConfigIssue:
    """One problem in a config file."""

    path: YamlPath
    line: int | None
    message: str
    hint: str | None = None

    @property
    def where(self) -> str:
        """``model.serving_params.precison (line 14)``; ``line 3`` for the file itself."""
        name = format_path(self.path)
        line = f"line {self.line}" if self.line is not None else ""
        if name and line:
            return f"{name} ({line})"
        return name or line or "file"

    def text(self, with_hint: bool = False) -> str:
        """``<where>: <message>`` (and `` Fix: <hint>``)."""
        body = f"{self.where}: {self.message}"
        if with_hint and self.hint:
            body += f" Fix: {self.hint}"
        return body


# --- the schema, for suggestions ----------------------------------------------------------


def _unwrap(annotation: Any) -> list[Any]:
    """The types an annotation may hold, with Optional/Annotated/list peeled off."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        return [t for arg in typing.get_args(annotation) for t in _unwrap(arg)]
    return [annotation]


def _model_of(annotation: Any, list_item: bool) -> type[BaseModel] | None:
    for candidate in _unwrap(annotation):
        origin = typing.get_origin(candidate)
        if list_item and origin in (list, tuple, Sequence):
            args = typing.get_args(candidate)
            return _model_of(args[0], False) if args else None
        if not list_item and isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def model_at(root: type[BaseModel], path: Sequence[Any]) -> type[BaseModel] | None:
    """The pydantic model that validates the mapping at ``path`` under ``root``."""
    current: type[BaseModel] | None = root
    pending: Any = None
    for part in path:
        if isinstance(part, int):
            if pending is None:
                return None
            current, pending = _model_of(pending, True), None
            continue
        if pending is not None:
            current, pending = _model_of(pending, False), None
        if current is None or part not in current.model_fields:
            return None
        pending = current.model_fields[part].annotation
    if pending is not None:
        return _model_of(pending, False)
    return current


def _field_index(root: type[BaseModel]) -> dict[str, list[YamlPath]]:
    """Field name -> the sections that take it (for keys written in the wrong section)."""
    index: dict[str, list[YamlPath]] = {}

    def visit(model: type[BaseModel], path: YamlPath, depth: int) -> None:
        for name, info in model.model_fields.items():
            index.setdefault(name, []).append(path)
            if depth > 4:
                continue
            child = _model_of(info.annotation, False)
            if child is not None:
                visit(child, (*path, name), depth + 1)
            item = _model_of(info.annotation, True)
            if item is not None:
                visit(item, (*path, name, 0), depth + 1)

    visit(root, (), 0)
    return index


# --- pydantic errors -> issues -------------------------------------------------------------


def _choices(expected: str) -> list[str]:
    return re.findall(r"'([^']*)'", expected)


def _strip_prefix(msg: str) -> str:
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            return msg[len(prefix):]
    return msg


def _describe(err: dict[str, Any], root: type[BaseModel], redact: bool, prefix: YamlPath = ()) -> tuple[str, str | None]:
    kind = err.get("type", "")
    ctx = err.get("ctx") or {}
    loc = tuple(err.get("loc", ()))
    value = err.get("input")
    got = "a hidden value" if redact else show_value(value)
    if kind == "mmship":
        return str(ctx.get("message", err.get("msg", ""))), ctx.get("hint")
    if kind == "extra_forbidden":
        key = loc[-1] if loc else ""
        section = model_at(root, loc[:-1])
        known = list(section.model_fields) if section is not None else []
        guess = suggest(str(key), known)
        if guess:
            return f"unknown key; did you mean {guess!r}?", f"rename {key!r} to {guess!r}"
        homes = [h for h in _field_index(root).get(str(key), []) if h != loc[:-1]]
        if homes:
            home = format_path(homes[0]).replace("[0]", "[]") or "the top level"
            return f"unknown key here; {key!r} belongs under {home}", f"move {key!r} under {home}"
        return (
            f"unknown key; expected one of: {', '.join(known) or 'no keys'}",
            f"remove {key!r} or use one of the keys listed",
        )
    if kind == "missing":
        parent = format_path((*prefix, *loc[:-1]))
        if not parent:
            return "required section is missing", f"add a `{loc[-1]}:` section (`mmship init` writes an example)"
        return f"required key is missing from {parent}", f"add `{loc[-1]}: ...` under {parent}"
    if kind in ("literal_error", "enum"):
        choices = _choices(str(ctx.get("expected", "")))
        guess = suggest(str(value), choices) if isinstance(value, str) else None
        message = f"expected one of {', '.join(repr(c) for c in choices)}, got {got}"
        if guess:
            return f"{message}; did you mean {guess!r}?", f"write {guess!r}"
        return message, None
    expected = {
        "int_parsing": "a whole number",
        "int_type": "a whole number",
        "int_from_float": "a whole number",
        "float_parsing": "a number",
        "float_type": "a number",
        "bool_parsing": "true or false",
        "bool_type": "true or false",
        "string_type": "text",
        "list_type": "a list (lines starting with `- `, or [a, b])",
        "dict_type": "a mapping (indented `key: value` lines)",
        "model_type": "a mapping (indented `key: value` lines)",
        "model_attributes_type": "a mapping (indented `key: value` lines)",
    }.get(kind)
    if expected is not None:
        return f"expected {expected}, got {'a hidden value' if redact else kind_of(value)}", None
    bounds = {
        "greater_than_equal": ">=",
        "greater_than": ">",
        "less_than_equal": "<=",
        "less_than": "<",
    }
    if kind in bounds:
        limit = next(iter(ctx.values()), "?")
        return f"expected a number {bounds[kind]} {limit}, got {got}", f"write a value {bounds[kind]} {limit}"
    if kind in ("value_error", "assertion_error"):
        return _strip_prefix(str(err.get("msg", ""))), None
    return f"{err.get('msg', 'invalid value')}, got {got}", None


def issues_from_validation(
    exc: ValidationError,
    root: type[BaseModel],
    line_of: Callable[[YamlPath], int | None],
    prefix: YamlPath = (),
) -> list[ConfigIssue]:
    """Issues for every error in ``exc`` (a validation of ``root``), located under
    ``prefix`` in the file. Values of secret-looking keys are never echoed."""
    errors = exc.errors(include_url=False)
    suggested = set()
    issues: list[ConfigIssue] = []
    for details in errors:
        err: dict[str, Any] = dict(details)
        loc = tuple(err.get("loc", ()))
        redact = bool(prefix) and any(isinstance(p, str) and _SECRET_KEY.search(p) for p in loc)
        message, hint = _describe(err, root, redact, prefix)
        if err.get("type") == "extra_forbidden":
            guess = re.search(r"did you mean '([^']*)'", message)
            if guess:
                suggested.add((*loc[:-1], guess.group(1)))
        line = line_of((*prefix, *loc)) if (prefix or loc[:-1] or err.get("type") != "missing") else None
        issues.append(ConfigIssue(path=(*prefix, *loc), line=line, message=message, hint=hint))
    # A misspelt key also makes the key it meant "missing": report the typo only.
    return [
        i for i in issues
        if not (i.message.startswith("required key is missing") and tuple(i.path[len(prefix):]) in suggested)
    ]


def config_error(source: str, issues: Sequence[ConfigIssue]) -> ConfigError:
    """One :class:`ConfigError` for every issue: each names its path, line and problem."""
    ordered = sorted(issues, key=lambda i: (i.line if i.line is not None else 0, format_path(i.path)))
    if len(ordered) == 1:
        issue = ordered[0]
        return ConfigError(
            f"{source}: {issue.text()}",
            hint=issue.hint or "fix that line; `mmship init` writes a commented example of every key",
        )
    body = "\n".join(f"  - {issue.text(with_hint=True)}" for issue in ordered)
    return ConfigError(
        f"{source} has {len(ordered)} problems:\n{body}",
        hint="fix each line named above, then run `mmship check` on the file",
    )
