"""Replaces one part's section of BENCHMARKS.md with the text on stdin.

Usage: python3 scripts/bench_section.py NAME < text. The section lives between
`<!-- NAME:begin -->` and `<!-- NAME:end -->`; it is appended if missing.
"""
import pathlib
import sys

name = sys.argv[1]
body = sys.stdin.read().strip()
path = pathlib.Path(__file__).resolve().parent.parent / "BENCHMARKS.md"
text = path.read_text() if path.exists() else "# Benchmarks\n\nWritten by `make bench`; each section by its part's script.\n"
begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
block = f"{begin}\n{body}\n{end}"
if begin in text and end in text:
    head, rest = text.split(begin, 1)
    text = head + block + rest.split(end, 1)[1]
else:
    title = {"core": "Core", "window-precision": "Window precision", "seed2": "Seed 2 at scale",
             "stores-beyond-one-node": "Stores beyond one node"}.get(name, name.capitalize())
    text = text.rstrip() + f"\n\n## {title}\n\n{block}\n"
path.write_text(text)
