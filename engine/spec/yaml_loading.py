"""Reading a sweep file strictly: YAML with duplicate keys refused, and names that become path
components checked for collisions and length before anything is written."""

from __future__ import annotations

from typing import Any

import yaml

from engine.storage.store import slug

MAX_NAME_CHARS = 120
"""Longest dataset, method or sweep name: its folder is one path component (filesystems allow
255 bytes) and Ray Tune's trial folder names repeat parts of it."""


class DuplicateKeyError(yaml.YAMLError):
    """A mapping that names the same key twice (PyYAML keeps the last one silently)."""

    def __init__(self, key: str, line: int, first: int) -> None:
        super().__init__(f"duplicate key {key!r} at line {line}")
        self.key, self.line, self.first = key, line, first


class UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a mapping with a repeated key, at any depth."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # '<<: *anchor', merged by SafeLoader
                continue
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                if key in seen:
                    raise DuplicateKeyError(str(key), line, seen[key])
            except TypeError:  # an unhashable key: SafeLoader reports it itself
                break
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def folder_name_problem(names: list[str], kind: str) -> str:
    """'' unless two ``names`` share a folder after ``slug`` or one is too long for a folder."""
    for name in names:
        if len(name) > MAX_NAME_CHARS or len(slug(name).encode()) > MAX_NAME_CHARS:
            return (f"{kind} name {name[:40]!r}... is {len(name)} characters; at most "
                    f"{MAX_NAME_CHARS} (it names a folder)")
    by_folder: dict[str, str] = {}
    for name in names:
        if slug(name) in {".", ".."}:
            return f"{kind} name {name!r} is not a folder name; use letters or digits"
        # case-folded: on macOS, Windows and some mounts 'Wine' and 'wine' are one folder
        other = by_folder.setdefault(slug(name).casefold(), name)
        if other != name:
            return (f"{kind} names {other!r} and {name!r} share the folder {slug(name)!r}; "
                    "rename one")
    return ""
