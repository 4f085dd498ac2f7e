"""The workshop: lesson links (parsing, refusal, the page's own limits), the lessons and their reveals, the
guess-the-next-token game against the model's own logits, and the instructor's offline check."""

from __future__ import annotations

import pytest

from playground.config import Settings
from playground.lessons import game
from playground.lessons import links as lesson_links
from playground.lessons.path import LESSONS, grade, lesson_by_id
from playground.ui import build_app
from playground.ui.links import view_link
from playground.ui.shell import TABS


@pytest.fixture(scope="module")
def specs():
    """Every tab's link inputs, read from the widgets of the real app (built, not launched)."""
    return build_app(Settings(offline=True, device="cpu")).link_specs


def test_every_tab_takes_links_and_the_lessons_cover_every_tab(specs):
    assert list(specs) == [t.id for t in TABS]
    covered = {lesson.tab for lesson in LESSONS}
    assert covered == {t.id for t in TABS} - {"start"}, "a tab without a lesson (or a lesson for a tab that is gone)"
    assert specs["attention"]["layer"].kind == "int" and specs["attention"]["model"].choices == ("bert-base-uncased", "gpt2", "t5-small")


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda le: le.id)
def test_every_lesson_link_reads_back_against_the_page_limits(lesson, specs):
    link = lesson_links.parse(lesson.query(specs), specs)
    assert link.tab == lesson.tab and link.values == lesson.link


def test_the_issue_example_link_opens(specs):
    link = lesson_links.parse("?tab=attention&model=gpt2&text=The%20cat%20sat&layer=3&head=5", specs)
    assert link == lesson_links.Link("attention", {"model": "gpt2", "text": "The cat sat", "layer": 3, "head": 5})
    assert lesson_links.parse("", specs) is None  # no query: nothing to open


@pytest.mark.parametrize("query", ["?foo=bar", "?utm_source=newsletter", "?__theme=dark", "?model=gpt2", "?view=api"])
def test_an_address_that_names_no_tab_is_the_page_as_it_is(query, specs):
    """Any extra parameter (a tracking tag, Gradio's own ?__theme=dark) showed 'This link cannot be opened: it names no
    tab' (learner walk, item 15): an address without ?tab= is no lesson link, and opens the page as it is."""
    assert lesson_links.parse(query, specs) is None


@pytest.mark.parametrize("query, says", [
    ("tab=inside&layer=3&model=bert-base-uncased", "it asks for layer 3, and bert-base-uncased has 3 layers (0 to 2)"),
    ("tab=attention&layer=12&head=12", "it asks for layer 12, and bert-base-uncased has 3 layers (1 to 3)"),
    ("tab=inside&model=gpt2&head=9", "head must be from 0 to 3 (got 9)"),  # past the slider itself: refused as before
])
def test_a_link_naming_a_layer_or_head_the_model_lacks_is_refused_before_anything_runs(query, says):
    """`?tab=attention&layer=12&head=12` said 'Opened... inputs filled' and showed layer 1, head 1; an Inside link with a
    layer the offline BERT lacks opened and then failed (learner walk, items 3 and 15): refuse, fill nothing, run nothing."""
    from types import SimpleNamespace

    from starlette.datastructures import QueryParams

    app = build_app(Settings(offline=True, device="cpu"))
    updates = app.link_wiring.open_query(SimpleNamespace(query_params=QueryParams(query)))
    notices = [u for u in updates if isinstance(u, str) and "cannot be opened" in u]
    assert notices and says in notices[0], updates
    opened = app.link_wiring.open_query(SimpleNamespace(query_params=QueryParams("tab=inside&layer=1&model=bert-base-uncased")))
    assert any(isinstance(u, str) and "Opened a lesson link" in u for u in opened)


def test_a_lesson_link_keeps_working_with_a_tracking_tag_or_a_theme(specs):
    link = lesson_links.parse("?tab=gpt&model=gpt2&utm_source=newsletter&__theme=dark", specs)
    assert link.tab == "gpt" and link.values == {"model": "gpt2"}


