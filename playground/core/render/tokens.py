"""Server-side HTML for the tokenizer visualizer: token chips, round-trip diff, word-split steps.

Plain HTML and CSS classes (styled by assets/style.css), no script: Gradio's gr.HTML does not
run <script>, and workshops are offline. Every string from the input is escaped.
"""

from __future__ import annotations

import math
from html import escape

from playground.core.text.tokenize import DIFF_WINDOW, Tokenization, visible
from playground.core.text.word_split import PieceExplanation, WordExplanation

MAX_CHIPS = 2_000  # chips drawn per tokenizer; counts and ids always cover the whole text
MAX_TRIED_SHOWN = 6  # WordPiece candidates listed per position before "…"


def _chip(i: int, face: str, title: str, classes: list[str], show_ids: bool, raw: str, tid: int) -> str:
    detail = f'<span class="tok-id">{tid}</span><span class="tok-raw">{escape(raw)}</span>' if show_ids else ""
    return f'<span class="{" ".join(classes)}" title="{escape(title, quote=True)}">{escape(face)}{detail}</span>'


def render_chips(t: Tokenization, show_ids: bool = False, max_chips: int = MAX_CHIPS) -> str:
    """One tokenizer's text as colored chips; hover shows id, raw string and span.

    >>> from playground.core.text.tokenize import Token, Tokenization, Counts
    >>> t = Tokenization("demo", "BPE", "hi", [Token(5, "hi", 0, 2, False, "hi")], Counts(1, 2, 1, 2.0), "hi", True)
    >>> 'title="id 5 · raw &#x27;hi&#x27; · chars 0–2' in render_chips(t)
    True
    """
    parts = []
    for i, tok in enumerate(t.tokens[:max_chips]):
        classes = ["tok", f"tok-c{i % 2}"]
        if tok.special:
            classes.append("tok-special")
        if tok.unknown:
            classes.append("tok-unk")
        if tok.partial:
            classes.append("tok-byte")
        span = "added by the tokenizer" if tok.start is None else f"chars {tok.start}–{tok.end}"
        source = "" if tok.start is None else f" · input {visible(t.text[tok.start:tok.end])!r}"
        title = f"id {tok.id} · raw {tok.text!r} · {span}{source}"
        if tok.partial:
            title += " · a byte-level piece of one character"
        parts.append(_chip(i, tok.face, title, classes, show_ids, tok.text, tok.id))
    notice = ""
    if len(t.tokens) > max_chips:
        notice = (
            f'<div class="tok-notice">Showing the first {max_chips:,} of {len(t.tokens):,} tokens; '
            "counts and the id list cover the whole text.</div>"
        )
    return f'<div class="tok-chips">{"".join(parts)}</div>{notice}'


def render_roundtrip(t: Tokenization) -> str:
    """Whether decoding gives the text back; if not, a diff of what changed and why."""
    if t.lossless:
        return '<div class="tok-ok">✓ decoding the ids gives the text back exactly</div>'
    rows = []
    for op in t.diff:
        if op.kind == "equal":
            rows.append(f"<span>{escape(visible(op.original[:80]))}</span>")
        else:
            rows.append(
                f'<del title="{escape(op.why, quote=True)}">{escape(visible(op.original))}</del>'
                f'<ins title="{escape(op.why, quote=True)}">{escape(visible(op.decoded))}</ins>'
            )
    reasons = sorted({op.why for op in t.diff if op.kind != "equal"})
    more = f" (diff of the first {DIFF_WINDOW:,} characters)" if t.diff_truncated else ""
    return (
        f'<div class="tok-lossy">✗ decoding changes the text: {escape(", ".join(reasons))}{more}</div>'
        f'<div class="tok-diff">{"".join(rows)}</div>'
    )


def _token_count(c) -> str:
    """"12 tokens (10 from the text, 2 added)": chars/token divides by the tokens from the text."""
    if c.text_tokens is None or c.text_tokens == c.tokens:
        return f"{c.tokens:,} tokens"
    return f"{c.tokens:,} tokens ({c.text_tokens:,} from the text, {c.tokens - c.text_tokens:,} added)"


def _times(ratio: float) -> str:
    """A likelihood ratio in words.

    >>> _times(7.389), _times(1234.5), _times(1.0)
    ('7.4x', '1,234x', '1.0x')
    """
    return f"{ratio:,.0f}x" if ratio >= 100 else f"{ratio:.1f}x"


