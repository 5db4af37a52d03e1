"""Check and normalize the class labels a conditional model takes: names, indices or arrays of them."""

from __future__ import annotations

from typing import Any

import numpy as np

from vaeport.runtime.errors import InputError


def describe_classes(classes: tuple[str, ...]) -> str:
    """'0 T-shirt/top, 1 Trouser, ...' (every class, with its index)."""
    return ", ".join(f"{i} {name!r}" for i, name in enumerate(classes))


def ambiguous_number(number: int, classes: tuple[str, ...]) -> str | None:
    """Why `number` does not say one class of this model, or None: when the class names are numbers
    and `number` is the index of one class and the name of another (class folders 1..10 are
    indices 0..9)."""
    named = str(number)
    if named in classes and 0 <= number < len(classes) and classes.index(named) != number:
        return (
            f"{number} is the index of class {classes[number]!r} and the name of class index {classes.index(named)}"
        )
    return None


def class_index(value: Any, classes: tuple[str, ...], name: str) -> int:
    """One class given by its name (a string) or its index (an integer) -> the index. An integer
    that is also the name of another class is refused: a class is the same class however it is named."""
    if isinstance(value, (str, np.str_)):
        try:
            return classes.index(str(value))
        except ValueError:
            raise InputError(
                f"expected {name} to be a class of this model ({describe_classes(classes)}), got {str(value)!r}"
            ) from None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise InputError(f"expected {name} to be a class name or index ({describe_classes(classes)}), got {value!r}")
    if not 0 <= int(value) < len(classes):
        raise InputError(
            f"expected {name} to be a class index 0..{len(classes) - 1} ({describe_classes(classes)}), got {int(value)}"
        )
    why = ambiguous_number(int(value), classes)
    if why:
        raise InputError(
            f"expected {name} to name one class, got {int(value)}: {why}; pass the name as a string "
            f"({str(int(value))!r}) or the class's own name for an index ({classes[int(value)]!r})"
        )
    return int(value)


def as_labels(label: Any, n: int, classes: tuple[str, ...] | None, name: str = "label") -> np.ndarray | None:
    """`label` for n images -> int64 [n] class indices (None for an unconditional model).

    A conditional model takes one class (name or index) for all n images, or one per image (a
    list or array of n names or indices); an unconditional one takes none. Anything else is an
    InputError that names the model's classes."""
    if classes is None:
        if label is not None:
            raise InputError(f"expected no {name}: this model is unconditional (it has no classes), got {label!r}")
        return None
    if label is None:
        raise InputError(
            f"expected a {name}: this model is conditional, pass one of its classes ({describe_classes(classes)}) "
            "as a name, an index or an array of them"
        )
    if isinstance(label, np.ndarray) and label.dtype.kind in "iu" and label.ndim == 1:
        if len(label) != n:
            raise InputError(f"expected {name} to hold {n} labels (one per image), got {len(label)}")
        if len(label) and (label.min() < 0 or label.max() >= len(classes)):
            bad = label[(label < 0) | (label >= len(classes))][0]
            raise InputError(
                f"expected {name} to be class indices 0..{len(classes) - 1} ({describe_classes(classes)}), got {bad}"
            )
        return label.astype(np.int64)
    if isinstance(label, (list, tuple, np.ndarray)):
        values = list(np.asarray(label, dtype=object).reshape(-1)) if isinstance(label, np.ndarray) else list(label)
        if isinstance(label, np.ndarray) and label.ndim != 1:
            raise InputError(f"expected {name} to be one label or a 1-D list of {n}, got shape {list(label.shape)}")
        if len(values) != n:
            raise InputError(f"expected {name} to hold {n} labels (one per image), got {len(values)}")
        return np.array([class_index(v, classes, name) for v in values], dtype=np.int64)
    return np.full(n, class_index(label, classes, name), dtype=np.int64)


def resolve_label_option(
    text: str | None, per_class: bool, classes: tuple[str, ...] | None, optional: bool = False
) -> int | None:
    """vae-generate's --label NAME|INDEX (a class name first, then a number) and --per-class,
    checked against the model: a conditional model needs one of them (unless `optional`: a VQ-VAE
    then draws the classes), an unconditional neither."""
    if classes is None:
        if text is not None or per_class:
            option = "--label" if text is not None else "--per-class"
            raise InputError(f"expected no {option}: this model is unconditional (it has no classes)")
        return None
    if text is None:
        if per_class or optional:
            return None
        raise InputError(
            f"expected --label NAME|INDEX or --per-class N: this model is conditional ({describe_classes(classes)})"
        )
    if per_class:
        raise InputError("expected one of --label or --per-class, got both")
    for prefix, by_name in (("name:", True), ("index:", False)):  # says which, where a number could be both
        if text.startswith(prefix):
            value = text[len(prefix) :]
            if by_name:
                return class_index(value, classes, "--label")
            if not value.isdigit() or int(value) >= len(classes):
                raise InputError(
                    f"expected --label index:N with N in 0..{len(classes) - 1} ({describe_classes(classes)}), "
                    f"got {text!r}"
                )
            return int(value)
    number = text.strip().lstrip("-").isdigit()
    if number and ambiguous_number(int(text), classes):
        raise InputError(
            f"expected --label to name one class, got {text}: {ambiguous_number(int(text), classes)}; say "
            f"--label name:{text} or --label index:{text}"
        )
    if text in classes:
        return classes.index(text)
    if number:
        return class_index(int(text), classes, "--label")
    return class_index(text, classes, "--label")
