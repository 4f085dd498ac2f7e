"""The workshop in a real browser: the whole guided path through its lesson links, lesson links for every tab,
a hostile link refused, "link to this view", a keyboard-only lesson, and the Start tab on a 390 px phone.
Screenshots per lesson land in test-artifacts/workshop/."""

from __future__ import annotations

import pytest

from playground.lessons.path import LESSONS
from tests.conftest import ARTIFACTS
from tests.test_browser import goto
from tests.test_browser import page as _page  # noqa: F401  (the fixture's browser setup)

pytestmark = pytest.mark.browser
SHOTS = ARTIFACTS / "workshop"
TAB_NAMES = {"start": "Start", "tokenizer": "Tokenizer", "attention": "Attention", "inside": "Inside", "interventions": "Interventions",
             "gpt": "GPT", "bert": "BERT", "t5": "T5", "diffusion": "Diffusion", "text-to-image": "Text-to-image", "training": "Training",
             "models": "Models"}
# per tab: a lesson link, the input it fills (a selector) and the value the input must show
FILLED = {
    "tokenizer": ("?tab=tokenizer&text=Hello%20workshop&tokenizers=gpt2", "#tok-text textarea", "Hello workshop"),
    "attention": ("?tab=attention&model=gpt2&text=The%20cat%20sat&layer=3&head=2", "#att-text textarea", "The cat sat"),
    "inside": ("?tab=inside&model=gpt2&text=The%20king%20is%20dead&layer=1&head=2", "#ins-text textarea", "The king is dead"),
    "interventions": ("?tab=interventions&model=gpt2&text=I%20am%20Lord%20Angelo%27s%20man.%20Lord&heads=3.2", "#iv-text textarea",
                      "I am Lord Angelo's man. Lord"),
    "gpt": ("?tab=gpt&model=gpt2&prompt=To%20be%20or%20not&max_new=5", "#gpt-prompt textarea", "To be or not"),
    "bert": ("?tab=bert&text=The%20%5BMASK%5D%20is%20dead.", "#bert-text textarea", "The [MASK] is dead."),
    "t5": ("?tab=t5&text=sort%20numbers%3A%203%201%202&beams=2", "#t5-text textarea", "sort numbers: 3 1 2"),
    "diffusion": ("?tab=diffusion&t=600&prompt=Sneaker&steps=5", "#dif-prompt textarea", "Sneaker"),
    "text-to-image": ("?tab=text-to-image&prompt=a%20large%20red%20circle&steps=5", "#t2i-prompt textarea", "a large red circle"),
    "training": ("?tab=training&dataset=spiral&steps=300", "#trn-toy-steps input[type=number]", "300"),
    "models": ("?tab=models", None, None),
    "start": ("?tab=start&lesson=latent", "#start-concept", "19. Latent diffusion"),
}


def _open(page, url: str) -> None:
    goto(page, url)
    page.get_by_role("tab", name="Models").wait_for(timeout=60_000)


def _selected(page, tab: str) -> bool:
    return page.get_by_role("tab", name=TAB_NAMES[tab], exact=True).get_attribute("aria-selected") == "true"


def _answer(page, lesson) -> str:
    q = lesson.question
    if q.choices:
        pick = q.answer or q.choices[0]
        page.locator("#start-choice label", has_text=pick).first.click()
        return pick
    guess = "ears" if q.sample_guess == "the" else q.sample_guess  # a head's "layer.head" for lesson 12
    page.locator("#start-guess textarea, #start-guess input").first.fill(guess)
    return guess


