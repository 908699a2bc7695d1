#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Self-test of tools/check_layers.py: runs it on small fake trees built in a temporary directory.

Run: python3 tools/test_check_layers.py   (CTest: layers_selftest). Python 3 standard library only.
"""

import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent / "check_layers.py"
MARKER = "<!-- layers: read by tools/check_layers.py; a file may include its own folder and folders of lower rank -->"
HEADER = "| rank | folder | job |\n|---:|---|---|\n"
# The fake tree's layers: low at the bottom, mid and side siblings above it, top above both.
ROWS = [("0", "src/low/"), ("1", "src/mid/"), ("1", "src/side/"), ("2", "src/top/")]


def table(rows=ROWS):
    return HEADER + "".join(f"| {rank} | `{folder}` | a job |\n" for rank, folder in rows)


def doc(body=None):
    body = MARKER + "\n" + table() if body is None else body
    return f"# Architecture\n\nSome text.\n\n## Layers\n{body}\nThe rule in one sentence.\n\n## Next\nMore.\n"


# A tree that follows the rules, and exercises what must be accepted or skipped.
CLEAN = {
    "include/hakmem/hakmem.h": "int hak(void);\n",
    "src/low/a.h": '#pragma once\n#include <stdio.h>\n#include "hakmem/hakmem.h"\n/* was:\n#include "top/t.h"\n*/\n',
    "src/low/a.c": '#include "low/a.h"\nconst char *s = "/*";\n#include "a.h"\n// #include "mid/m.h" */\n',
    "src/mid/m.h": '#pragma once\n  #  include "low/a.h"\n',
    "src/mid/m.c": '#include "mid/m.h"\n#include "low/a.h"\n',
    "src/side/s.h": '#pragma once\n#include "low/a.h"\n',
    "src/top/t.c": '#include "mid/m.h"\n#include "side/s.h"\n#include "top/sub/deep.h"\n',
    "src/top/sub/deep.h": '#include "../../low/a.h"\n#include "low/a.h"\n',
}
CLEAN_FILES, CLEAN_INCLUDES = 7, 11  # .c/.h files under src/; quoted includes other than hakmem/


class CheckLayersTest(unittest.TestCase):
    def setUp(self):
        tmp = tempfile.TemporaryDirectory(prefix="check_layers_")
        self.addCleanup(tmp.cleanup)
        self.root = Path(tmp.name)

    def build(self, files=None, doc_text=None):
        """Writes the doc and files (path -> text; None deletes a file of CLEAN) into the fake tree."""
        merged = dict(CLEAN)
        merged.update(files or {})
        merged["docs/ARCHITECTURE.md"] = doc() if doc_text is None else doc_text
        for path, text in merged.items():
            if text is not None:
                (self.root / path).parent.mkdir(parents=True, exist_ok=True)
                (self.root / path).write_text(text)

    def run_check(self):
        result = subprocess.run([sys.executable, str(SCRIPT), "--root", str(self.root)],
                                capture_output=True, text=True, timeout=60)
        return result.returncode, result.stdout + result.stderr

    def assert_fails_with(self, *expected):
        code, output = self.run_check()
        self.assertEqual(code, 1, output)
        for line in expected:
            self.assertIn(line, output.splitlines(), output)
        return output

    def test_clean_tree_passes(self):
        self.build()
        code, output = self.run_check()
        self.assertEqual(code, 0, output)
        self.assertEqual(output, f"layers: {CLEAN_FILES} files, {CLEAN_INCLUDES} includes, 0 violations\n")

    def test_upward_include_fails_naming_file_and_line(self):
        self.build({"src/low/a.h": '#pragma once\n#include <stdio.h>\n#include "mid/m.h"\n'})
        self.assert_fails_with("src/low/a.h:3: src/low/ (rank 0) includes mid/m.h of src/mid/ (rank 1)",
                               "module cycle: src/low/ (rank 0) <-> src/mid/ (rank 1): "
                               "src/low/a.h:3 includes mid/m.h; src/mid/m.c:2 includes low/a.h")

    def test_upward_include_through_relative_path_fails(self):
        self.build({"src/mid/m.c": '#include "mid/m.h"\n#include "../top/sub/deep.h"\n'})
        self.assert_fails_with("src/mid/m.c:2: src/mid/ (rank 1) includes ../top/sub/deep.h of src/top/ (rank 2)")

    def test_siblings_including_each_other_fail_with_cycle_line(self):
        self.build({"src/mid/m.h": '#pragma once\n#include "side/s.h"\n',
                    "src/side/s.c": '#include "mid/m.h"\n'})
        self.assert_fails_with(
            "src/mid/m.h:2: src/mid/ (rank 1) includes side/s.h of src/side/ (rank 1, a sibling)",
            "src/side/s.c:1: src/side/ (rank 1) includes mid/m.h of src/mid/ (rank 1, a sibling)",
            "module cycle: src/mid/ (rank 1) <-> src/side/ (rank 1): "
            "src/mid/m.h:2 includes side/s.h; src/side/s.c:1 includes mid/m.h")

    def test_missing_header_fails(self):
        self.build({"src/mid/m.c": '#include "mid/m.h"\n#include "mid/gone.h"\n'})
        self.assert_fails_with("src/mid/m.c:2: includes mid/gone.h, which is not found "
                               "(next to the file, in src/ or in include/)")

    def test_folder_absent_from_table_fails(self):
        self.build({"src/extra/x.h": '#include "low/a.h"\n', "src/extra/y.c": "int y;\n"})
        self.assert_fails_with("src/extra/: not in a folder of the layer table in docs/ARCHITECTURE.md "
                               "(holds src/extra/x.h and 1 more)")

    def test_file_cycle_within_folder_fails(self):
        self.build({"src/mid/b.h": '#pragma once\n#include "mid/c.h"\n',
                    "src/mid/c.h": '#pragma once\n#include "low/a.h"\n#include "b.h"\n'})
        self.assert_fails_with("src/mid/b.h:2: include cycle in src/mid/: "
                               "src/mid/b.h:2 -> src/mid/c.h:3 -> src/mid/b.h")

    def test_malformed_table_fails(self):
        good = table()
        cases = {
            "no marker": (good, "docs/ARCHITECTURE.md: no '<!-- layers: ... -->' comment marking the layer table"),
            "no table": (MARKER + "\nNo table here.\n", "no table after the layers marker"),
            "rank not an integer": (MARKER + "\n" + good.replace("| 1 | `src/side/`", "| one | `src/side/`"),
                                    "docs/ARCHITECTURE.md:11: rank 'one' of `src/side/` is not an integer"),
            "folder missing": (MARKER + "\n" + table(ROWS + [("3", "src/gone/")]),
                               "docs/ARCHITECTURE.md:13: folder src/gone/ does not exist"),
            "no rank column": (MARKER + "\n" + good.replace("| rank |", "| level |"),
                               "the table after the layers marker has no 'rank' and 'folder' columns"),
            "no separator": (MARKER + "\n" + good.replace("|---:|---|---|\n", ""),
                             "the layer table's header is not followed by a '|---|' row"),
        }
        for name, (body, message) in cases.items():
            with self.subTest(name):
                self.build(doc_text=doc(body))
                code, output = self.run_check()
                self.assertEqual(code, 1, output)
                self.assertIn(message, output)
                self.assertIn("nothing checked", output)


if __name__ == "__main__":
    unittest.main()
