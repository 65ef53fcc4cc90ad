"""Secret values (from env files and ``*_FILE`` files) and how roled masks them in its output.

Pure: a set of values and one regular expression built from them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

MASK = "********"
# Shorter values are not masked inside free text: masking "1", "on" or "dev" everywhere would
# garble every line while hiding almost nothing (three characters are guessed in seconds).
# An exact value is still masked whatever its length (mask_value, mask_environment).
MIN_LENGTH = 4


@dataclass(frozen=True, slots=True)
class Secrets:
    """The secret values of a run; ``mask`` replaces each one, longest first, by ``********``."""

    values: frozenset[str] = frozenset()
    _pattern: re.Pattern[str] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        fragments = {f for value in self.values for f in _fragments(value) if len(f) >= MIN_LENGTH}
        # Longest first, so a secret that contains another is masked whole.
        ordered = sorted(fragments, key=lambda f: (-len(f), f))
        pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None
        object.__setattr__(self, "_pattern", pattern)

    @classmethod
    def of(cls, values: Iterable[str]) -> Secrets:
        return cls(frozenset(v for v in values if v))

    def __or__(self, other: Secrets) -> Secrets:
        return Secrets(self.values | other.values)

    def __bool__(self) -> bool:
        return bool(self.values)

    def mask(self, text: str) -> str:
        """``text`` with every secret value (of at least MIN_LENGTH characters) masked."""
        if self._pattern is None:
            return text
        return self._pattern.sub(MASK, text)

    def mask_value(self, value: str) -> str:
        """One value of a structured output (a variable, a JSON string): exact secrets of any
        length are masked whole, longer ones inside it as in ``mask``."""
        return MASK if value in self.values else self.mask(value)

    def mask_environment(self, environment: Mapping[str, str]) -> dict[str, str]:
        """An environment to print: names stay, secret values are masked."""
        return {name: self.mask_value(value) for name, value in environment.items()}


def _fragments(value: str) -> list[str]:
    """The forms a value takes in roled's output: as is, line by line (log lines are split), and
    escaped the way a JSON string or a Python repr escapes it."""
    forms = [
        value,
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
        repr(value)[1:-1],
    ]
    if "\n" in value:
        forms.extend(line.strip() for line in value.splitlines())
    return forms
