"""Every tab in light and dark mode, and at a phone's 390 px: the labels the server draws (chips, heatmaps,
charts, bars, beams) keep WCAG AA contrast (4.5:1) against what is behind them, and no tab scrolls
sideways. Screenshots for each land in test-artifacts/."""

from __future__ import annotations

import pytest

from tests.conftest import ARTIFACTS
from tests.test_browser import goto
from tests.test_browser import page as _page  # noqa: F401  (the fixture's browser setup)

pytestmark = pytest.mark.browser

OURS = (".tok-grid, .tok-diff, .att-view, .ins-view, .trn-plot, .lm-gen, .lm-chips, .lm-bars-pair, .lm-step, .lm-beam-steps, "
        ".lm-chart, .lm-projection, .lm-sim, .iv-view")

# For every element inside the server-drawn regions that shows text: its ink (CSS colour, or an SVG text's fill)
# against its background, composited through translucent layers down to the page, as WCAG computes contrast.
CONTRAST_JS = """(selector) => {
  const parse = (c) => { const m = c.match(/rgba?\\(([^)]+)\\)/); if (!m) return null;
    const p = m[1].split(',').map(Number); return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1]; };
  const lum = ([r, g, b]) => { const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b); };
  const background = (el) => { const layers = [];
    for (let e = el; e; e = e.parentElement) { const c = parse(getComputedStyle(e).backgroundColor);
      if (c && c[3] > 0) { layers.push(c); if (c[3] >= 1) break; } }
    let base = [255, 255, 255];
    for (const [r, g, b, a] of layers.reverse()) base = [r * a + base[0] * (1 - a), g * a + base[1] * (1 - a), b * a + base[2] * (1 - a)];
    return base; };
  const out = [];
  for (const root of document.querySelectorAll(selector)) {
    if (!root.offsetParent && root.tagName !== 'svg' && !root.closest('svg')) continue;
    for (const el of [root, ...root.querySelectorAll('*')]) {
      const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
      if (!own || el.tagName.toLowerCase() === 'title') continue;  // an SVG <title> is a tooltip, never drawn
      const style = getComputedStyle(el);
      if (style.visibility === 'hidden' || style.display === 'none') continue;
      const svgText = el instanceof SVGElement;
      const ink = parse(svgText ? style.fill : style.color);
      if (!ink || ink[3] === 0) continue;
      const bg = background(svgText ? el.closest('svg') : el);
      const [a, b] = [lum(ink), lum(bg)].sort((x, y) => y - x);
      out.push({text: el.textContent.trim().slice(0, 30), ratio: (a + 0.05) / (b + 0.05), ink: ink.slice(0, 3), bg: bg.map(Math.round)});
    }
  }
  return out; }"""

ACTIONS = {  # what fills each tab with server-drawn content
    "Start": [],
    "Tokenizer": [],
    "Attention": ["#att-run"],
    "Inside": ["#ins-run"],
    "Interventions": ["#iv-sweep", "#iv-patch"],
    "GPT": ["#gpt-generate", "#gpt-score"],
    "BERT": ["#bert-fill", "#bert-embed"],
    "T5": ["#t5-run"],
    "Diffusion": [],
    "Text-to-image": ["#t2i-run"],
    "Training": ["#trn-toy-train"],
    "Models": [],
}
WAIT_FOR = {
    "Start": "#start-concept h4",
    "Tokenizer": ".tok-chips",
    "Attention": ".att-view",
    "Inside": ".ins-view",
    "Interventions": "#iv-patch-result",
    "GPT": ".lm-surprise",
    "BERT": ".lm-sim",
    "T5": ".lm-chips",
    "Diffusion": ".lm-chart",
    "Text-to-image": "#t2i-words img",
    "Training": ".trn-plot svg",
    "Models": None,
}