def render_panel(t: Tokenization, show_ids: bool = False, source: str = "") -> str:
    """A tokenizer's column: name, what actually runs, counts, chips, round trip."""
    c = t.counts
    runs = f'<div class="tok-source">runs: {escape(source)}</div>' if source else ""
    return (
        f'<div class="tok-panel"><h4>{escape(t.tokenizer)} <small>{escape(t.algorithm)}</small></h4>{runs}'
        f'<div class="tok-counts">{_token_count(c)} · {c.characters:,} characters · {c.words:,} words · '
        f"{c.chars_per_token:g} chars/token (of the text)</div>"
        f"{render_chips(t, show_ids)}{render_roundtrip(t)}</div>"
    )


def render_panels(results: list[Tokenization], show_ids: bool = False, sources: list[str] | None = None) -> str:
    """Tokenizers side by side; `sources` says, for each, which files actually run and why."""
    sources = sources or [""] * len(results)
    return f'<div class="tok-grid">{"".join(render_panel(t, show_ids, s) for t, s in zip(results, sources))}</div>'


def _pieces(pieces: tuple[str, ...] | list[str], cls: str = "tok") -> str:
    return "".join(f'<span class="{cls} tok-c{i % 2}">{escape(visible(p))}</span>' for i, p in enumerate(pieces))


def _explain_piece(p: PieceExplanation) -> str:
    out = [f'<div class="split-piece"><div>Input to {p.algorithm}: <code>{escape(visible(p.pretoken))}</code></div>']
    if p.note:
        out.append(f"<div><em>{escape(p.note)}</em></div>")
    if p.algorithm == "BPE" and p.initial:
        out.append('<table class="split-steps"><tr><th>step</th><th>merge (rank)</th><th>pieces</th></tr>')
        out.append(f"<tr><td>0</td><td>start: one symbol per byte</td><td>{_pieces(p.initial)}</td></tr>")
        for n, s in enumerate(p.bpe_steps, 1):
            out.append(
                f"<tr><td>{n}</td><td><code>{escape(visible(s.left))}</code> + <code>{escape(visible(s.right))}</code>"
                f" (rank {s.rank:,})</td><td>{_pieces(s.pieces)}</td></tr>"
            )
        out.append("</table><div>No learned merge applies to any adjacent pair any more: done.</div>")
    elif p.algorithm == "WordPiece" and p.wordpiece_steps:
        out.append('<table class="split-steps"><tr><th>at</th><th>tried, longest first (not in vocabulary)</th><th>taken</th></tr>')
        for s in p.wordpiece_steps:
            tried = ", ".join(escape(t) for t in s.tried[:MAX_TRIED_SHOWN])
            if len(s.tried) > MAX_TRIED_SHOWN:
                tried += f", … ({len(s.tried) - MAX_TRIED_SHOWN} more)"
            taken = f"<code>{escape(s.match)}</code>" if s.match else "nothing matches"
            out.append(f"<tr><td>{s.position}</td><td>{tried or '–'}</td><td>{taken}</td></tr>")
        out.append("</table>")
    elif p.algorithm == "Unigram" and p.best:
        out.append('<table class="split-steps"><tr><th></th><th>segmentation</th><th>log-probabilities</th><th>total</th></tr>')
        for label, seg in (("best (chosen)", p.best), ("runner-up", p.runner_up)):
            if seg is None:
                continue
            scores = " + ".join(f"{s:.2f}" for s in seg.scores)
            out.append(f"<tr><td>{label}</td><td>{_pieces(seg.pieces)}</td><td>{scores}</td><td>{seg.total:.2f}</td></tr>")
        out.append("</table>")
        if p.runner_up:
            gap = p.best.total - p.runner_up.total  # a difference of log-probabilities: the ratio of the probabilities is e^gap
            out.append(f"<div>The best segmentation is {_times(math.exp(gap))} as likely as the runner-up "
                       f"(log-probabilities {p.best.total:.2f} vs {p.runner_up.total:.2f}).</div>")
    out.append(f"<div>Tokens: {_pieces(p.tokens)}</div></div>")
    return "".join(out)


def render_word_split(e: WordExplanation, tokenizer_name: str) -> str:
    """The algorithm's steps for one word, piece by piece."""
    head = f'<div class="split"><h4>How {escape(tokenizer_name)} split <code>{escape(visible(e.word))}</code></h4>'
    if e.normalized != e.word:
        head += f"<div>Normalized first: <code>{escape(visible(e.normalized))}</code></div>"
    return head + "".join(_explain_piece(p) for p in e.pieces) + f"<div><b>Result:</b> {_pieces(e.tokens)}</div></div>"
