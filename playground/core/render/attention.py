"""Attention views: an `AttentionResult` and a `ViewRequest` in, panels of labelled matrices out,
drawn as SVG/HTML (hover a cell for its value; no JavaScript) or as a PNG. No gradio, no models.

Views (the tab's "View" choices):
- head:    one head's query x key heatmap;
- lines:   lines from each query token to the keys it attends to (one head, or every head of the
           layer in its own colour), only the strongest `top_k` per token;
- mean:    the average head of the layer;
- rollout: attention rollout up to the layer (self-attention only);
- value:   raw α_ij beside value-weighted ||α_ij f(x_j)|| for the same layer and head;
- kinds:   an encoder-decoder's encoder, decoder and cross-attention side by side.
The model view (every layer x head) is `mosaic`, a clickable image.
"""

from __future__ import annotations

import base64
import html
import io
import math
from dataclasses import dataclass, field, replace

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from playground.core.inputs import require_choice, require_int
from playground.core.text import attention
from playground.errors import InputError

VIEWS = ("head", "lines", "mean", "rollout", "value", "kinds")
MAX_TOP_K = 20  # lines drawn per query token, at most
HOVER_MAX_CELLS = 160 * 160  # above this, a heatmap is drawn as an image (no per-cell hover) to keep the page light
MAX_TILES = 144  # model view: more layers x heads than this and layers are subsampled
# Okabe and Ito's colour-blind-safe palette (every pair stays apart under protan-, deutan- and tritanopia; see
# tests/test_access.py); heads past the eighth reuse it with dashed lines
HEAD_COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442")


def head_dash(n: int) -> str:
    """The SVG dash of head n's lines: solid for the first len(HEAD_COLOURS) heads, dashed after."""
    return "" if n < len(HEAD_COLOURS) else ' stroke-dasharray="5 3"'


def head_swatch(n: int) -> str:
    """A legend swatch for head n: its colour and dash, as a small inline SVG line."""
    return (
        f'<svg width="18" height="8" aria-hidden="true"><line x1="0" y1="4" x2="18" y2="4" stroke="{HEAD_COLOURS[n % len(HEAD_COLOURS)]}" '
        f'stroke-width="3"{head_dash(n)}/></svg>'
    )
BLUE = (31, 78, 156)
FOCUS = "#b3361a"  # the focused token's outline and label: a dark orange that reads on white (5.9:1)


@dataclass(frozen=True)
class ViewRequest:
    view: str = "head"  # one of VIEWS
    kind: str = attention.ENCODER  # which attention: "encoder", "decoder" or "cross"
    layer: int = 0  # 0-based
    head: int = 0  # 0-based; ignored by mean, rollout and lines with all_heads
    all_heads: bool = False  # lines view: every head of the layer, each in its own colour
    focus: str | None = None  # "in:i" (input token i) or "out:i" (decoder token i): outlined, with a summary
    hide_special: bool = False  # drop special tokens; rows renormalized to sum to 1
    pool_words: bool = False  # merge a word's pieces: sum over key pieces, mean over query pieces
    top_k: int = 3  # lines view: edges per query token


@dataclass
class Panel:
    title: str
    matrix: np.ndarray  # [rows, cols]
    rows: list[str]  # query labels
    cols: list[str]  # key labels
    row_pos: list[list[int]]  # the original token positions behind each row (for focus)
    col_pos: list[list[int]]
    row_side: str  # "in" or "out": which token list the rows come from
    col_side: str
    probabilities: bool = True  # rows sum to 1 (hover shows weights); False for value-weighted norms
    lines: list[np.ndarray] | None = None  # lines view: one [rows, cols] matrix per head drawn
    line_labels: list[str] = field(default_factory=list)


@dataclass
class View:
    panels: list[Panel]
    caption: str  # one line under the title: what is shown
    focus: tuple[str, int] | None = None
    top_k: int = 3
    notes: list[str] = field(default_factory=list)


# ---- from a result to panels --------------------------------------------------------------------


