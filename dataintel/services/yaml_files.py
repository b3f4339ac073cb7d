"""Declarations read from YAML: a built-in file in the package plus an operator's file.

The quality checks, the reconciliation comparisons, the analytics catalog and the feature
views are all read this way: parsed with ``yaml.safe_load``, validated by a pydantic model,
and refused with one line that names the file and every problem's place in it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

Model = TypeVar("Model", bound=BaseModel)
Entry = TypeVar("Entry")


def parse_yaml(
    text: str, origin: str, model: type[Model], error: type[Exception], described: str
) -> Model:
    """``text`` as ``model``; ``error`` saying why not (``origin`` is not ``described``: …)."""
    try:
        loaded: Any = yaml.safe_load(text)
        return model.model_validate(loaded if loaded is not None else {})
    except yaml.YAMLError as problem:
        raise error(f"{origin} is not valid YAML: {problem}") from None
    except ValidationError as invalid:
        # Each problem names its entry (measures.0.description), not pydantic's banner.
        problems = "; ".join(
            f"{'.'.join(str(part) for part in found['loc'])}: {found['msg']}"
            for found in invalid.errors()
        )
        raise error(f"{origin} is not {described}: {problems}.") from None


def declaration_files(
    package: str, built_in: str, path: Path | None, error: type[Exception], named: str
) -> list[tuple[str, str]]:
    """(text, origin) of the package's built-in file and, if given, the file at ``path``."""
    files = [(resources.files(package).joinpath(built_in).read_text("utf-8"), built_in)]
    if path is not None:
        try:
            files.append((path.read_text("utf-8"), str(path)))
        except OSError as problem:
            raise error(f"cannot read {named} {path}: {problem}") from None
    return files


def declared_once(
    entries: Iterable[Entry],
    name_of: Callable[[Entry], str],
    error: type[Exception],
    described: str,
) -> Iterator[Entry]:
    """The entries of one file, refusing a name declared twice in it (a later file may
    replace an earlier file's entry; the same file saying it twice is a mistake).

    ``described`` names the entry in the message, e.g. ``"x.yaml: check"``.
    """
    seen: set[str] = set()
    for entry in entries:
        name = name_of(entry)
        if name in seen:
            raise error(f"{described} '{name}' is declared twice.")
        seen.add(name)
        yield entry