@pytest.mark.parametrize("query, says", [
    ("?tab=admin", "no tab 'admin'"),
    ("?tab=attention&exec=rm%20-rf", "has no input 'exec'"),
    ("?tab=attention&model=../../etc/passwd", "model must be one of"),
    ("?tab=attention&model=evil/remote-code", "model must be one of"),
    ("?tab=attention&layer=99", "layer must be from 1 to"),
    ("?tab=attention&layer=2.5", "whole number"),
    ("?tab=attention&layer=nan", "whole number"),
    ("?tab=gpt&seed=1e99", "seed must be from"),
    ("?tab=gpt&max_new=abc", "must be a number"),
    ("?tab=gpt&tab=bert", "appears more than once"),
    ("?tab=tokenizer&tokenizers=gpt2,evil", "comma-separated list"),
    ("?tab=tokenizer&text=" + "a" * 5000, "characters long"),
    ("?tab=t5&text=%00%01", "control characters"),
])
def test_hostile_links_are_refused_with_what_is_wrong(query, says, specs):
    with pytest.raises(lesson_links.LinkError, match="This link cannot be opened") as err:
        lesson_links.parse(query, specs)
    assert says in str(err.value)


def test_link_to_this_view_writes_what_is_on_screen_and_leaves_out_what_a_link_cannot_carry(specs):
    names = ["model", "text", "target", "layer", "head"]
    query = view_link("attention", names, specs, "gpt2", "The cat sat", "", 3.0, 2.0)
    assert lesson_links.parse(query, specs).values == {"model": "gpt2", "text": "The cat sat", "layer": 3, "head": 2}
    custom = view_link("attention", names, specs, "someone/custom-model", "Hi", "", 1, 1)
    assert "model=" not in custom.splitlines()[0] and "left out" in custom and "model" in custom.splitlines()[1]


@pytest.mark.parametrize("lesson", [le for le in LESSONS if le.question.live is None], ids=lambda le: le.id)
def test_static_reveals_grade_the_right_answer_right_and_the_others_wrong(lesson):
    q = lesson.question
    assert q.answer in q.choices and q.why
    assert grade(lesson, q.answer).correct is True
    for other in q.choices:
        if other != q.answer:
            r = grade(lesson, other)
            assert r.correct is False and q.answer in r.text


@pytest.mark.parametrize("answer, says", [("", "Make your prediction first"), ("Maybe", "Pick one of"), (None, "Make your prediction")])
def test_an_answer_is_required_before_the_reveal(answer, says):
    with pytest.raises(Exception, match=says):
        grade(lesson_by_id("causal"), answer)


def test_live_reveals_compute_on_the_page_models(shared_loader):
    from playground.core.diffusion.schedule import noise_schedule

    signal = grade(lesson_by_id("noising"), "about 0.3", shared_loader)
    assert signal.correct is True and f"{float(noise_schedule('linear').alphas_cumprod[500]) ** 0.5:.3f}" in signal.text
    tokens = grade(lesson_by_id("tokens"), "GPT-2 BPE", shared_loader)
    assert "| GPT-2 BPE |" in tokens.text and "| T5 SentencePiece |" in tokens.text and tokens.correct in (True, False)
    nxt = grade(lesson_by_id("decoder"), "ears", shared_loader)
    assert "your guess 'ears' is the model's **#" in nxt.text


def test_the_head_lesson_reveals_the_sweeps_answer_on_the_model_that_runs(shared_loader):
    """Lesson 12 (interventions): offline the embedded GPT predicts " Angelo" and head 3.2's knock-out costs it the most
    (its sweep, tests/test_interventions.py checks the sweep itself)."""
    from playground.errors import InputError

    right = grade(lesson_by_id("heads"), "3.2", shared_loader)
    assert right.correct is True and "'Angelo'" in right.text and "ranks **#1** of 16" in right.text
    wrong = grade(lesson_by_id("heads"), "0.0", shared_loader)
    assert wrong.correct is False and "head **3.2**" in wrong.text
    with pytest.raises(InputError, match="not in this model"):
        grade(lesson_by_id("heads"), "9.9", shared_loader)


def test_lesson_two_opens_inside_on_the_word_it_asks_about(shared_loader):
    """Lesson 2 is about "king", but its link opened Inside on the query token "." (learner walk, item 14): the query is
    the last token, so the text now ends on "king"."""
    from playground.models import Family

    tokenizer = shared_loader.load("gpt2", Family.TOKENIZER).tokenizer
    ids = tokenizer(lesson_by_id("embeddings").link["text"])["input_ids"]
    assert tokenizer.decode(ids[-1:]).strip() == "king" and sum(tokenizer.decode([i]).strip() == "king" for i in ids) == 2