def kinds_of(result: attention.AttentionResult) -> list[str]:
    return list(result.attentions)


def views_of(result: attention.AttentionResult) -> list[str]:
    """The views that apply to `result`: the three kinds side by side need an encoder-decoder, and
    value-weighted attention needs the value vectors of a supported family.

    >>> import numpy as np
    >>> r = attention.AttentionResult("m", "encoder", ["a"], [], {"encoder": np.ones((1, 1, 1, 1))}, None, [False], [], [0], [], False, 1)
    >>> views_of(r)
    ['head', 'lines', 'mean', 'rollout']
    """
    return [v for v in VIEWS if not (v == "kinds" and result.architecture != "encoder-decoder")
            and not (v == "value" and not result.value_norms)]


def check_view(result: attention.AttentionResult, req: ViewRequest) -> ViewRequest:
    """`req` validated against what `result` holds (the API and stale pages can send anything), with
    whole numbers as ints (sliders send 3.0)."""
    require_choice(req.view, "view", VIEWS)
    require_choice(req.kind, "attention kind", kinds_of(result))
    layers, heads = result.attentions[req.kind].shape[:2]
    req = replace(
        req,
        layer=require_int(req.layer, "layer", low=0, high=layers - 1),
        head=require_int(req.head, "head", low=0, high=heads - 1),
        top_k=require_int(req.top_k, "top k", low=1, high=MAX_TOP_K),
    )
    if req.view == "kinds" and result.architecture != "encoder-decoder":
        raise InputError("The three kinds side by side need an encoder-decoder model (T5); pick another view.")
    if req.view == "rollout" and req.kind == attention.CROSS:
        raise InputError("Rollout follows self-attention through the layers; pick the encoder or decoder kind.")
    if req.view == "value" and not (result.value_norms and req.kind in result.value_norms):
        raise InputError("Value-weighted attention needs the layers' value vectors, read for BERT-, GPT-2- and T5-family models; "
                         "this model is another family.")
    return req


def build_view(result: attention.AttentionResult, req: ViewRequest) -> View:
    """The panels `req` asks for, with special tokens hidden and words pooled as asked."""
    req = check_view(result, req)
    att = result.attentions
    L, H = req.layer, req.head

    def panel(kind: str, matrix: np.ndarray, title: str, probabilities: bool = True, lines=None, line_labels=()) -> Panel:
        return _shape_panel(result, kind, matrix, title, req, probabilities, lines, list(line_labels))

    kind_name = {
        attention.ENCODER: "encoder self-attention",
        attention.DECODER: "decoder self-attention (causal)",
        attention.CROSS: "cross-attention",
    }
    where = f"layer {L + 1}, head {H + 1}{_group_of(result, H)}"
    if req.view == "head":
        panels = [panel(req.kind, att[req.kind][L, H], f"{kind_name[req.kind]}, {where}")]
        caption = "Row i: how query token i spreads its attention over the keys (each row sums to 1)."
    elif req.view == "mean":
        panels = [panel(req.kind, attention.mean_heads(att[req.kind])[L], f"{kind_name[req.kind]}, layer {L + 1}, mean over heads")]
        caption = "The average of the layer's heads."
    elif req.view == "rollout":
        panels = [panel(req.kind, attention.rollout(att[req.kind])[L], f"rollout of {kind_name[req.kind]} through layer {L + 1}")]
        caption = "Attention rollout (Abnar & Zuidema 2020): half residual, half mean attention, multiplied through the layers."
    elif req.view == "value":
        weighted = attention.value_weighted(att[req.kind], result.value_norms[req.kind])[L, H]
        panels = [panel(req.kind, att[req.kind][L, H], f"α_ij, {where}"),
                  panel(req.kind, weighted, f"‖α_ij f(x_j)‖, {where}", probabilities=False)]
        caption = "Left: the weights. Right: what each key token actually sends (weight x the norm of its projected value vector)."
    elif req.view == "kinds":
        panels = [panel(k, att[k][L, H], f"{kind_name[k]}, {where}") for k in (attention.ENCODER, attention.DECODER, attention.CROSS)]
        caption = "Encoder tokens attend both ways; decoder tokens only back; cross-attention rows are output tokens, columns input tokens."
    else:  # lines
        heads = range(att[req.kind].shape[1]) if req.all_heads else [H]
        mats = [att[req.kind][L, h] for h in heads]
        panels = [panel(req.kind, att[req.kind][L, H] if not req.all_heads else attention.mean_heads(att[req.kind])[L],
                        f"{kind_name[req.kind]}, layer {L + 1}, {'all heads' if req.all_heads else f'head {H + 1}'}",
                        lines=mats, line_labels=[f"head {h + 1}" for h in heads])]
        caption = f"Each query token (left) to the {req.top_k} key token(s) (right) it attends to most; line weight = attention."
    return View(panels, caption, _parse_focus(req.focus), req.top_k)  # the result's notes are shown once, by the caller