def _open_tab(page, name: str) -> None:
    page.get_by_role("tab").first.wait_for(timeout=60_000)  # the tab bar has rendered
    tab = page.get_by_role("tab", name=name)
    if tab.count() and tab.is_visible():
        tab.click()
        return
    page.get_by_role("button", name="More tabs").click()  # on a phone most tabs sit in the tab bar's overflow menu
    page.locator(".overflow-dropdown button", has_text=name).click()


def _fill_tab(page, name: str) -> None:
    _open_tab(page, name)
    for button in ACTIONS[name]:
        page.locator(button).click()
    if WAIT_FOR[name]:
        page.locator(f"{WAIT_FOR[name]}:visible").first.wait_for(timeout=120_000)
    page.wait_for_timeout(600)


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_server_drawn_labels_keep_their_contrast_in_both_themes(_page, live_app, theme):
    page = _page
    goto(page, live_app + ("?__theme=dark" if theme == "dark" else "?__theme=light"))
    page.get_by_role("tab", name="Models").wait_for(timeout=60_000)
    failures, checked = [], 0
    for name in ACTIONS:
        _fill_tab(page, name)
        measured = page.evaluate(CONTRAST_JS, OURS)
        checked += len(measured)
        failures += [(name, m) for m in measured if m["ratio"] < 4.5]
        page.screenshot(path=str(ARTIFACTS / f"theme-{theme}-{name.lower()}.png"), full_page=True)
    assert checked > 200  # the labels were there to check
    worst = sorted(failures, key=lambda f: f[1]["ratio"])[:8]
    assert not failures, f"{len(failures)} of {checked} labels under 4.5:1 in {theme} mode, e.g. {worst}"


def test_no_tab_scrolls_sideways_on_a_phone(_page, live_app):
    page = _page
    page.set_viewport_size({"width": 390, "height": 844})
    try:
        goto(page, live_app)
        page.get_by_role("tab", name="Tokenizer").wait_for(timeout=60_000)
        wide = {}
        for name in ACTIONS:
            _fill_tab(page, name)
            width = page.evaluate("() => document.documentElement.scrollWidth")
            if width > 391:
                wide[name] = width
            page.screenshot(path=str(ARTIFACTS / f"phone-{name.lower()}.png"), full_page=True)
        assert not wide, f"tabs wider than the 390 px screen: {wide}"
    finally:
        page.set_viewport_size({"width": 1400, "height": 1000})


def test_long_text_chips_scroll_in_their_own_box_and_focus_is_visible(_page, live_app):
    page = _page
    goto(page, live_app)
    _open_tab(page, "Tokenizer")
    page.locator("#tok-text textarea").fill("To be, or not to be, that is the question. " * 2300)  # 100,000 characters
    page.locator("#tok-go").click()
    page.get_by_text("Showing the first 2,000", exact=False).first.wait_for(timeout=120_000)
    height = page.evaluate("() => Math.max(...[...document.querySelectorAll('.tok-chips')].map(e => e.getBoundingClientRect().height))")
    assert height < 600, f"the chips panel is {height:.0f} px tall: it should scroll in its own box"
    # keyboard focus on a blue (primary) button is a ring you can see against the page, in both themes
    for theme in ("light", "dark"):
        goto(page, f"{live_app}?__theme={theme}")
        page.get_by_role("tab").first.wait_for(timeout=60_000)
        page.locator("button.primary:visible").first.focus()
        page.keyboard.press("Shift+Tab")
        page.keyboard.press("Tab")
        page.wait_for_timeout(800)  # the buttons' colours are animated: read the ring once the transition has ended
        width, style, ratio = page.evaluate(FOCUS_JS)
        assert float(width.rstrip("px")) >= 3 and style == "solid" and ratio >= 3, (theme, width, style, ratio)


