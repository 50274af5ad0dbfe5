"""Read YAML with PyYAML while keeping where every key and value sits.

The file is composed into PyYAML's node tree (which carries line numbers), built into
plain Python data with the safe constructor, and walked once to map each path (a tuple
of keys and list indexes, ``("model", "inputs", 0, "shape")``) to its 1-based line and,
for scalars, to the text exactly as written (``1.12`` stays ``"1.12"``; YAML would read
it as a float). Duplicate keys, which PyYAML silently lets the last one win, are reported.

Anchors and aliases (``&name`` / ``*name``, merge keys ``<<: *name``) are refused in every
YAML file mmship reads (deploy config, bundle manifest, ``--set`` values): PyYAML expands
them without bound, so a few hundred bytes of nested aliases make millions of entries (a
"billion laughs"). :class:`StrictSafeLoader` and :func:`safe_load` are the loader for them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from mmship.core.config.issues import ConfigIssue, YamlPath

_TAB_HINT = "indent with spaces, not tabs"
_ALIAS_PROBLEM = "YAML anchors and aliases (&name, *name, <<: *name) are not accepted"
_ALIAS_HINT = (
    "write the values out in full: mmship does not expand anchors and aliases "
    "(a few lines of nested aliases expand to millions of entries)"
)


class StrictSafeLoader(yaml.SafeLoader):
    """PyYAML's safe loader that refuses anchors and aliases where they are written."""

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        """Compose as PyYAML does, after refusing an alias or an anchored node."""
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise yaml.composer.ComposerError(None, None, _ALIAS_PROBLEM, event.start_mark)
        return super().compose_node(parent, index)


def safe_load(text: str) -> Any:
    """``yaml.safe_load`` without anchors and aliases (raises ``yaml.YAMLError`` on them)."""
    loader = StrictSafeLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


@dataclass
class LoadedYaml:
    """Data read from a YAML text, with line numbers and raw scalar texts by path."""

    data: Any
    lines: dict[YamlPath, int] = field(default_factory=dict)
    raw: dict[YamlPath, str] = field(default_factory=dict)
    issues: list[ConfigIssue] = field(default_factory=list)

    def line(self, path: YamlPath) -> int | None:
        """Line of ``path``, or of its nearest ancestor that is in the file."""
        probe = tuple(path)
        while probe:
            if probe in self.lines:
                return self.lines[probe]
            probe = probe[:-1]
        return self.lines.get((), None)


class YamlSyntaxError(Exception):
    """The text is not YAML; carries the issue to report."""

    def __init__(self, issue: ConfigIssue) -> None:
        super().__init__(issue.text())
        self.issue = issue


def _syntax_issue(exc: yaml.YAMLError) -> ConfigIssue:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    line = mark.line + 1 if mark is not None else None
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None)
    column = f" at column {mark.column + 1}" if mark is not None else ""
    message = f"YAML syntax error{column}: {problem}" + (f" ({context})" if context else "")
    hint = "fix the YAML at that line: a `key: value` needs a space after the colon, lists start with `- `"
    if problem == _ALIAS_PROBLEM:
        message, hint = f"{problem}{column}", _ALIAS_HINT
    elif "\\t" in str(problem) or "tab" in str(problem).lower():
        hint = _TAB_HINT
    elif "mapping values are not allowed" in str(problem):
        hint = "a value containing ': ' must be quoted, and nested keys must be indented under their section"
    return ConfigIssue(path=(), line=line, message=message, hint=hint)


def _walk(node: yaml.Node, path: YamlPath, result: LoadedYaml) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key: Any = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node.value)
            line = key_node.start_mark.line + 1
            if key in seen:
                result.issues.append(
                    ConfigIssue(
                        path=(*path, key),
                        line=line,
                        message=f"duplicate key (first at line {seen[key]}); YAML would silently keep only this one",
                        hint="remove one of the two",
                    )
                )
            seen.setdefault(key, line)
            child = (*path, key)
            result.lines[child] = line
            _walk(value_node, child, result)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            child = (*path, index)
            result.lines[child] = item.start_mark.line + 1
            _walk(item, child, result)
    elif isinstance(node, yaml.ScalarNode) and path and not node.style:
        result.raw[path] = node.value  # plain scalars only: quoted ones are strings already


def load_yaml(text: str) -> LoadedYaml:
    """Parse ``text`` (one YAML document) into data plus line and raw-text maps.

    An empty document gives ``data=None``. Raises :class:`YamlSyntaxError` for text that
    is not YAML or holds several documents.
    """
    loader = None
    try:
        loader = StrictSafeLoader(text)  # the reader refuses some characters (\x00, \x08) right here
        node = loader.get_single_node()
        if node is None:
            return LoadedYaml(data=None)
        data = loader.construct_document(node)  # also resolves merge keys in the tree
    except yaml.YAMLError as exc:
        if isinstance(exc, yaml.composer.ComposerError) and "single document" in str(exc):
            mark = exc.problem_mark
            raise YamlSyntaxError(
                ConfigIssue(
                    path=(),
                    line=mark.line + 1 if mark else None,
                    message="the file holds more than one YAML document (a second `---`)",
                    hint="keep one document: remove the `---` line and what follows, or merge them",
                )
            ) from None
        raise YamlSyntaxError(_syntax_issue(exc)) from None
    finally:
        if loader is not None:
            loader.dispose()
    result = LoadedYaml(data=data)
    result.lines[()] = node.start_mark.line + 1
    _walk(node, (), result)
    return result