def _group_of(result: attention.AttentionResult, head: int) -> str:
    """", key/value head 1 with heads 1-2" for a grouped-query model's head (counted from 1, as the views count); "" otherwise."""
    kv = result.kv_heads
    heads = next(iter(result.attentions.values())).shape[1]
    if not kv or heads % kv:
        return ""
    group = heads // kv
    g = head // group
    return f" (key/value head {g + 1}, shared by heads {g * group + 1}-{g * group + group})"


def _side_tokens(result: attention.AttentionResult, kind: str) -> tuple[str, str]:
    rows = "out" if result.architecture == "encoder-decoder" and kind in (attention.DECODER, attention.CROSS) else "in"
    cols = "out" if result.architecture == "encoder-decoder" and kind == attention.DECODER else "in"
    return rows, cols


def _shape_panel(result, kind, matrix, title, req, probabilities, lines, line_labels) -> Panel:
    row_side, col_side = _side_tokens(result, kind)
    toks = {"in": (result.tokens, result.special, result.words), "out": (result.target_tokens, result.target_special, result.target_words)}
    (rtok, rspec, rwords), (ctok, cspec, cwords) = toks[row_side], toks[col_side]
    rkeep = [i for i in range(len(rtok)) if not (req.hide_special and rspec[i])]
    ckeep = [i for i in range(len(ctok)) if not (req.hide_special and cspec[i])]
    if not rkeep or not ckeep:
        raise InputError("Hiding special tokens leaves nothing to show; untick 'hide special tokens'.")
    renorm = req.hide_special and probabilities
    matrix = attention.select(matrix, rkeep, ckeep, renorm)
    lines = [attention.select(m, rkeep, ckeep, renorm) for m in lines] if lines else None
    if req.pool_words:
        rg, cg = (
            attention.groups([rwords[i] for i in rkeep], list(range(len(rkeep)))),
            attention.groups([cwords[i] for i in ckeep], list(range(len(ckeep)))),
        )
        matrix = attention.pool(matrix, rg, cg)
        lines = [attention.pool(m, rg, cg) for m in lines] if lines else None
        rows, cols = attention.label_groups([rtok[i] for i in rkeep], rg), attention.label_groups([ctok[i] for i in ckeep], cg)
        row_pos, col_pos = [[rkeep[i] for i in g] for g in rg], [[ckeep[i] for i in g] for g in cg]
    else:
        rows, cols = [rtok[i] for i in rkeep], [ctok[i] for i in ckeep]
        row_pos, col_pos = [[i] for i in rkeep], [[i] for i in ckeep]
    return Panel(title, matrix, rows, cols, row_pos, col_pos, row_side, col_side, probabilities, lines, line_labels)


def _parse_focus(focus: str | None) -> tuple[str, int] | None:
    if not focus:
        return None
    side, _, index = str(focus).partition(":")
    if side not in ("in", "out") or not index.isdigit():
        raise InputError(f"focus must look like 'in:3' or 'out:0', got {focus!r}.")
    return side, int(index)