FOCUS_JS = r"""() => {
  const parse = (c) => c.match(/[\d.]+/g).map(Number);
  const lum = ([r, g, b]) => { const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b); };
  const s = getComputedStyle(document.activeElement);
  let bg = null;
  for (let e = document.activeElement.parentElement; e; e = e.parentElement) {
    const c = parse(getComputedStyle(e).backgroundColor); if (c.length < 4 || c[3] > 0) { bg = c; break; } }
  bg = bg || [255, 255, 255];
  const [a, b] = [lum(parse(s.outlineColor)), lum(bg)].sort((x, y) => y - x);
  return [s.outlineWidth, s.outlineStyle, (a + 0.05) / (b + 0.05)]; }"""


# ---- layout (issue 16, items 11-13 and 15) ------------------------------------------------------------------------

TABLES_JS = """() => [...document.querySelectorAll('.virtual-table-viewport')].filter(e => e.offsetParent)
  .filter(e => e.scrollWidth > e.clientWidth + 2)
  .map(e => ({head: (e.querySelector('thead') || e).innerText.replace(/\\s+/g, ' ').slice(0, 60),
               wide: e.scrollWidth, shown: e.clientWidth}))"""
# a floating block label drawn over a picture of its own block (Gradio's default for images and galleries)
COVERED_JS = """() => { const hit = (a, b) => a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
  const out = [];
  for (const label of document.querySelectorAll('label.float[data-testid="block-label"]')) {
    if (!label.offsetParent) continue;
    const box = label.getBoundingClientRect();
    for (const img of label.closest('.block').querySelectorAll('img'))
      if (img.offsetParent && hit(box, img.getBoundingClientRect())) out.push(label.innerText.trim().slice(0, 40));
  }
  return out; }"""


def test_tables_fit_and_no_label_covers_a_picture_at_1400_px(_page, live_app):
    expect = pytest.importorskip("playwright.sync_api").expect
    page = _page
    goto(page, live_app)
    wide, covered = {}, {}
    for name in ACTIONS:
        _fill_tab(page, name)
        if name == "Tokenizer":  # the comparison table fills on page load
            expect(page.locator("#tok-table")).to_contain_text("lossless", timeout=60_000)
        if name == "BERT":
            expect(page.locator("#bert-lens")).to_contain_text("#5", timeout=60_000)
        wide[name], covered[name] = page.evaluate(TABLES_JS), page.evaluate(COVERED_JS)
    assert not any(wide.values()), f"tables cut off on the right: {wide}"
    assert not any(covered.values()), f"labels drawn over pictures: {covered}"


def test_phone_shows_tabs_examples_and_options_readably(_page, live_app):
    page = _page
    page.set_viewport_size({"width": 390, "height": 844})
    try:
        goto(page, live_app)
        page.get_by_role("tab").first.wait_for(timeout=60_000)
        page.wait_for_timeout(1000)
        visible = page.evaluate("() => [...document.querySelectorAll('[role=tab]')].filter(t => t.offsetParent).length")
        assert visible >= 4, f"only {visible} tabs before the overflow menu"
        for name in ("GPT", "Attention"):
            _open_tab(page, name)
            page.wait_for_timeout(500)
            # every example shows its text on screen (a table left the texts' column empty, off to the right)
            shown = page.evaluate("""() => [...document.querySelectorAll('.gallery-item, button.gallery-item, .gallery button')]
              .filter(e => e.offsetParent)
              .map(e => { const r = e.getBoundingClientRect(); return [e.innerText.trim(), r.left, r.right]; })""")
            assert shown and all(text and left >= 0 and right <= 391 for text, left, right in shown), (name, shown)
        page.screenshot(path=str(ARTIFACTS / "phone-attention-options.png"), full_page=True)
        widths = page.evaluate("""() => [...document.querySelectorAll('.option-row label')].filter(e => e.offsetParent)
          .map(e => [e.innerText.trim().slice(0, 30), e.getBoundingClientRect().width])""")
        assert len(widths) == 3 and all(w >= 200 for _, w in widths), f"Attention's options squashed: {widths}"
    finally:
        page.set_viewport_size({"width": 1400, "height": 1000})
