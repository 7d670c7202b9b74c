"""Typed job configs loaded from YAML: unknown keys are errors, types are checked."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

T = TypeVar("T", bound="JobConfig")


class ConfigError(ValueError):
    """A config file is missing, unreadable or does not match its schema."""


class JobConfig(BaseModel):
    """Base of every job config: strict about unknown keys, frozen after loading."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @classmethod
    def from_yaml(cls: type[T], path: str | Path, **overrides: Any) -> T:
        """Load ``path``; ``overrides`` (not None) replace top-level keys."""
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: invalid YAML: {exc}") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: expected a mapping at the top level")
        return cls.from_dict(data, source=str(path), **overrides)

    @classmethod
    def from_dict(
        cls: type[T], data: dict[str, Any], source: str = "<dict>", **overrides: Any
    ) -> T:
        merged = {**data, **{k: v for k, v in overrides.items() if v is not None}}
        try:
            return cls.model_validate(merged)
        except ValidationError as exc:
            lines = [f"{source}: invalid {cls.__name__}:"]
            for err in exc.errors():
                loc = ".".join(str(p) for p in err["loc"]) or "<root>"
                lines.append(f"  {loc}: {err['msg']}")
            raise ConfigError("\n".join(lines)) from None

    @classmethod
    def load(cls: type[T], path: str | Path | None = None, **overrides: Any) -> T:
        """The YAML at ``path`` (or the defaults when None) with ``overrides`` (not None)."""
        if path:
            return cls.from_yaml(path, **overrides)
        return cls.from_dict({}, source="command line", **overrides)

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")