def focus_choices(result: attention.AttentionResult) -> list[tuple[str, str]]:
    """(label, value) for the focus picker: input tokens, then an encoder-decoder's output tokens."""
    out = [(f"{i}: {t}", f"in:{i}") for i, t in enumerate(result.tokens)]
    out += [(f"out {i}: {t}", f"out:{i}") for i, t in enumerate(result.target_tokens)]
    return out


def _focus_index(positions: list[list[int]], side: str, focus: tuple[str, int] | None) -> int | None:
    if focus is None or focus[0] != side:
        return None
    return next((i for i, pos in enumerate(positions) if focus[1] in pos), None)


# ---- HTML / SVG -------------------------------------------------------------------------------------

_FONT_PX = 11


def _short(label: str, limit: int = 14) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"


def render_html(view: View) -> str:
    """The view as HTML: a caption, its panels side by side (SVG), focus summaries and notes."""
    parts = [f'<div class="att-view"><div class="att-caption">{html.escape(view.caption)}</div><div class="att-panels">']
    for p in view.panels:
        svg = _lines_svg(p, view) if p.lines is not None else _heatmap_svg(p, view)
        parts.append(f'<figure class="att-panel"><figcaption>{html.escape(p.title)}</figcaption>{svg}{_focus_summary(p, view)}</figure>')
    parts.append("</div>")
    parts.extend(f'<div class="att-note">{html.escape(n)}</div>' for n in view.notes)
    parts.append("</div>")
    return "".join(parts)


