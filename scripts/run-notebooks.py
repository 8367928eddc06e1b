#!/usr/bin/env python3
"""Executes the notebooks in notebooks/ headless with nbclient and fails on the first error.

Usage: scripts/run-notebooks.py [OUT_DIR]
The notebooks read their inputs from environment variables (see each notebook's first cell).
Executed copies (with outputs) go to OUT_DIR when given; the files in notebooks/ are never
rewritten, so the repository keeps them without outputs.
"""
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT_S = 300


def main() -> int:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else None
    books = sorted((ROOT / "notebooks").glob("*.ipynb"))
    if not books:
        print("no notebooks found", file=sys.stderr)
        return 1
    for path in books:
        nb = nbformat.read(path, as_version=4)
        if any(c.get("outputs") for c in nb.cells if c.cell_type == "code"):
            print(f"{path.name}: has outputs committed; strip them (python3 notebooks/make_notebooks.py)", file=sys.stderr)
            return 1
        client = NotebookClient(nb, timeout=TIMEOUT_S, kernel_name="python3",
                                resources={"metadata": {"path": str(ROOT / "notebooks")}})
        client.execute()
        cells = sum(1 for c in nb.cells if c.cell_type == "code")
        print(f"{path.name}: {cells} code cells executed")
        if out:
            out.mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, out / path.name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
