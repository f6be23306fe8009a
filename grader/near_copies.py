"""Finds near-copies: pairs of submissions whose own code (what is not in the reference or template) is the same.

A student's own code is their code cells minus every line that the reference solution or the handed-out
template already contains. Each line is normalised by copydetect's token filter (names become `V`, strings
`S`, comments and whitespace go), with attribute chains folded (`tf.keras.layers.Dense` reads as `Dense`
does), so a renamed variable or a different import spelling does not make a template line "own". The
cells left are put in a canonical order (sorted by their normalised text), so moving cells around changes
nothing, and their normalised text is fingerprinted with copydetect's winnowing (as MOSS does). Lines are
tokenized once, here, rather than again by copydetect: tokenizing is most of the cost.

Pairs are found through an inverted index from fingerprint to submissions rather than copydetect's
all-pairs loop: only submissions that share a fingerprint are ever compared, so a class of 300 costs
about as much as fingerprinting it. A fingerprint that a large part of the class shares is common
knowledge (a popular idiom, a snippet from the lecture) and counts for nobody, as in MOSS.
The result flags pairs for a person to review; it never changes a grade.
"""

from __future__ import annotations

import io
import itertools
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from copydetect import CodeFingerprint, compare_files
from copydetect.utils import filter_code

from grader.execution.notebook import NotebookUnreadable, read_notebook

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
class OwnCode:
    """A student's own code: its lines in the canonical order, and each line's normalised form."""

    lines: tuple[str, ...]
    normalised: tuple[str, ...]

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


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
    """The sources of a notebook's code cells (the first MAX_CODE_CHARS); [] for a file that is not a notebook.

    Read as the grader reads a notebook to run it (`grader.execution.notebook`): no link followed, no pipe
    waited on, nothing over MAX_NOTEBOOK_BYTES read, and memory bounded while parsing.
    """
    try:
        nb = read_notebook(path, MAX_NOTEBOOK_BYTES)
    except NotebookUnreadable:
        return []
    sources = []
    budget = MAX_CODE_CHARS
    for cell in nb.cells:
        if cell.cell_type == "code" and budget > 0:
            sources.append(cell.source[:budget])
            budget -= len(cell.source)
    return sources


def baseline(notebooks: Iterable[list[str]]) -> Baseline:
    """The baseline of the given notebooks' code cells (the reference solution and the template)."""
    normalise = _Normaliser()
    cells = [[normalise(line) for line in cell.splitlines()] for notebook in notebooks for cell in notebook]
    # Every k-gram (window 1) of every cell, as copydetect builds boilerplate, so no shared run escapes removal.
    hashes = [h for cell in cells for h in _fingerprint("".join(cell), window=1).hashes]
    return Baseline(frozenset(line for cell in cells for line in cell), np.unique(np.array(hashes, dtype=np.int64)))


def _fingerprint(normalised: str, window: int = GUARANTEE - NOISE + 1, boilerplate: Any = None) -> CodeFingerprint:
    """copydetect's winnowed fingerprint of code this module has normalised already (so filter=False)."""
    return CodeFingerprint("own.py", NOISE, window, boilerplate, False, "python", io.StringIO(normalised))


def own_code(cells: Sequence[str], base: Baseline, normalise: _Normaliser | None = None) -> OwnCode:
    """A student's own code: each cell's lines that the baseline lacks, cells in a canonical order."""
    normalise = normalise or _Normaliser()
    kept: list[tuple[tuple[str, ...], tuple[str, ...]]] = []
    for cell in cells:
        lines = [(normal, line.rstrip()) for line in cell.splitlines() if (normal := normalise(line))]
        own = [(normal, line) for normal, line in lines if normal not in base.lines]
        if own:
            kept.append((tuple(normal for normal, _ in own), tuple(line for _, line in own)))
    kept.sort()
    return OwnCode(
        tuple(line for _, lines in kept for line in lines), tuple(normal for normals, _ in kept for normal in normals)
    )


def class_own_code(sources: Mapping[str, Sequence[str]], base: Baseline) -> dict[str, OwnCode]:
    """Each student's own code, from their code cells; lines the class repeats are normalised once."""
    normalise = _Normaliser()
    return {student: own_code(cells, base, normalise) for student, cells in sources.items()}


def find_near_copies(paths: Mapping[str, Path], base_notebooks: Sequence[Path], threshold: float) -> list[NearCopy]:
    """The near-copies among the students' notebooks (`paths`), measured against the base notebooks' code."""
    base = baseline(code_cells(path) for path in base_notebooks)
    own = class_own_code({student: code_cells(path) for student, path in paths.items()}, base)
    return near_copies(own, base, threshold)


def near_copies(own: Mapping[str, OwnCode], base: Baseline, threshold: float) -> list[NearCopy]:
    """Every pair whose shared own code reaches `threshold` of the smaller side's, highest score first."""
    students = list(own)
    documents = {s: "".join(own[s].normalised) for s in students}
    prints = {s: _fingerprint(documents[s], boilerplate=base.fingerprints) for s in students}
    frequency = Counter(h for fp in prints.values() for h in fp.hashes)
    limit = max(COMMON_MIN_STUDENTS, int(COMMON_SHARE * len(students)))
    common = {h for h, n in frequency.items() if n > limit}
    if common:
        ignored = np.concatenate([base.fingerprints, np.array(sorted(common), dtype=np.int64)])
        for s in students:
            if prints[s].hashes & common:
                prints[s] = _fingerprint(documents[s], boilerplate=ignored)
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


def _compare(a: str, b: str, own: Mapping[str, OwnCode], prints: Mapping[str, CodeFingerprint]) -> NearCopy | None:
    overlap, similarities, slices = compare_files(prints[a], prints[b])
    if overlap < MIN_SHARED:
        return None
    score = round(min(1.0, float(max(similarities))), 3)
    first, second = sorted((a, b))
    first_slices, second_slices = slices if first == a else slices[::-1]
    return NearCopy(first, second, score, segments(own[first], first_slices), segments(own[second], second_slices))


def segments(code: OwnCode, slices: Any) -> tuple[Segment, ...]:
    """`code` cut into runs of shared and unshared lines, from copydetect's slices of its normalised text (a
    2xN array of starts and ends). A line is shared when most of its normalised text is in a slice."""
    bounds = np.cumsum([0, *(len(n) for n in code.normalised)])
    covered = np.zeros(int(bounds[-1]), dtype=bool)
    for start, end in zip(np.asarray(slices[0]).tolist(), np.asarray(slices[1]).tolist(), strict=True):
        covered[max(0, int(start)) : max(0, int(end))] = True
    shared = [bool(covered[a:b].mean() >= 0.5) for a, b in itertools.pairwise(bounds.tolist())]
    pieces: list[Segment] = []
    for flag, run in itertools.groupby(zip(code.lines, shared, strict=True), key=lambda pair: pair[1]):
        pieces.append(Segment("\n".join(line for line, _ in run), flag))
    # Lines join with newlines; the newline between two runs goes with the first.
    return tuple(Segment(p.text + "\n", p.shared) for p in pieces[:-1]) + tuple(pieces[-1:])


def similar_to(pairs: Iterable[NearCopy]) -> dict[str, list[tuple[str, float]]]:
    """For each flagged student, the others they were paired with and the pair's score, highest first."""
    found: defaultdict[str, list[tuple[str, float]]] = defaultdict(list)
    for pair in pairs:
        found[pair.first].append((pair.second, pair.score))
        found[pair.second].append((pair.first, pair.score))
    return {s: sorted(others, key=lambda o: (-o[1], o[0])) for s, others in found.items()}
