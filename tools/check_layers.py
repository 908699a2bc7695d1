#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Include-order check: the folders under src/ are layers, and includes only point down.

The order comes from docs/ARCHITECTURE.md, its single source of truth: the first Markdown table after the
comment '<!-- layers: ... -->' has a 'rank' and a 'folder' column (`src/<name>/`). A file may include headers
of its own folder and of folders of strictly lower rank; folders of equal rank are siblings and may not
include each other.

For every .c and .h file under src/ and each of its quoted includes ("x/y.h"; <...> system includes and the
public "hakmem/..." headers are skipped), this checks that
  - the include names a file (searched next to the including file, then in src/ and include/, as the compiler
    does with the library's include path);
  - every file under src/ is in a folder listed in the table;
  - no include points up or sideways (the rank rule above);
  - no two folders include each other (one line per pair, with one include in each direction);
  - no include cycle links files of one folder (reported with the cycle's path).
Exit status 0 with a one-line summary when all holds, 1 with one line per problem otherwise.

Usage: tools/check_layers.py [--root DIR]   (DIR: the tree to check; default: the repository of this script)
Python 3 standard library only.
"""

import argparse
import posixpath
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

DOC = "docs/ARCHITECTURE.md"
MARKER = "<!-- layers:"
SKIPPED_PREFIXES = ("hakmem/",)
SEARCH_DIRS = ("src", "include")

INCLUDE_RE = re.compile(r'\s*#\s*include\s*"([^"]+)"')
SEPARATOR_RE = re.compile(r"\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$")
RANK_RE = re.compile(r"-?\d+")
# Comments, and the string and character literals that may hold comment-like text.
COMMENT_OR_LITERAL_RE = re.compile(r"/\*.*?\*/|//[^\n]*|\"(?:\\.|[^\"\\\n])*\"|'(?:\\.|[^'\\\n])*'", re.S)


class CannotCheck(Exception):
    """The tree cannot be checked: no valid layer table, or no sources."""


@dataclass(frozen=True, order=True)
class Layer:  # ordered by rank, then folder
    rank: int
    folder: str  # "src/tiny/"


@dataclass(frozen=True)
class Include:
    source: str  # the including file, relative to the root: "src/tiny/tiny.h"
    line: int
    name: str  # as written: "heap/heap.h"
    target: Optional[str]  # the file it resolves to, relative to the root; None if there is none

    def where(self) -> str:
        return f"{self.source}:{self.line}"


# ---- the layer table ----------------------------------------------------------------------------------------

def split_row(line: str) -> List[str]:
    text = line.strip()
    if text.startswith("|"):
        text = text[1:]
    if text.endswith("|"):
        text = text[:-1]
    return [cell.strip() for cell in text.split("|")]


def find_table(lines: List[str]) -> Tuple[Optional[Tuple[int, int]], Optional[str]]:
    """Line range [start, end) of the first table after the marker, or an error."""
    marker = next((i for i, line in enumerate(lines) if line.strip().startswith(MARKER)), None)
    if marker is None:
        return None, f"{DOC}: no '{MARKER} ... -->' comment marking the layer table"
    start = next((i for i in range(marker + 1, len(lines)) if lines[i].lstrip().startswith("|")), None)
    if start is None:
        return None, f"{DOC}:{marker + 1}: no table after the layers marker"
    end = start
    while end < len(lines) and lines[end].lstrip().startswith("|"):
        end += 1
    return (start, end), None


def parse_row(root: Path, cells: List[str], columns: Tuple[int, int], where: str):
    """One table row -> (Layer, None) or (None, error)."""
    rank_col, folder_col = columns
    if len(cells) <= max(columns):
        return None, f"{where}: row has {len(cells)} cells, expected a rank and a folder"
    rank, cell = cells[rank_col], cells[folder_col]
    folder = cell.strip("`").strip().rstrip("/") + "/"
    if not RANK_RE.fullmatch(rank):
        return None, f"{where}: rank '{rank}' of {cell} is not an integer"
    if not folder.startswith("src/") or posixpath.normpath(folder) + "/" != folder or folder == "src/":
        return None, f"{where}: '{cell}' is not a folder under src/ (write it as `src/<name>/`)"
    if not (root / folder).is_dir():
        return None, f"{where}: folder {folder} does not exist"
    return Layer(int(rank), folder), None


def parse_table(root: Path, lines: List[str], start: int, end: int) -> Tuple[List[Layer], List[str]]:
    header = [cell.lower() for cell in split_row(lines[start])]
    if "rank" not in header or "folder" not in header:
        return [], [f"{DOC}:{start + 1}: the table after the layers marker has no 'rank' and 'folder' columns"]
    if start + 1 >= end or not SEPARATOR_RE.match(lines[start + 1]):
        return [], [f"{DOC}:{start + 2}: the layer table's header is not followed by a '|---|' row"]
    columns = (header.index("rank"), header.index("folder"))
    layers, errors = [], []
    for i in range(start + 2, end):
        layer, error = parse_row(root, split_row(lines[i]), columns, f"{DOC}:{i + 1}")
        if error:
            errors.append(error)
        elif any(known.folder == layer.folder for known in layers):
            errors.append(f"{DOC}:{i + 1}: folder {layer.folder} is listed twice")
        else:
            layers.append(layer)
    if not layers and not errors:
        errors.append(f"{DOC}:{start + 1}: the layer table has no rows")
    return layers, errors


def read_layers(root: Path) -> Tuple[List[Layer], List[str]]:
    """The layers of the table in docs/ARCHITECTURE.md, and the errors found reading it."""
    doc = root / DOC
    if not doc.is_file():
        return [], [f"{doc}: not found"]
    lines = doc.read_text(encoding="utf-8", errors="replace").splitlines()
    span, error = find_table(lines)
    if error:
        return [], [error]
    return parse_table(root, lines, *span)


def layer_of(path: str, layers: List[Layer]) -> Optional[Layer]:
    """The listed folder holding path (the deepest one, should folders nest)."""
    holding = [layer for layer in layers if path.startswith(layer.folder)]
    return max(holding, key=lambda layer: len(layer.folder), default=None)


def folder_key(path: str, layers: List[Layer]) -> str:
    """The listed folder of path, else its top folder under src/ (or path itself if directly in src/)."""
    layer = layer_of(path, layers)
    if layer:
        return layer.folder
    parts = path.split("/")
    return "/".join(parts[:2]) + "/" if len(parts) > 2 else path


# ---- scanning the sources -----------------------------------------------------------------------------------

def source_files(root: Path) -> List[str]:
    files = (path for path in (root / "src").rglob("*") if path.suffix in (".c", ".h") and path.is_file())
    return sorted(path.relative_to(root).as_posix() for path in files)


def blank_comment(match: re.Match) -> str:
    """A comment becomes a space (keeping its line breaks, for line numbers); literals stay."""
    text = match.group(0)
    return " " + "\n" * text.count("\n") if text.startswith("/") else text


def resolve(root: Path, source: str, name: str) -> Optional[str]:
    """The file a quoted include names: next to the including file, else in src/, else in include/."""
    for base in (posixpath.dirname(source),) + SEARCH_DIRS:
        candidate = posixpath.normpath(posixpath.join(base, name))
        if (root / candidate).is_file():
            return candidate
    return None


def includes_of(root: Path, source: str) -> List[Include]:
    text = (root / source).read_text(encoding="utf-8", errors="replace")
    text = COMMENT_OR_LITERAL_RE.sub(blank_comment, text)
    found = []
    for number, line in enumerate(text.split("\n"), start=1):
        match = INCLUDE_RE.match(line)
        if match and not match.group(1).startswith(SKIPPED_PREFIXES):
            name = match.group(1)
            found.append(Include(source, number, name, resolve(root, source, name)))
    return found


# ---- the checks (each returns one line per problem) ---------------------------------------------------------

def check_listed(files: List[str], layers: List[Layer]) -> List[str]:
    unlisted: Dict[str, List[str]] = {}
    for path in files:
        if layer_of(path, layers) is None:
            unlisted.setdefault(folder_key(path, layers), []).append(path)
    problems = []
    for key, paths in sorted(unlisted.items()):
        more = f" and {len(paths) - 1} more" if len(paths) > 1 else ""
        problems.append(f"{key}: not in a folder of the layer table in {DOC} (holds {paths[0]}{more})")
    return problems


def check_targets(includes: List[Include]) -> List[str]:
    problems = []
    for inc in includes:
        if inc.target is None:
            problems.append(f"{inc.where()}: includes {inc.name}, which is not found "
                            f"(next to the file, in src/ or in include/)")
        elif not inc.target.startswith(tuple(d + "/" for d in SEARCH_DIRS)):
            problems.append(f"{inc.where()}: includes {inc.name}, which is {inc.target}, "
                            f"outside src/ and include/")
    return problems


def layer_edge(inc: Include, layers: List[Layer]) -> Optional[Tuple[Layer, Layer]]:
    """(layer of the includer, layer of the included file) when both are files of listed folders."""
    if inc.target is None or not inc.target.startswith("src/"):
        return None
    source, target = layer_of(inc.source, layers), layer_of(inc.target, layers)
    return (source, target) if source and target else None


def check_ranks(includes: List[Include], layers: List[Layer]) -> List[str]:
    problems = []
    for inc in includes:
        edge = layer_edge(inc, layers)
        if edge is None:
            continue
        source, target = edge
        if source != target and target.rank >= source.rank:
            sibling = ", a sibling" if target.rank == source.rank else ""
            problems.append(f"{inc.where()}: {source.folder} (rank {source.rank}) includes {inc.name} "
                            f"of {target.folder} (rank {target.rank}{sibling})")
    return problems


def check_module_cycles(includes: List[Include], layers: List[Layer]) -> List[str]:
    first: Dict[Tuple[Layer, Layer], Include] = {}  # the first include from one folder into another
    for inc in includes:
        edge = layer_edge(inc, layers)
        if edge and edge[0] != edge[1]:
            first.setdefault(edge, inc)
    problems = []
    for (low, high), up in sorted(first.items(), key=lambda item: item[0]):
        down = first.get((high, low))
        if down and low < high:
            problems.append(f"module cycle: {low.folder} (rank {low.rank}) <-> {high.folder} (rank {high.rank}): "
                            f"{up.where()} includes {up.name}; {down.where()} includes {down.name}")
    return problems


def check_file_cycles(includes: List[Include], layers: List[Layer]) -> List[str]:
    """Depth-first search over the includes between files of one folder; every back edge closes a cycle."""
    graph: Dict[str, List[Include]] = {}
    for inc in includes:
        if inc.target and folder_key(inc.source, layers) == folder_key(inc.target, layers):
            graph.setdefault(inc.source, []).append(inc)
    problems: List[str] = []
    state: Dict[str, str] = {}  # "open" while on the search path, "done" after

    def visit(path: str, trail: List[Include]) -> None:
        state[path] = "open"
        for inc in graph.get(path, []):
            if state.get(inc.target) == "open":
                problems.append(describe_cycle(trail + [inc], layers))
            elif inc.target not in state:
                visit(inc.target, trail + [inc])
        state[path] = "done"

    for path in sorted(graph):
        if path not in state:
            visit(path, [])
    return problems


def describe_cycle(trail: List[Include], layers: List[Layer]) -> str:
    """The cycle closed by the last include of trail, as 'a.h:3 -> b.h:5 -> a.h'."""
    closing = trail[-1]
    start = next(i for i, inc in enumerate(trail) if inc.source == closing.target)
    steps = " -> ".join(inc.where() for inc in trail[start:])
    return f"{trail[start].where()}: include cycle in {folder_key(closing.target, layers)}: {steps} -> {closing.target}"


# ---- main ---------------------------------------------------------------------------------------------------

def check(root: Path) -> Tuple[List[str], str]:
    """(problems, summary) for the tree at root; raises CannotCheck when it cannot be checked."""
    layers, errors = read_layers(root)
    if errors:
        raise CannotCheck("\n".join(errors + [f"layers: no valid layer table in {DOC}; nothing checked"]))
    files = source_files(root)
    if not files:
        raise CannotCheck(f"layers: no .c or .h files under {root / 'src'}")
    includes = [inc for path in files for inc in includes_of(root, path)]
    problems = (check_listed(files, layers) + check_targets(includes) + check_ranks(includes, layers)
                + check_module_cycles(includes, layers) + check_file_cycles(includes, layers))
    summary = f"layers: {len(files)} files, {len(includes)} includes, {len(problems)} violations"
    return problems, summary


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Check that includes under src/ follow the layer order "
                                                 f"of {DOC}.")
    parser.add_argument("--root", default=str(Path(__file__).resolve().parent.parent),
                        help="the tree to check (default: the repository holding this script)")
    root = Path(parser.parse_args(argv).root).resolve()
    try:
        problems, summary = check(root)
    except CannotCheck as error:
        print(error, file=sys.stderr)
        return 1
    for problem in problems:
        print(problem)
    print(summary + (f" (layer order: {DOC})" if problems else ""))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
