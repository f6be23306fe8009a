"""Finds near-copies: pairs of submissions whose own code (what is not in the reference or template) is the same.

A student's own code is their code cells minus every line that the reference solution or the handed-out
template already contains. Lines are compared after copydetect's normalisation (names become `V`, strings
`S`, comments and whitespace go) with attribute chains folded (`tf.keras.layers.Dense` reads as `Dense`
does), so a renamed variable or a different import spelling does not make a template line "own". The
cells left are put in a canonical order (sorted by their normalised text), so moving cells around changes
nothing, and fingerprinted with copydetect's winnowing (as MOSS does) over the same normalised tokens.

Pairs are found through an inverted index from fingerprint to submissions rather than copydetect's
all-pairs loop: only submissions that share a fingerprint are ever compared, so a class of 300 costs
about as much as fingerprinting it. A fingerprint that a large part of the class shares is common
knowledge (a popular idiom, a snippet from the lecture) and counts for nobody, as in MOSS.
The result flags pairs for a person to review; it never changes a grade.
"""

from __future__ import annotations

import io
import itertools
import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from copydetect import CodeFingerprint, compare_files
from copydetect.utils import filter_code, get_token_coverage

# Fingerprints are k-grams of the normalised code (k characters, where a name is one character), winnowed
# so that any shared run of GUARANTEE characters is caught. 25 characters is about one line of code.
NOISE = 25
GUARANTEE = 30
# Shared code shorter than this (normalised characters, about three lines) is never a flag on its own:
# two students who both wrote the same one-line fix are not copying.
MIN_SHARED = 75
# A fingerprint found in more than this share of the class (and in more than COMMON_MIN_STUDENTS) is common.
COMMON_SHARE = 0.1
COMMON_MIN_STUDENTS = 10
# Bounds on what is read of one (untrusted) notebook.
MAX_NOTEBOOK_BYTES = 20_000_000
MAX_CODE_CHARS = 100_000
_CHAIN = re.compile(r"V(?:\.V)+")


@dataclass(frozen=True, slots=True)
class Segment:
    """A piece of a student's own code, and whether the other student of the pair has it too."""

    text: str
    shared: bool


@dataclass(frozen=True, slots=True)
class NearCopy:
    """Two submissions whose own code is substantially the same; `score` is the shared share (0..1)."""

    first: str
    second: str
    score: float
    first_code: tuple[Segment, ...]
    second_code: tuple[Segment, ...]


@dataclass(frozen=True, slots=True)
class Baseline:
    """What every student was given or expected to write: the reference and template code."""

    lines: frozenset[str]  # normalised lines
    fingerprints: np.ndarray  # every k-gram hash of that code (copydetect's boilerplate)


class _Normaliser:
    """copydetect's token filter, one line at a time, remembering lines already seen (a class repeats many)."""

    def __init__(self) -> None:
        self.seen: dict[str, str] = {}

    def __call__(self, line: str) -> str:
        found = self.seen.get(line)
        if found is None:
            filtered, _ = filter_code(line, "cell.py", "python")
            found = self.seen[line] = _CHAIN.sub("V", filtered.strip())
        return found


def code_cells(path: Path) -> list[str]:
    """The sources of a notebook's code cells (the first MAX_CODE_CHARS); [] for a file that is not a notebook."""
    try:
        if path.stat().st_size > MAX_NOTEBOOK_BYTES:
            return []
        data = json.loads(path.read_bytes())
    except (OSError, ValueError, RecursionError):
        return []
    if not isinstance(data, dict):
        return []
    if data.get("nbformat") == 3:  # nbformat 3 keeps cells in worksheets and code under "input"
        worksheets = _list(data.get("worksheets"))
        cells = [c for w in worksheets if isinstance(w, dict) for c in _list(w.get("cells"))]
        key = "input"
    else:
        cells, key = _list(data.get("cells")), "source"
    sources = []
    budget = MAX_CODE_CHARS
    for cell in cells:
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = cell.get(key, "")
        if isinstance(source, list):
            source = "".join(part for part in source if isinstance(part, str))
        if isinstance(source, str) and budget > 0:
            sources.append(source[:budget])
            budget -= len(source)
    return sources


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def baseline(notebooks: Iterable[list[str]]) -> Baseline:
    """The baseline of the given notebooks' code cells (the reference solution and the template)."""
    normalise = _Normaliser()
    cells = [cell for notebook in notebooks for cell in notebook]
    lines = frozenset(normalise(line) for cell in cells for line in cell.splitlines())
    # Every k-gram (window 1), as copydetect builds boilerplate, so no shared run escapes removal.
    hashes = [_fingerprint(cell, window=1).hashes for cell in cells]
    return Baseline(lines, np.unique(np.array([h for cell in hashes for h in cell], dtype=np.int64)))


def _fingerprint(code: str, window: int = GUARANTEE - NOISE + 1, boilerplate: Any = None) -> CodeFingerprint:
    return CodeFingerprint("own.py", NOISE, window, boilerplate, True, "python", io.StringIO(code))