def test_lesson_one_says_which_tokenizers_the_room_runs(shared_loader):
    """Its reveal said the offline tokenizers were the embedded models' own, trained on Shakespeare; they are the real
    vendored ones (50,257 tokens for GPT-2: 'un·bel·iev·ably') (learner walk, item 7)."""
    from playground.models import Family

    tokens = grade(lesson_by_id("tokens"), "GPT-2 BPE", shared_loader)
    assert "Shakespeare" not in tokens.text and "real GPT-2, BERT and T5 tokenizers" in tokens.text
    assert len(shared_loader.load("gpt2", Family.TOKENIZER).tokenizer) == 50257  # the real vocabulary, as the reveal says
    assert "| GPT-2 BPE | 4 | un · bel · iev · ably |" in tokens.text


@pytest.fixture(scope="module")
def gpt(shared_loader):
    from playground.models import Family

    lm = shared_loader.load("gpt2", Family.CAUSAL_LM)
    return lm.model, lm.tokenizer


def test_the_game_ranks_a_guess_as_the_model_own_logits_do(gpt):
    import torch

    model, tok = gpt
    context = game.PASSAGES[0].text[:40]
    ids = tok(context)["input_ids"]
    with torch.no_grad():
        probs = torch.softmax(model(torch.tensor([ids])).logits[0, -1], -1)
    order = probs.argsort(descending=True)
    third = tok.decode([int(order[2])])
    g = game.next_token_guess(model, tok, context, third)
    assert [t for t, _ in g.top[:3]] == [tok.decode([int(i)]) for i in order[:3]]
    assert g.rank <= 3 and g.probability >= float(probs[order[2]]) * (1 - 1e-5)  # its own id, or a case variant ranked higher
    assert game.next_token_guess(model, tok, context, "zzzzqqqq").rank is None


def test_a_game_scores_the_learner_and_the_model_on_the_real_next_token(gpt):
    model, tok = gpt
    score = game.new_game(1)
    ids = tok(game.PASSAGES[1].text, add_special_tokens=False)["input_ids"]
    actual = tok.decode([ids[score.position]])
    r = game.play(model, tok, score, actual)  # the learner types the real token
    assert r.you_right and r.score.you == 1 and r.score.rounds == 1 and r.score.position == score.position + 1
    assert r.model_right == (game.normalize(r.guess.top[0][0]) == game.normalize(actual)) and r.score.model == int(r.model_right)
    wrong = game.play(model, tok, r.score, "xylophone")
    assert not wrong.you_right and wrong.score.you == 1 and wrong.score.rounds == 2
    with pytest.raises(Exception, match="passage must be"):
        game.new_game(99)
    assert "2212.11281" in game.STUDY


def test_the_game_shows_where_tokens_begin_inside_a_word(shared_loader):
    """'Friends, Rom…?' with the answer 'ans' played sub-word pieces while the rules said 'a word' (learner walk, item 13):
    the passage now shows the pieces of a split word with a ·, ends with one when the token to guess is the rest of a
    word, and the rules say what a token is."""
    from dataclasses import replace

    from playground.models import Family
    from playground.ui import gpt_tab

    tokenizer = shared_loader.load("gpt2", Family.TOKENIZER).tokenizer
    ids = game._ids(tokenizer, game.PASSAGES[1].text)
    faces = [game._decode(tokenizer, [i]) for i in ids]
    k = next(k for k in range(1, len(faces)) if game._joins(faces[k - 1], faces[k]))  # the first token that continues a word
    shown = gpt_tab._game_context(tokenizer, replace(game.new_game(1), position=k))
    assert f"{faces[k - 1].strip()}{game.PIECE}<strong>…?</strong>" in shown  # "Br·…?": guess the rest of the word
    whole = gpt_tab._game_context(tokenizer, replace(game.new_game(1), position=k + 1))
    assert f"{faces[k - 1].strip()}{game.PIECE}{faces[k]}" in whole  # once played, the word shows its pieces


