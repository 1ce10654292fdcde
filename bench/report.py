"""Writes a benchmark's section into docs/benchmarks.md, between markers, keeping the others."""

from __future__ import annotations

import re
from pathlib import Path

from mmrag.machine import machine

__all__ = ["machine", "write_section"]


def write_section(path: Path, name: str, body: str) -> None:
    path = Path(path)
    text = path.read_text() if path.exists() else "# Benchmarks\n\nEach section is written by the command it names; rerun it to refresh.\n"
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    block = f"{start}\n{body.strip()}\n{end}"
    if start in text:
        text = re.sub(re.escape(start) + r".*?" + re.escape(end), lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
