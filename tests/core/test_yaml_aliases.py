"""YAML anchors and aliases are refused in every YAML mmship reads: PyYAML expands them
without bound, so a few hundred bytes of nested aliases ("billion laughs") make millions of
entries. The inputs are built the way an attacker would: each line aliases the one above
ten times."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mmship.core.bundle import MANIFEST, Bundle
from mmship.core.config import validate_text
from mmship.core.errors import BundleError
from mmship.plugins.commands.target_settings import parse_sets


def laughs(levels: int, key: str = "a") -> str:
    """``levels`` lines, each a list of ten aliases of the line above: 10**levels leaves."""
    lines = [f"{key}0: &{key}0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, levels):
        lines.append(f"{key}{i}: &{key}{i} [" + ", ".join([f"*{key}{i - 1}"] * 10) + "]")
    return "\n".join(lines) + "\n"


def test_a_small_alias_bomb_in_a_deploy_config_is_refused_at_its_line():
    text = "model: {name: m}\n" + laughs(5)  # 10**5 leaves from ~290 bytes
    assert len(text) < 400
    result = validate_text(text)
    assert not result.ok and result.loaded is None  # refused before anything was expanded
    issue = result.issues[0]
    assert issue.text().startswith("line 2: YAML anchors and aliases (&name, *name, <<: *name) are not accepted at column 5")
    assert "write the values out in full" in issue.hint


def test_a_merge_key_alias_is_refused_too():
    text = "model: &base {name: m}\ncompute:\n  <<: *base\n"
    result = validate_text(text)
    assert not result.ok and "anchors and aliases" in result.issues[0].text()


def test_a_bundle_manifest_with_aliases_is_refused(graphs_bundle: Path, tmp_path: Path):
    import shutil

    copy = tmp_path / "bundle"
    shutil.copytree(graphs_bundle, copy)
    manifest = (copy / MANIFEST).read_text()
    (copy / MANIFEST).write_text(manifest + "adapter_data:\n" + "".join("  " + line + "\n" for line in laughs(5).splitlines()))
    with pytest.raises(BundleError) as info:
        Bundle.load(copy)
    assert "anchors and aliases" in info.value.message


def test_set_values_do_not_expand_aliases():
    bomb = "[" + ", ".join(["&a [x, x, x, x, x, x, x, x, x, x]", *["*a"] * 9]) + "]"
    values = parse_sets([f"labels={bomb}", "port=8001"])
    assert values["labels"] == bomb  # kept as the text written, not expanded
    assert values["port"] == 8001


def test_plain_yaml_still_loads():
    from mmship.core.config.yaml_loader import safe_load

    assert safe_load("a: [1, 2]\nb: {c: x}\n") == {"a": [1, 2], "b": {"c": "x"}}
    with pytest.raises(yaml.YAMLError):
        safe_load("a: &x 1\nb: *x\n")