def test_game_handlers_keep_score_in_the_session(shared_loader):
    from playground.ui import gpt_tab

    state, context, last, line = gpt_tab.on_game_new(shared_loader, "gpt2", 0)
    assert "Friends" in context.replace(game.PIECE, "") and "no guesses yet" in line and "2212.11281" in line
    state, context, report, line, box = gpt_tab.on_game_guess(shared_loader, "gpt2", state, "ears")
    assert state["rounds"] == 1 and "The next token was" in report and "Score after 1 token" in line and box == ""


def test_workshop_check_fails_clearly_when_a_preset_cannot_resolve(tmp_path):
    import io
    import shutil

    from playground.config import ASSETS_DIR
    from playground.workshop.__main__ import run_check

    assets = tmp_path / "assets"
    shutil.copytree(ASSETS_DIR / "tokenizers", assets / "tokenizers")  # the tokenizers are there; every model is missing
    (assets / "models" / "sd-shapes").mkdir(parents=True)  # an empty folder: there, but no model in it
    out = io.StringIO()
    assert run_check(Settings(offline=True, device="cpu", assets_dir=assets), lessons=False, out=out) is False
    text = out.getvalue()
    assert "ok   gpt2 (tokenizer)" in text
    assert "FAIL gpt2 (causal-lm): does not resolve" in text and "python -m playground.train.gpt" in text
    assert "FAIL segmind/tiny-sd (latent-diffusion): embedded folder" in text and "has no model files" in text
    assert "check(s) FAILED" in text


@pytest.mark.slow
def test_workshop_check_passes_offline_through_every_lesson(capsys):
    from playground.workshop.__main__ import main

    assert main(["check"]) == 0 or pytest.fail(capsys.readouterr().out)
    out = capsys.readouterr().out
    assert "All checks passed." in out and out.count("\n  ok   ") >= len(LESSONS) + 8


def test_the_readme_lessons_table_is_current(specs):
    from playground.readme_blocks import read_block
    from playground.workshop.__main__ import lessons_table

    assert read_block("lessons") == lessons_table(specs), "run: python -m playground.workshop lessons --write"


def test_the_start_tab_records_the_answer_then_reveals_and_remembers_it(shared_loader):
    from playground.ui import start_tab

    concept, question, choice, guess, reveal, line = start_tab.on_lesson("causal", {"answers": {}})
    assert "4. Causal" in concept and "Predict" in question and "recorded before the reveal" in reveal and f"0 of {len(LESSONS)}" in line
    assert choice["visible"] is True and guess["visible"] is False
    shown, progress, line = start_tab.on_reveal(shared_loader, "causal", "No", "", {"answers": {}})
    assert progress["answers"]["causal"]["answer"] == "No" and progress["answers"]["causal"]["correct"] is True
    assert "✅" in shown and f"1 of {len(LESSONS)} lessons answered, 1 predicted right" in line
    again = start_tab.on_lesson("causal", progress)  # back to it later: the recorded answer and its reveal, no new prediction asked
    assert again[2]["value"] == "No" and "**Your answer:** No" in again[4]
    typed = start_tab.on_lesson("decoder", progress)
    assert typed[2]["visible"] is False and typed[3]["visible"] is True
    assert start_tab.on_next("causal") == "cross-attention" and start_tab.on_next(LESSONS[-1].id) == LESSONS[-1].id
    with pytest.raises(Exception, match="Make your prediction first"):
        start_tab.on_reveal(shared_loader, "causal", None, "", progress)


def test_a_lesson_drawn_again_by_its_link_keeps_the_answer_picked_in_between():
    import gradio as gr

    from playground.ui import start_tab

    first = start_tab.on_lesson_shown("causal", {"answers": {}}, None)  # the page load draws the link's lesson
    assert "4. Causal" in first[0] and first[-1] == "causal"
    again = start_tab.on_lesson_shown("causal", {"answers": {}}, "causal")  # then the picker the link set: nothing redrawn
    assert len(again) == len(first) and all(x == gr.skip() for x in again)  # an update that changes nothing
    other = start_tab.on_lesson_shown("decoder", {"answers": {}}, "causal")
    assert other[-1] == "decoder" and other[2]["choices"] == []
