#!/usr/bin/env python3
"""Runs the code examples of README.md and docs/*.md, so the documentation cannot rot.

    doc_examples.py python   run every ```python block (in a scratch directory, with `import kasm`
                             from PYTHONPATH); blocks that use the local Docker engine need it
    doc_examples.py cpp      compile every ```cpp block against include/ (a block without main()
                             is wrapped in one)
    doc_examples.py python-with-server
                             run the ```python blocks marked, on the line before their fence,
                             <!-- example-run-by: tests/browser/run.sh ... --> (they need a running
                             kasm-server; run.sh sets KASM_URL, KASM_API_KEY, KASM_API_SECRET)
    doc_examples.py shell    every ```sh block is either run here or carries, on the line before
                             its fence, a comment that says why it is not:
                             <!-- example-not-run: the reason -->
                             (the README's quick start is the CI command itself)

Exits 0 when every example passed, 1 otherwise, printing what failed.
"""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[2]
FENCE = re.compile(r"^```([A-Za-z0-9_+-]*)\s*$")
NOT_RUN = re.compile(r"<!--\s*example-not-run:\s*(.+?)\s*-->")
RUN_BY = re.compile(r"<!--\s*example-run-by:\s*(.+?)\s*-->")


def blocks(lang: str):
    """Yields (file, line, code, not_run_reason) for every fenced block of `lang`."""
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        lines = path.read_text().splitlines()
        i = 0
        while i < len(lines):
            m = FENCE.match(lines[i])
            if not m:
                i += 1
                continue
            start, tag = i, m.group(1)
            i += 1
            body = []
            while i < len(lines) and not lines[i].startswith("```"):
                body.append(lines[i])
                i += 1
            i += 1
            if tag == lang:
                prev = lines[start - 1] if start > 0 else ""
                reason = NOT_RUN.search(prev) or RUN_BY.search(prev)
                if reason and reason.re is RUN_BY:
                    reason_text = "run by " + reason.group(1)
                else:
                    reason_text = reason.group(1) if reason else None
                yield path.relative_to(ROOT), start + 1, "\n".join(body) + "\n", reason_text


def run_python_blocks(with_server: bool) -> int:
    """Runs the ```python blocks: without a server, every block not marked; with one (run.sh
    started it and set KASM_URL, KASM_API_KEY, KASM_API_SECRET), the blocks marked example-run-by."""
    if with_server:
        for var in ("KASM_URL", "KASM_API_KEY", "KASM_API_SECRET"):
            if not os.environ.get(var):
                print(f"python-with-server: {var} is not set (tests/browser/run.sh sets it)")
                return 1
    failed = count = 0
    for path, line, code, reason in blocks("python"):
        if with_server != (reason or "").startswith("run by "):
            if not with_server:
                print(f"{path}:{line}: not run ({reason})")
            continue
        count += 1
        with tempfile.TemporaryDirectory(prefix="kasm-doc-") as scratch:
            r = subprocess.run([sys.executable, "-c", code], cwd=scratch, capture_output=True, text=True, timeout=280)
        if r.returncode != 0:
            failed += 1
            print(f"{path}:{line}: FAILED (exit {r.returncode})\n{r.stdout}{r.stderr}")
        else:
            print(f"{path}:{line}: ok\n{r.stdout}")
    print(f"python examples{' with a server' if with_server else ''}: {count - failed} of {count} passed")
    return 1 if failed or count == 0 else 0


def run_cpp(build_dir: str) -> int:
    failed = 0
    count = 0
    cxx = os.environ.get("CXX", "c++")
    for path, line, code, reason in blocks("cpp"):
        if reason:
            print(f"{path}:{line}: not compiled ({reason})")
            continue
        count += 1
        includes = "\n".join(l for l in code.splitlines() if l.startswith("#include"))
        rest = "\n".join(l for l in code.splitlines() if not l.startswith("#include"))
        source = code if "int main(" in code else f"{includes}\nint main() {{\n{rest}\n  return 0;\n}}\n"
        with tempfile.TemporaryDirectory(prefix="kasm-doc-") as scratch:
            src = pathlib.Path(scratch) / "example.cpp"
            src.write_text(source)
            cmd = [cxx, "-std=c++20", "-fsyntax-only", "-Wall", "-Wno-unused-variable", "-I", str(ROOT / "include"),
                   "-I", os.path.join(build_dir, "include"), str(src)]
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
        if r.returncode != 0:
            failed += 1
            print(f"{path}:{line}: FAILED to compile\n{source}\n{r.stderr}")
        else:
            print(f"{path}:{line}: compiles")
    print(f"C++ examples: {count - failed} of {count} compile")
    return 1 if failed or count == 0 else 0


def run_shell() -> int:
    failed = 0
    for path, line, code, reason in blocks("sh"):
        if reason:
            print(f"{path}:{line}: not run ({reason})")
            continue
        with tempfile.TemporaryDirectory(prefix="kasm-doc-") as scratch:
            r = subprocess.run(["bash", "-euo", "pipefail", "-c", code], cwd=ROOT, capture_output=True, text=True,
                               timeout=300, env={**os.environ, "KASM_DOC_SCRATCH": scratch})
        if r.returncode != 0:
            failed += 1
            print(f"{path}:{line}: FAILED (exit {r.returncode})\n{r.stdout}{r.stderr}")
        else:
            print(f"{path}:{line}: ok")
    return 1 if failed else 0


def main() -> int:
    what = sys.argv[1] if len(sys.argv) > 1 else ""
    if what in ("python", "python-with-server"):
        return run_python_blocks(what == "python-with-server")
    if what == "cpp":
        return run_cpp(sys.argv[2] if len(sys.argv) > 2 else str(ROOT / "build"))
    if what == "shell":
        return run_shell()
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main())