def test_the_whole_path_from_first_lesson_to_last_through_its_links(_page, live_app):
    expect = pytest.importorskip("playwright.sync_api").expect
    page = _page
    SHOTS.mkdir(parents=True, exist_ok=True)
    _open(page, live_app + "?tab=start&lesson=tokens")
    page.locator("#start-reset").click()  # a fresh learner
    expect(page.locator("#start-progress")).to_contain_text(f"0 of {len(LESSONS)}", timeout=30_000)
    for n, lesson in enumerate(LESSONS, 1):
        _open(page, live_app + f"?tab=start&lesson={lesson.id}")  # the lesson's own link
        expect(page.locator("#start-concept")).to_contain_text(lesson.title, timeout=30_000)
        before = page.locator("#start-reveal").inner_text()
        assert "Your answer is recorded before the reveal" in before and "Your answer:" not in before  # nothing revealed yet
        answer = _answer(page, lesson)
        page.locator("#start-reveal-btn").click()
        expect(page.locator("#start-reveal")).to_contain_text(f"Your answer: {answer}", timeout=120_000)
        expect(page.locator("#start-progress")).to_contain_text(f"{n} of {len(LESSONS)}", timeout=30_000)
        page.screenshot(path=str(SHOTS / f"{n:02d}-{lesson.id}-reveal.png"), full_page=True)
        page.locator("#start-try").click()  # opens the lesson's tab, inputs filled, and runs it
        page.wait_for_function(f"() => document.querySelector('#tab-{lesson.tab}') && "
                               f"getComputedStyle(document.querySelector('#tab-{lesson.tab}')).display !== 'none'", timeout=30_000)
        assert _selected(page, lesson.tab), lesson.id
        page.wait_for_timeout(1500)
        page.screenshot(path=str(SHOTS / f"{n:02d}-{lesson.id}-tab.png"))
    _open(page, live_app)
    expect(page.locator("#start-progress")).to_contain_text(f"{len(LESSONS)} of {len(LESSONS)}", timeout=30_000)  # kept across reloads


@pytest.mark.parametrize("tab", list(FILLED))
def test_a_lesson_link_opens_each_tab_with_its_inputs_filled(_page, live_app, tab):
    expect = pytest.importorskip("playwright.sync_api").expect
    page = _page
    query, selector, value = FILLED[tab]
    _open(page, live_app + query)
    expect(page.locator("#link-notice")).to_contain_text(f"the {tab} tab", timeout=30_000)
    expect(page.get_by_role("tab", name=TAB_NAMES[tab], exact=True)).to_have_attribute("aria-selected", "true", timeout=30_000)
    if selector:
        target = page.locator(selector).first
        if selector.endswith("textarea") or "input" in selector:
            expect(target).to_have_value(value, timeout=30_000)
        else:
            expect(target).to_contain_text(value, timeout=30_000)
    if tab == "attention":  # the run the link started fits the sliders to the model, then shows the link's layer and head
        expect(page.locator("#att-notice")).to_contain_text("Running gpt2", timeout=120_000)
        expect(page.locator("#att-layer input[type=number]")).to_have_value("3", timeout=30_000)
        expect(page.locator("#att-head input[type=number]")).to_have_value("2", timeout=30_000)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"link-{tab}.png"))


def test_a_hostile_link_is_refused_and_runs_nothing(_page, live_app):
    expect = pytest.importorskip("playwright.sync_api").expect
    page = _page
    _open(page, live_app + "?tab=attention&model=..%2F..%2Fetc%2Fpasswd&text=%3Cscript%3Ealert(1)%3C%2Fscript%3E")
    expect(page.locator("#link-notice")).to_contain_text("This link cannot be opened: model must be one of", timeout=30_000)
    assert _selected(page, "start") and not _selected(page, "attention")
    page.get_by_role("tab", name="Attention").click()  # nothing of the link was filled in
    expect(page.locator("#att-text textarea")).to_have_value("The animal didn't cross the street because it was too tired.", timeout=30_000)


