"""Sets up NLTK's WordNet offline from Debian's ``wordnet-base`` (METEOR needs it).

    apt-get install wordnet-base wordnet-sense-index
    python -m eval.wordnet [--out nltk_data]

NLTK rejects paths that leave its data root, so the files are copied, not linked; the ``lexnames``
file NLTK wants is rebuilt from the lexnames(5WN) manual page (noun=1, verb=2, adj=3, adv=4).
"""

from __future__ import annotations

import argparse
import gzip
import re
import shutil
from pathlib import Path

DEBIAN = Path("/usr/share/wordnet")
MANPAGE = Path("/usr/share/man/man5/lexnames.5WN.gz")
POS = {"adj": 3, "adv": 4, "noun": 1, "verb": 2}


def lexnames() -> str:
    lines = []
    for line in gzip.open(MANPAGE, "rt", errors="replace"):
        m = re.match(r"^(\d{2})\s+(\S+)\s", line)
        if m:
            lines.append(f"{m.group(1)}\t{m.group(2)}\t{POS[m.group(2).split('.')[0]]}")
    return "\n".join(lines) + "\n"


def install(out: Path) -> Path:
    if not DEBIAN.exists():
        raise SystemExit("error: /usr/share/wordnet not found: apt-get install wordnet-base wordnet-sense-index")
    target = Path(out) / "corpora" / "wordnet"
    target.mkdir(parents=True, exist_ok=True)
    for f in DEBIAN.iterdir():
        if f.is_file():
            shutil.copy(f, target / f.name)
    (target / "lexnames").write_text(lexnames())
    return target


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("nltk_data"))
    print(f"WordNet ready in {install(ap.parse_args().out)}; METEOR finds it there (or set NLTK_DATA)")
