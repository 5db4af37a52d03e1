"""Settings declared once: a dataclass field made with `setting()` carries its help, choices and
minimum, from which its click option (`dataclass_options`), its validation (`check_value`) and
its Python keyword all follow. TrainConfig (train/config.py) and ExportOptions (export/options.py)
are declared this way, so their CLIs and their Python APIs cannot drift apart.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import MISSING, field, fields
from typing import Any

import click
import numpy as np

from vaeport.runtime.errors import InputError


def setting(
    default: Any,
    help: str,
    *,
    choices: tuple[str, ...] | None = None,
    minimum: float | None = None,
    exclusive_minimum: bool = False,
    maximum: float | None = None,
    flag: str | None = None,
    resumable: bool = False,
    path: bool = False,
) -> Any:
    """A settings field with what its CLI option and its validation need.

    flag: the option's name when it is not the field's (`kind` is --model). resumable: may differ
    from the saved configuration when a run is resumed (it does not change what is computed, only
    where or how long). path: the option takes a file system path."""
    metadata = {
        "help": help,
        "choices": choices,
        "minimum": minimum,
        "exclusive_minimum": exclusive_minimum,
        "maximum": maximum,
        "flag": flag,
        "resumable": resumable,
        "path": path,
    }
    return field(default=default, metadata=metadata)


def option_name(f: Any) -> str:
    """--name of a settings field's CLI option."""
    return "--" + (f.metadata.get("flag") or f.name).replace("_", "-")


def check_value(value: Any, f: Any) -> None:
    """One field against its declared type, choices and minimum; InputError naming the option."""
    meta, option = f.metadata, option_name(f)
    if value is None:
        if f.default is None:
            return
        raise InputError(f"expected {option} to be set, got None")
    if meta.get("choices"):
        if value not in meta["choices"]:
            raise InputError(f"expected {option} to be one of {', '.join(meta['choices'])}, got {value!r}")
        return
    base = str(f.type).split("|")[0].strip()  # "str", "int", "float", "bool" or "tuple[int, ...]"
    if base == "bool":
        if not isinstance(value, bool):
            raise InputError(f"expected {option} to be true or false, got {value!r}")
        return
    if base == "str":
        if not isinstance(value, str) or not value:
            raise InputError(f"expected {option} to be a non-empty string, got {value!r}")
        return
    if base != "int" and base != "float":
        return
    is_int = base == "int"
    number_ok = isinstance(value, int) if is_int else isinstance(value, (int, float)) and math.isfinite(value)
    if isinstance(value, bool) or not number_ok:
        raise InputError(f"expected {option} to be {'an integer' if is_int else 'a finite number'}, got {value!r}")
    low, high = meta.get("minimum"), meta.get("maximum")
    if low is not None and (value <= low if meta.get("exclusive_minimum") else value < low):
        raise InputError(f"expected {option} {'>' if meta.get('exclusive_minimum') else '>='} {low:g}, got {value}")
    if high is not None and value > high:
        raise InputError(f"expected {option} <= {high:g}, got {value}")


def check_fields(settings: Any) -> None:
    """Every field of a settings dataclass against its declaration. numpy scalars (np.int64(8),
    np.float32(1e-3)) become the Python numbers they are; an error names the CLI option and the
    Python field (`--latent-dim ... (TrainConfig.latent_dim)`), for the command line and notebooks alike.
    A path option's Path becomes its str."""
    for f in fields(settings):
        value = getattr(settings, f.name)
        if isinstance(value, np.generic) or (f.metadata.get("path") and isinstance(value, os.PathLike)):
            value = value.item() if isinstance(value, np.generic) else os.fspath(value)
            setattr(settings, f.name, value)
        try:
            check_value(value, f)
        except InputError as exc:
            raise InputError(f"{exc} ({type(settings).__name__}.{f.name})") from None


def click_type(f: Any) -> Any:
    meta, base = f.metadata, str(f.type).split("|")[0].strip()
    if meta.get("choices"):
        return click.Choice(list(meta["choices"]))
    low, high = meta.get("minimum"), meta.get("maximum")
    if base == "int":
        return click.IntRange(min=low, max=high) if low is not None or high is not None else int
    if base == "float":
        if low is None and high is None:
            return float
        return click.FloatRange(min=low, max=high, min_open=bool(meta.get("exclusive_minimum")))
    if meta.get("path"):
        return click.Path(path_type=str)
    return str


def dataclass_options(cls: type, skip: tuple[str, ...] = ()) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A decorator adding one click option per field of `cls` (named after it, or its `flag`)."""

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        for f in reversed(fields(cls)):
            if f.name in skip:
                continue
            default = None if f.default is MISSING else f.default
            kwargs: dict[str, Any] = {"help": f.metadata["help"], "default": default}
            kwargs["show_default"] = default is not None
            if str(f.type) == "bool":
                kwargs.update(is_flag=True, show_default=False)
            else:
                kwargs["type"] = click_type(f)
            command = click.option(option_name(f), f.name, **kwargs)(command)
        return command

    return decorate