def test_link_to_this_view_reopens_what_is_on_screen(_page, live_app):
    expect = pytest.importorskip("playwright.sync_api").expect
    page = _page
    _open(page, live_app + "?tab=t5&text=reverse%20words%3A%20a%20b%20c&beams=2")
    expect(page.locator("#t5-text textarea")).to_have_value("reverse words: a b c", timeout=30_000)
    page.locator("#t5-text textarea").fill("sort numbers: 9 4 7")
    page.locator("#t5-link-btn").click()
    box = page.locator("#t5-link textarea, #t5-link input").first
    expect(box).to_have_value(live_app.rstrip("/") + "/?tab=t5&model=t5-small&text=sort%20numbers%3A%209%204%207&beams=2&max_new=32",
                              timeout=30_000)
    _open(page, box.input_value())
    expect(page.locator("#t5-text textarea")).to_have_value("sort numbers: 9 4 7", timeout=30_000)
    assert _selected(page, "t5")


def test_a_lesson_runs_from_the_keyboard_alone_with_visible_focus(_page, live_app):
    expect = pytest.importorskip("playwright.sync_api").expect
    page = _page
    _open(page, live_app + "?tab=start&lesson=causal")
    expect(page.locator("#start-concept")).to_contain_text("Causal", timeout=30_000)
    page.locator("body").click(position={"x": 5, "y": 5})

    def tab_to(selector: str, limit: int = 80) -> None:
        for _ in range(limit):
            page.keyboard.press("Tab")
            if page.evaluate("(s) => !!document.activeElement && !!document.activeElement.closest(s)", selector):
                return
        raise AssertionError(f"Tab never reached {selector}")

    tab_to("#start-choice input[value='No']")  # Gradio's options are tab stops of their own
    page.keyboard.press("Space")
    expect(page.locator("#start-choice input[value='No']")).to_be_checked(timeout=10_000)
    tab_to("#start-reveal-btn")
    outline = page.evaluate(
        "() => getComputedStyle(document.activeElement).outlineStyle + ' ' + getComputedStyle(document.activeElement).outlineWidth"
    )
    assert not outline.startswith("none") and not outline.endswith(" 0px"), f"no visible focus on the button: {outline}"
    page.keyboard.press("Enter")
    expect(page.locator("#start-reveal")).to_contain_text("Your answer: No", timeout=30_000)
    tab_to("#start-try")
    page.keyboard.press("Enter")
    page.wait_for_timeout(1000)
    assert _selected(page, "attention")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "keyboard-lesson.png"))


def test_the_start_tab_fits_a_phone(_page, live_app):
    expect = pytest.importorskip("playwright.sync_api").expect
    page = _page
    page.set_viewport_size({"width": 390, "height": 844})
    try:
        goto(page, live_app + "?tab=start&lesson=decoder")  # a phone folds most tabs into a menu
        expect(page.locator("#start-concept")).to_contain_text("GPT", timeout=60_000)
        assert page.evaluate("() => document.documentElement.scrollWidth") <= 391
        for sel in ("#start-lesson", "#start-guess", "#start-reveal-btn", "#start-try", "#start-next"):
            box = page.locator(sel).first.bounding_box()
            assert box and box["x"] >= 0 and box["x"] + box["width"] <= 391, f"{sel} off screen: {box}"
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "phone-start.png"), full_page=True)
    finally:
        page.set_viewport_size({"width": 1400, "height": 1000})


def test_guess_the_next_token_keeps_a_score_against_the_model(_page, live_app):
    expect = pytest.importorskip("playwright.sync_api").expect
    page = _page
    _open(page, live_app + "?tab=gpt")
    page.locator("#gpt-game").get_by_text("Guess the next token").first.click()  # open the accordion
    page.locator("#gpt-game-new").click()
    expect(page.locator("#gpt-game-context")).to_contain_text("F·ri·ends, R·om·…?", timeout=60_000)  # the pieces shown, the word to finish
    page.locator("#gpt-game-guess textarea, #gpt-game-guess input").first.fill("ears")
    page.locator("#gpt-game-go").click()
    expect(page.locator("#gpt-game-round")).to_contain_text("The next token was", timeout=60_000)
    expect(page.locator("#gpt-game-score")).to_contain_text("Score after 1 token", timeout=30_000)
    expect(page.locator("#gpt-game-score")).to_contain_text("2212.11281")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.locator("#gpt-game").screenshot(path=str(SHOTS / "guess-the-next-token.png"))
