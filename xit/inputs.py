"""Reading what a user hands xit (specs, task descriptors, plans) without ever crashing on it.

Every problem is one `XitError` line naming the file: a directory given as a file, a symlink loop,
bytes that are not UTF-8 text (a binary file), more than `MAX_INPUT_BYTES` (``/dev/zero`` would
otherwise be read until memory runs out), YAML nested too deeply, and a key given twice in one
YAML mapping (an error, not "the last one wins").
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from xit.errors import XitError

MAX_INPUT_BYTES = 4 << 20  # a spec or descriptor is a few KiB; a plan of a big sweep a few hundred


def read_text(path: Path, what: str, max_bytes: int = MAX_INPUT_BYTES) -> str:
    """The text of a small input file, read at most `max_bytes` (+1) bytes deep."""
    path = Path(path)
    try:
        if path.is_dir():
            raise XitError(f"{path}: is a directory, not a {what} file")
        with open(path, "rb") as f:
            data = f.read(max_bytes + 1)
    except FileNotFoundError:
        raise XitError(f"{path}: no such {what} file") from None
    except OSError as e:  # a symlink loop, no permission, a device that cannot be read
        raise XitError(f"{path}: cannot read the {what} file ({e.strerror or type(e).__name__})") from None
    if len(data) > max_bytes:
        raise XitError(f"{path}: more than {max_bytes >> 20} MiB: not a {what} file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise XitError(f"{path}: not UTF-8 text (byte {e.start}): not a {what} file") from None
    if "\x00" in text:
        raise XitError(f"{path}: binary data (a NUL byte at character {text.index(chr(0))}): not a {what} file")
    return text


class _UniqueKeyLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses a key given twice in one mapping (merge keys `<<` may still be overridden)."""


def _mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(key_node, yaml.ScalarNode):
            continue
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"key {key!r} given twice (first on line {seen[key] + 1})", key_node.start_mark)
        seen[key] = key_node.start_mark.line
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


@contextmanager
def _yaml_errors(where: str | Path) -> Iterator[None]:
    """A YAML syntax error, a duplicate key or deep nesting as one XitError naming `where`."""
    try:
        yield
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(e, "problem", None) or str(e)
        raise XitError(f"{where}: invalid YAML{at}: {' '.join(str(problem).split())}") from None
    except RecursionError:
        raise XitError(f"{where}: invalid YAML: nested too deeply") from None


def parse_yaml(text: str, where: str | Path) -> Any:
    """YAML → Python (one document), with a duplicate key, bad syntax or deep nesting as one XitError."""
    with _yaml_errors(where):
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass


def parse_yaml_documents(text: str, where: str | Path) -> list[Any]:
    """Every document of a YAML stream (`---` separated; empty ones left out), errors as in parse_yaml."""
    with _yaml_errors(where):
        return [d for d in yaml.load_all(text, Loader=_UniqueKeyLoader) if d is not None]  # noqa: S506


def load_yaml(path: Path, what: str) -> Any:
    return parse_yaml(read_text(path, what), path)


def url_problem(value: str) -> str | None:
    """Why `value` is not an http(s) URL of a server (None when it is one): http://host[:port][/path]."""
    from urllib.parse import urlsplit

    if any(c.isspace() for c in value):
        return "has spaces"
    try:
        u = urlsplit(value)
        u.port  # noqa: B018 - raises on a port that is no number or out of range
    except ValueError as e:
        return str(e)
    if u.scheme not in ("http", "https") or not u.hostname:
        return "not an http(s) URL (give http://host:9091)"
    return None


def check_pushgateway_env() -> None:
    """$XIT_PUSHGATEWAY, when set, must be a URL: checked before any work (a typo would cost every metric)."""
    import os

    value = os.environ.get("XIT_PUSHGATEWAY")
    if value:
        why = url_problem(value)
        if why is not None:
            raise XitError(f"XIT_PUSHGATEWAY={value!r}: {why}")
