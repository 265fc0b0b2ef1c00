"""Profiles and parameter validation for the chapters.

Every notebook has a papermill ``parameters`` cell with ``profile`` and ``seed`` and optional
overrides (``None`` means "the profile's value"). Before any compute, the notebook calls
:func:`resolve`, which fails fast with a message naming the parameter and what is allowed.

Profiles:

- ``smoke``: CPU, minutes; what CI runs, the pipeline check of every build.
- ``cpu``: the CIFAR chapters at a scale that can test the sources' directional claims on a
  CPU (about an hour per chapter on two cores); recorded and committed.
- ``gpu``: one GPU, minutes per chapter.
- ``paper``: the sources' exact settings.

The order is the order of size: a chapter shows the largest profile recorded
(:data:`PROFILES` ``[-1]`` is the largest).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

PROFILES = ("smoke", "cpu", "gpu", "paper")


@dataclass(frozen=True)
class Setting:
    """One chapter parameter: its type, its value in each profile, and the allowed range.

    ``cpu``: the value of the ``cpu`` profile; ``None`` takes the ``paper`` value — right for
    the toy chapters, whose paper sizes run on a CPU; every CIFAR chapter gives its own.
    """

    type: type
    smoke: Any
    gpu: Any
    paper: Any
    min: float | None = None
    max: float | None = None
    choices: tuple | None = None
    doc: str = ""
    cpu: Any = None

    def value(self, profile: str):
        if profile == "cpu" and self.cpu is None:
            return self.paper
        return getattr(self, profile)


class Config:
    """The resolved parameters of one chapter run (read-only attributes)."""

    def __init__(self, values: dict):
        object.__setattr__(self, "_values", MappingProxyType(dict(values)))

    def __getattr__(self, name):
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(
                f"no parameter {name!r}; known: {', '.join(self._values)}"
            ) from None

    def __setattr__(self, name, value):
        raise AttributeError("a resolved Config is read-only; pass overrides to resolve()")

    def as_dict(self) -> dict:
        """Plain JSON-able dict (tuples become lists), as recorded in provenance."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self._values.items()}

    def __repr__(self):
        inner = ", ".join(f"{k}={v!r}" for k, v in self._values.items())
        return f"Config({inner})"

    def _repr_markdown_(self):
        rows = "\n".join(f"| `{k}` | `{v!r}` |" for k, v in self._values.items())
        return f"| parameter | value |\n|---|---|\n{rows}"


def _type_name(t) -> str:
    return getattr(t, "__name__", str(t))


def check_value(name: str, value, setting: Setting):
    """Check one value against its Setting; return it (ints widened to float where needed)."""
    t = setting.type
    ok_type = isinstance(value, t) and not (t in (int, float) and isinstance(value, bool))
    if t is float and isinstance(value, int) and not isinstance(value, bool):
        value, ok_type = float(value), True
    if t is tuple and isinstance(value, list):
        value, ok_type = tuple(value), True
    if not ok_type:
        raise ValueError(
            f"parameter {name!r} must be of type {_type_name(t)}, got {value!r} "
            f"({type(value).__name__}). {setting.doc}".strip()
        )
    if setting.choices is not None and value not in setting.choices:
        allowed = ", ".join(repr(c) for c in setting.choices)
        raise ValueError(f"parameter {name!r} = {value!r} is not allowed; choose one of {allowed}")
    items = value if t is tuple else (value,)
    for item in items:
        if not isinstance(item, (int, float)) or isinstance(item, bool):
            continue
        if setting.min is not None and item < setting.min:
            raise ValueError(
                f"parameter {name!r} = {value!r} is out of range: must be ≥ {setting.min}"
            )
        if setting.max is not None and item > setting.max:
            raise ValueError(
                f"parameter {name!r} = {value!r} is out of range: must be ≤ {setting.max}"
            )
    return value


def resolve(settings: dict[str, Setting], *, profile: str, seed: int, **overrides) -> Config:
    """Resolve a chapter's parameters for ``profile``: profile defaults, then non-None overrides.

    Raises ``ValueError`` naming the parameter and the allowed values for an unknown profile, an
    unknown parameter, a wrong type or an out-of-range value.
    """
    if profile not in PROFILES:
        raise ValueError(
            f"parameter 'profile' = {profile!r} is not a profile; choose one of "
            f"{', '.join(PROFILES)} (e.g. papermill ... -p profile smoke)"
        )
    check_value("seed", seed, Setting(int, 0, 0, 0, min=0, doc="The seed is an integer ≥ 0."))
    unknown = sorted(set(overrides) - set(settings))
    if unknown:
        raise ValueError(
            f"unknown parameter(s) {', '.join(map(repr, unknown))}; this chapter takes "
            f"{', '.join(['profile', 'seed', *settings])}"
        )
    values: dict[str, Any] = {"profile": profile, "seed": seed}
    for name, setting in settings.items():
        given = overrides.get(name)
        value = setting.value(profile) if given is None else given
        values[name] = check_value(name, value, setting)
    return Config(values)


def resolve_notebook(settings: dict[str, Setting], profile: str, params: dict) -> Config:
    """:func:`resolve` as a chapter's notebook does it from papermill's ``params`` (its
    ``parameters`` cell: ``seed`` 0 and every setting ``None`` unless given; other names, such
    as parameters meant for other chapters, are ignored like papermill's injected globals), so
    that code outside the notebook (a cluster job of one of its runs) resolves the same
    configuration."""
    return resolve(settings, profile=profile, seed=params.get("seed", 0),
                   **{k: params[k] for k in settings if k in params})