def own_code(cells: Sequence[str], base: Baseline, normalise: _Normaliser | None = None) -> str:
    """A student's own code: each cell's lines that the baseline lacks, cells in a canonical order."""
    normalise = normalise or _Normaliser()
    kept: list[tuple[str, str]] = []
    for cell in cells:
        lines = []
        for line in cell.splitlines():
            normal = normalise(line)
            if normal and normal not in base.lines:
                lines.append((normal, line.rstrip()))
        if lines:
            kept.append(("\n".join(normal for normal, _ in lines), "\n".join(line for _, line in lines)))
    return "\n".join(text for _, text in sorted(kept))


def class_own_code(sources: Mapping[str, Sequence[str]], base: Baseline) -> dict[str, str]:
    """Each student's own code, from their code cells; lines the class repeats are normalised once."""
    normalise = _Normaliser()
    return {student: own_code(cells, base, normalise) for student, cells in sources.items()}


def find_near_copies(paths: Mapping[str, Path], base_notebooks: Sequence[Path], threshold: float) -> list[NearCopy]:
    """The near-copies among the students' notebooks (`paths`), measured against the base notebooks' code."""
    base = baseline(code_cells(path) for path in base_notebooks)
    own = class_own_code({student: code_cells(path) for student, path in paths.items()}, base)
    return near_copies(own, base, threshold)


def near_copies(own: Mapping[str, str], base: Baseline, threshold: float) -> list[NearCopy]:
    """Every pair whose shared own code reaches `threshold` of the smaller side's, highest score first."""
    students = list(own)
    prints = {s: _fingerprint(own[s], boilerplate=base.fingerprints) for s in students}
    frequency = Counter(h for fp in prints.values() for h in fp.hashes)
    limit = max(COMMON_MIN_STUDENTS, int(COMMON_SHARE * len(students)))
    common = {h for h, n in frequency.items() if n > limit}
    for fp in prints.values():
        if fp.hashes & common:
            _forget(fp, common)
    # Inverted index: fingerprint -> the students who have it; pairs are counted only where they meet.
    postings: defaultdict[int, list[int]] = defaultdict(list)
    for i, s in enumerate(students):
        for h in prints[s].hashes:
            postings[h].append(i)
    meetings: Counter[tuple[int, int]] = Counter()
    for holders in postings.values():
        if len(holders) > 1:
            meetings.update(itertools.combinations(holders, 2))
    # Each shared fingerprint stands for at least one k-gram; fewer than this cannot reach MIN_SHARED.
    needed = max(1, MIN_SHARED // (GUARANTEE + 1))
    found = []
    for (i, j), count in meetings.items():
        if count < needed:
            continue
        pair = _compare(students[i], students[j], own, prints)
        if pair is not None and pair.score >= threshold:
            found.append(pair)
    return sorted(found, key=lambda p: (-p.score, p.first, p.second))


def _forget(fp: CodeFingerprint, hashes: set[int]) -> None:
    """Drops `hashes` from a fingerprint, as copydetect drops boilerplate (without tokenizing the code again)."""
    fp.hashes = fp.hashes - hashes
    fp.hash_idx = {h: places for h, places in fp.hash_idx.items() if h not in hashes}
    fp.token_coverage = get_token_coverage(fp.hash_idx, fp.k, len(fp.filtered_code))


def _compare(a: str, b: str, own: Mapping[str, str], prints: Mapping[str, CodeFingerprint]) -> NearCopy | None:
    overlap, similarities, slices = compare_files(prints[a], prints[b])
    if overlap < MIN_SHARED:
        return None
    score = round(min(1.0, float(max(similarities))), 3)
    first, second = sorted((a, b))
    first_slices, second_slices = slices if first == a else slices[::-1]
    return NearCopy(first, second, score, segments(own[first], first_slices), segments(own[second], second_slices))


def segments(text: str, slices: Any) -> tuple[Segment, ...]:
    """`text` cut into shared and unshared pieces, from copydetect's slices (a 2xN array of starts and ends)."""
    pieces: list[Segment] = []
    at = 0
    for start, end in sorted(zip(np.asarray(slices[0]).tolist(), np.asarray(slices[1]).tolist(), strict=True)):
        start, end = max(at, min(int(start), len(text))), min(int(end), len(text))
        if start > at:
            pieces.append(Segment(text[at:start], False))
        if end > start:
            pieces.append(Segment(text[start:end], True))
            at = end
    if at < len(text):
        pieces.append(Segment(text[at:], False))
    return tuple(pieces)


def similar_to(pairs: Iterable[NearCopy]) -> dict[str, list[tuple[str, float]]]:
    """For each flagged student, the others they were paired with and the pair's score, highest first."""
    found: defaultdict[str, list[tuple[str, float]]] = defaultdict(list)
    for pair in pairs:
        found[pair.first].append((pair.second, pair.score))
        found[pair.second].append((pair.first, pair.score))
    return {s: sorted(others, key=lambda o: (-o[1], o[0])) for s, others in found.items()}