def _cell_size(n: int) -> int:
    return max(3, min(24, 720 // max(n, 1)))


def _heatmap_svg(p: Panel, view: View) -> str:
    m = p.matrix
    nr, nc = m.shape
    cell = _cell_size(max(nr, nc))
    step_r, step_c = max(1, math.ceil(_FONT_PX / cell)), max(1, math.ceil(_FONT_PX / cell))
    left = 8 + 7 * max((len(_short(r)) for r in p.rows), default=1)
    top = 8 + 6 * max((len(_short(c)) for c in p.cols), default=1)
    # the column labels lean right as they rise (rotated −60°): room for the last one's reach, cos 60° of its length
    w, h = left + nc * cell + 4 + 4 * max((len(_short(c)) for c in p.cols), default=1), top + nr * cell + 4
    scale = float(m.max()) or 1.0
    out = [f'<svg class="att-heatmap" xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" '
           f'font-family="ui-monospace, monospace" font-size="{_FONT_PX}">']
    for i in range(0, nr, step_r):
        out.append(
            f'<text x="{left - 4}" y="{top + i * cell + cell / 2 + 4:.1f}" text-anchor="end">{html.escape(_short(p.rows[i]))}</text>'
        )
    for j in range(0, nc, step_c):
        x, y = left + j * cell + cell / 2 + 4, top - 4
        out.append(f'<text x="{x:.1f}" y="{y}" transform="rotate(-60 {x:.1f} {y})">{html.escape(_short(p.cols[j]))}</text>')
    out.append(f'<rect x="{left}" y="{top}" width="{nc * cell}" height="{nr * cell}" fill="#fff" stroke="#ccc"/>')
    if nr * nc <= HOVER_MAX_CELLS:
        fmt = "%.3f" if p.probabilities else "%.3g"
        cols = [
            f'<rect x="{left + j * cell}" y="%d" width="{cell}" height="{cell}" fill-opacity="%.2f"><title>%s → {html.escape(c)}: '
            f'{fmt}</title></rect>'
            for j, c in enumerate(p.cols)
        ]
        shade = (m / scale).tolist()
        values = m.tolist()
        out.append(f'<g fill="rgb{BLUE}">')
        for i, (row, op_row, label) in enumerate(zip(values, shade, p.rows)):
            y, label = top + i * cell, html.escape(label)
            out.append("".join(tpl % (y, o, label, v) for tpl, o, v in zip(cols, op_row, row)))
        out.append("</g>")
    else:  # too many cells to hover: one embedded image
        png = _matrix_image(m / scale, cell)
        out.append(f'<image x="{left}" y="{top}" width="{nc * cell}" height="{nr * cell}" href="data:image/png;base64,{_b64(png)}"/>')
    fr = _focus_index(p.row_pos, p.row_side, view.focus)
    fc = _focus_index(p.col_pos, p.col_side, view.focus)
    if fr is not None:
        out.append(
            f'<rect x="{left}" y="{top + fr * cell}" width="{nc * cell}" height="{cell}" fill="none" stroke="{FOCUS}" stroke-width="2"/>'
        )
    if fc is not None:
        out.append(
            f'<rect x="{left + fc * cell}" y="{top}" width="{cell}" height="{nr * cell}" fill="none" stroke="{FOCUS}" stroke-width="2"/>'
        )
    out.append("</svg>")
    if nr * nc > HOVER_MAX_CELLS:
        out.append(f'<div class="att-note">{nr}x{nc} cells: hover values are shown up to {HOVER_MAX_CELLS:,} cells. '
                   "Pool words or lower the token cap to read single cells.</div>")
    return "".join(out)


def _lines_svg(p: Panel, view: View) -> str:
    nr, nc = p.matrix.shape
    row_h = 16
    colw = 8 + 7 * max(max((len(_short(t)) for t in p.rows), default=1), max((len(_short(t)) for t in p.cols), default=1))
    gap = 220
    w, h = 2 * colw + gap, max(nr, nc) * row_h + 24
    x1, x2 = colw, colw + gap
    out = [f'<svg class="att-lines" xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" '
           f'font-family="ui-monospace, monospace" font-size="{_FONT_PX}">']
    fr = _focus_index(p.row_pos, p.row_side, view.focus)
    fc = _focus_index(p.col_pos, p.col_side, view.focus)
    for i, label in enumerate(p.rows):
        colour = FOCUS if i == fr else "#222"
        out.append(f'<text x="{x1 - 6}" y="{20 + i * row_h}" text-anchor="end" fill="{colour}">{html.escape(_short(label))}</text>')
    for j, label in enumerate(p.cols):
        colour = FOCUS if j == fc else "#222"
        out.append(f'<text x="{x2 + 6}" y="{20 + j * row_h}" fill="{colour}">{html.escape(_short(label))}</text>')
    for n, m in enumerate(p.lines or []):
        colour = HEAD_COLOURS[n % len(HEAD_COLOURS)] if len(p.lines) > 1 else "#1f4e9c"
        for q, k, v in attention.top_edges(m, view.top_k):
            if fr is not None and q != fr and (fc is None or k != fc):
                continue  # focus: only the focused token's edges
            out.append(
                f'<line x1="{x1}" y1="{16 + q * row_h}" x2="{x2}" y2="{16 + k * row_h}" '
                f'stroke="{colour}"{head_dash(n) if len(p.lines) > 1 else ""} '
                f'stroke-width="{0.5 + 3 * v:.2f}" stroke-opacity="{0.15 + 0.85 * v:.2f}">'
                f"<title>{html.escape(p.line_labels[n] if p.line_labels else '')}: {html.escape(p.rows[q])} → {html.escape(p.cols[k])}: "
                f"{v:.3f}</title></line>"
            )
    out.append("</svg>")
    if len(p.lines or []) > 1:
        legend = " ".join(f'<span>{head_swatch(n)} {html.escape(lab)}</span>'
                          for n, lab in enumerate(p.line_labels))
        out.append(f'<div class="att-legend">{legend}</div>')
    return "".join(out)


def _focus_summary(p: Panel, view: View, k: int = 5) -> str:
    fr = _focus_index(p.row_pos, p.row_side, view.focus)
    fc = _focus_index(p.col_pos, p.col_side, view.focus)
    parts = []
    if fr is not None:
        order = np.argsort(-p.matrix[fr])[:k]
        parts.append(
            f"<b>{html.escape(p.rows[fr])}</b> attends most to: "
            + ", ".join(f"{html.escape(p.cols[j])} {p.matrix[fr, j]:.2f}" for j in order)
        )
    if fc is not None:
        order = np.argsort(-p.matrix[:, fc])[:k]
        parts.append(
            f"<b>{html.escape(p.cols[fc])}</b> is attended most by: "
            + ", ".join(f"{html.escape(p.rows[i])} {p.matrix[i, fc]:.2f}" for i in order)
        )
    return "".join(f'<div class="att-focus">{s}</div>' for s in parts)


# ---- images -----------------------------------------------------------------------------------------


def _b64(image: Image.Image) -> str:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def _matrix_image(m: np.ndarray, cell: int) -> Image.Image:
    """[rows, cols] in [0, 1] -> white-to-blue RGB image, `cell` pixels a cell."""
    v = np.clip(m, 0, 1)[..., None]
    rgb = (255 - v * (255 - np.array(BLUE))).astype(np.uint8)
    img = Image.fromarray(rgb, "RGB")
    return img.resize((m.shape[1] * cell, m.shape[0] * cell), Image.NEAREST)


def _png_label(label: str) -> str:
    """A token label the bitmap font can draw: word markers (SentencePiece ▁, GPT-2 Ġ) as "_"."""
    return _short(label).replace("▁", "_").replace("Ġ", "_")


def render_png(view: View) -> Image.Image:
    """The view's panels as one image (the download): heatmaps with token labels and titles."""
    font = ImageFont.load_default(size=11)
    images = []
    for p in view.panels:
        nr, nc = p.matrix.shape
        cell = _cell_size(max(nr, nc))
        left = 10 + 7 * max((len(_short(r)) for r in p.rows), default=1)
        top = 24 + 7 * max((len(_short(c)) for c in p.cols), default=1)
        img = Image.new("RGB", (max(left + nc * cell + 10, 7 * len(p.title) + 12), top + nr * cell + 10), "white")
        draw = ImageDraw.Draw(img)
        draw.text((4, 4), p.title, fill="black", font=font)
        heat = p.lines[0] if p.lines is not None and len(p.lines) == 1 else p.matrix
        img.paste(_matrix_image(heat / (float(heat.max()) or 1.0), cell), (left, top))
        step = max(1, math.ceil(12 / cell))
        for i in range(0, nr, step):
            draw.text((left - 4, top + i * cell + cell / 2), _png_label(p.rows[i]), fill="black", font=font, anchor="rm")
        # key labels, vertical: drawn on one strip, rotated once (strip row y becomes column x)
        strip = Image.new("RGB", (top - 26, nc * cell), "white")
        strip_draw = ImageDraw.Draw(strip)
        for j in range(0, nc, step):
            strip_draw.text((2, j * cell + cell / 2), _png_label(p.cols[j]), fill="black", font=font, anchor="lm")
        img.paste(strip.rotate(90, expand=True), (left, 22))
        images.append(img)
    width = sum(i.width for i in images) + 10 * (len(images) - 1)
    out = Image.new("RGB", (width, max(i.height for i in images)), "white")
    x = 0
    for img in images:
        out.paste(img, (x, 0))
        x += img.width + 10
    return out


@dataclass(frozen=True)
class Mosaic:
    image: Image.Image
    layers: list[int]  # the layers shown, top to bottom (subsampled when there are many)
    heads: int
    left: int  # pixel offset of the first tile
    top: int
    tile: int  # tile size in pixels
    pitch: int  # tile + gap (+ the sink bar, vertically)
    pitch_y: int

    def locate(self, x: float, y: float) -> tuple[int, int] | None:
        """(layer, head) under pixel (x, y) of the image, or None between tiles."""
        col, row = (x - self.left) // self.pitch, (y - self.top) // self.pitch_y
        if 0 <= row < len(self.layers) and 0 <= col < self.heads:
            return self.layers[int(row)], int(col)
        return None


def mosaic(att: np.ndarray, sinks: list[int], kv_heads: int | None = None) -> Mosaic:
    """The model view: every layer x head of [L, H, Q, K] as small heatmaps in one grid; under each
    tile, an orange bar as long as that head's share of attention on the sink tokens (the first
    token and separators). With grouped-query attention (`kv_heads` key/value heads for H query heads), the heads that
    share a key/value head stand under one bracket, labelled with that head ("KV 1"), and a line parts the groups."""
    n_layers, n_heads = att.shape[:2]
    layers = list(range(n_layers))
    if n_layers * n_heads > MAX_TILES:
        keep = max(1, MAX_TILES // n_heads)
        layers = sorted({round(i * (n_layers - 1) / max(keep - 1, 1)) for i in range(keep)})
    tile = 64 if len(layers) * n_heads <= 64 else 40
    bar, gap = 4, 6
    group = n_heads // kv_heads if kv_heads and 0 < kv_heads < n_heads and n_heads % kv_heads == 0 else 0
    left, top = 34, 40 + (18 if group else 0)  # room above for the head labels (and the group brackets)
    pitch, pitch_y = tile + gap, tile + bar + 2 + gap
    share = attention.sink_share(att, sinks)
    # every tile at once: area-average each [Q, K] map to tile x tile, scaled by its own maximum
    import torch

    maps = torch.from_numpy(np.ascontiguousarray(att[layers])).reshape(-1, 1, *att.shape[2:])
    small = torch.nn.functional.interpolate(maps, size=(tile, tile), mode="area" if att.shape[2] >= tile else "nearest")
    small = small / small.amax(dim=(2, 3), keepdim=True).clamp(min=1e-12)
    shade = small.reshape(len(layers), n_heads, tile, tile, 1).numpy()
    tiles = (255 - shade * (255 - np.array(BLUE, dtype=np.float32))).astype(np.uint8)  # [rows, heads, tile, tile, 3]
    canvas = np.full((top + len(layers) * pitch_y, left + n_heads * pitch, 3), 255, dtype=np.uint8)
    for r in range(len(layers)):
        y = top + r * pitch_y
        for h in range(n_heads):
            x = left + h * pitch
            canvas[y:y + tile, x:x + tile] = tiles[r, h]
            canvas[y + tile + 2:y + tile + 2 + bar, x:x + tile] = (238, 238, 238)
            canvas[y + tile + 2:y + tile + 2 + bar, x:x + 1 + int(round(float(share[layers[r], h]) * (tile - 1)))] = (242, 142, 43)
    img = Image.fromarray(canvas, "RGB")
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=10)
    for h in range(n_heads):
        draw.text((left + h * pitch + tile // 2, top - 4), f"H{h + 1}", fill="black", font=font, anchor="mb")
    for g in range(n_heads // group if group else 0):  # a bracket over each group of query heads, and a line between groups
        x0, x1 = left + g * group * pitch, left + (g + 1) * group * pitch - gap
        y = top - 20
        draw.line([(x0, y + 4), (x0, y), (x1, y), (x1, y + 4)], fill=(80, 80, 80), width=1)
        draw.text(((x0 + x1) // 2, y - 2), f"KV {g + 1}", fill="black", font=font, anchor="mb")
        if g:
            draw.line([(x0 - gap // 2, top - 6), (x0 - gap // 2, canvas.shape[0] - 2)], fill=(150, 150, 150), width=1)
    for r, layer in enumerate(layers):
        draw.text((2, top + r * pitch_y + tile // 2), f"L{layer + 1}", fill="black", font=font, anchor="lm")
    return Mosaic(img, layers, n_heads, left, top, tile, pitch, pitch_y)


def sinks_of(result: attention.AttentionResult, kind: str) -> list[int]:
    """Key positions that heads use as a no-op "sink": the first token and separators ([SEP], </s>)."""
    _, col_side = _side_tokens(result, kind)
    special = result.special if col_side == "in" else result.target_special
    return sorted({0} | {i for i, s in enumerate(special) if s})
