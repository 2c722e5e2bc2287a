"""Synonym and abbreviation table: variants → one canonical term, extendable without code.

A table file is plain UTF-8 text, one group a line, tab- or comma-separated; the first item
is the canonical form, the rest are variants; `#` starts a comment:

    マイナンバーカード	マイナカード	マイナ	個人番号カード
    紛失	無くす	失くす	落とす

Variants are replaced in the text before Sudachi splits it (so multi-word variants such as
個人番号カード work), in katakana and hiragana spelling alike, longest first; single words are
also mapped after Sudachi normalisation. A canonical form always maps to itself, which also
protects longer words from shorter variants (マイナポータル is not rewritten by マイナ).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from faq.textfold import fold, to_hiragana, to_katakana

DEFAULT_SYNONYMS_PATH = Path(__file__).parent / "data" / "synonyms.tsv"


def _longest_first(words: Iterable[str]) -> str:
    """A pattern that matches the longest of `words` that begins at a place.

    The words as a trie (私, 私書箱 → 私(?:書箱)?): the regular expression engine tries the
    longer continuation first, so it finds the same match as the words one after another,
    longest first, in about half the time (every text of the FAQ and every question is
    searched).
    """
    trie: dict[str, dict[str, Any]] = {}
    for word in words:
        node = trie
        for letter in word:
            node = node.setdefault(letter, {})
        node[""] = {}  # a word ends here

    def pattern(node: dict[str, Any]) -> str:
        branches = [re.escape(letter) + pattern(child) for letter, child in node.items() if letter]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else f"(?:{'|'.join(branches)})"
        return f"(?:{body})?" if "" in node else body

    return pattern(trie)


def _spellings(text: str) -> set[str]:
    """A form as written, in hiragana and in katakana."""
    folded = fold(text)
    return {folded, to_hiragana(folded), to_katakana(folded)}


@dataclass(frozen=True)
class SynonymGroup:
    canonical: str
    variants: tuple[str, ...]


@dataclass
class SynonymTable:
    groups: list[SynonymGroup] = field(default_factory=list)
    _surface_map: dict[str, str] = field(default_factory=dict, init=False, repr=False)
    _term_map: dict[str, str] = field(default_factory=dict, init=False, repr=False)
    _pattern: re.Pattern[str] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self._compile()

    @classmethod
    def default(cls) -> SynonymTable:
        return cls.from_files([DEFAULT_SYNONYMS_PATH])

    @classmethod
    def from_files(cls, paths: Iterable[Path]) -> SynonymTable:
        groups: list[SynonymGroup] = []
        for path in paths:
            groups.extend(parse_synonym_text(path.read_text(encoding="utf-8-sig")))
        return cls(groups)

    def extended_from_files(self, paths: Iterable[Path]) -> SynonymTable:
        extra = SynonymTable.from_files(paths)
        return SynonymTable([*self.groups, *extra.groups])

    def _compile(self) -> None:
        surface: dict[str, str] = {}
        terms: dict[str, str] = {}
        for group in self.groups:
            canonical = fold(group.canonical)
            for form in (group.canonical, *group.variants):
                for spelling in _spellings(form):
                    # Later groups (staff extensions) win over the defaults.
                    surface[spelling] = canonical
                    terms[to_hiragana(spelling)] = to_hiragana(canonical)
        self._surface_map = surface
        self._term_map = terms
        # Rewriting a form into itself is pointless except as protection of a longer word.
        self._pattern = re.compile(_longest_first(surface)) if surface else None

    def rewrite(self, folded_text: str) -> str:
        """Replace every variant in an already folded text by its canonical form."""
        if self._pattern is None:
            return folded_text
        return self._pattern.sub(lambda m: self._surface_map[m.group(0)], folded_text)

    def located_segments(self, folded_text: str) -> list[tuple[int, str, str | None]]:
        """The text cut at every known form: (where it starts in `folded_text`, text,
        canonical form or None for free text)."""
        if self._pattern is None:
            return [(0, folded_text, None)]
        pieces: list[tuple[int, str, str | None]] = []
        position = 0
        for match in self._pattern.finditer(folded_text):
            if match.start() > position:
                pieces.append((position, folded_text[position : match.start()], None))
            canonical = self._surface_map[match.group(0)]
            pieces.append((match.start(), canonical, canonical))
            position = match.end()
        if position < len(folded_text):
            pieces.append((position, folded_text[position:], None))
        return pieces

    def canonical_term(self, term: str) -> str:
        """Map one normalised (hiragana-folded) term to its canonical form."""
        return self._term_map.get(term, term)

    def __len__(self) -> int:
        return len(self.groups)


def parse_synonym_text(text: str) -> list[SynonymGroup]:
    groups: list[SynonymGroup] = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        items = [item.strip() for item in re.split(r"[\t,、]", line) if item.strip()]
        if not items:
            continue
        groups.append(SynonymGroup(canonical=items[0], variants=tuple(items[1:])))
    return groups
