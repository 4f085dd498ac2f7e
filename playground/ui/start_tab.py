"""The Start tab: the guided path. Each lesson explains one idea, asks for a prediction, records it, then reveals
the answer and why; "Try it" opens the tab that shows it with the inputs filled (the lesson's link).

Progress (each lesson's answer and reveal) is kept in the learner's browser (`gr.BrowserState`), never on the
server; "Reset my progress" empties it. The lessons themselves are `playground.lessons.path`.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from playground.lessons.path import LESSONS, grade, lesson_by_id
from playground.models import ModelLoader
from playground.models.zerogpu import GpuBudget, gpu_task
from playground.ui.common import TabView, bind, launch_alone, on_page_load, user_errors

EXPLAINER = """
### Start here: a guided path through the playground
Sixteen short lessons, from tokens to text-to-image. In each: read the idea, **predict** what the view will show,
lock in your answer, then see the reveal and why. *Try it* opens the tab that shows it, inputs filled and run.
Your answers stay in this browser only.
"""
STORAGE_KEY = "playground-workshop-progress"


def _progress_line(progress: dict) -> str:
    answers = (progress or {}).get("answers", {})
    right = sum(1 for a in answers.values() if a.get("correct"))
    return f"**Progress:** {len(answers)} of {len(LESSONS)} lessons answered, {right} predicted right."


def _answers(progress: Any) -> dict:
    return dict((progress or {}).get("answers", {})) if isinstance(progress, dict) else {}


@user_errors
def on_lesson(lesson_id: str, progress: Any):
    """(concept, question, choices radio, guess box, reveal, lesson link note, progress line) for one lesson; a lesson
    answered before shows its recorded answer and reveal."""
    lesson = lesson_by_id(lesson_id)
    q = lesson.question
    done = _answers(progress).get(lesson.id)
    concept = f"#### {lesson.title}\n{lesson.concept}\n\n**Then try:** {lesson.try_it}"
    question = f"**Predict:** {q.prompt}"
    answer = done["answer"] if done else None
    choice = gr.update(choices=list(q.choices), value=answer if q.choices else None, visible=bool(q.choices))
    guess = gr.update(value=answer if not q.choices and answer else "", visible=not q.choices)
    reveal = _reveal_text(done) if done else "*Your answer is recorded before the reveal.*"
    return concept, question, choice, guess, reveal, _progress_line(progress)


def on_lesson_shown(lesson_id: str, progress: Any, drawn: str | None):
    """on_lesson, plus the lesson now drawn; nothing changes when that lesson is drawn already. A lesson link draws
    its lesson twice (page load, then the picker it sets): the second draw would clear an answer picked in between."""
    if drawn == lesson_id:
        return (gr.skip(),) * 7
    return (*on_lesson(lesson_id, progress), lesson_id)


def on_page_opened(lesson_id: str, progress: Any, drawn: str | None, request: gr.Request):
    """on_lesson_shown for the lesson the page's address names (a lesson link), else the picker's."""
    query = request.query_params if request is not None else {}
    if query.get("tab") == "start" and query.get("lesson") in {le.id for le in LESSONS}:
        lesson_id = query["lesson"]
    return on_lesson_shown(lesson_id, progress, drawn)


def _reveal_text(done: dict) -> str:
    verdict = {True: "✅ You predicted it.", False: "❌ Not what you predicted.", None: ""}[done.get("correct")]
    return f"**Your answer:** {done['answer']}  {verdict}\n\n{done['reveal']}"


@user_errors
def on_reveal(loader: ModelLoader, lesson_id: str, choice: Any, guess: Any, progress: Any):
    """Record the learner's answer, then reveal: (reveal, progress state, progress line)."""
    lesson = lesson_by_id(lesson_id)
    answer = choice if lesson.question.choices else guess
    r = grade(lesson, answer, loader)
    answers = _answers(progress)
    answers[lesson.id] = {"answer": answer.strip(), "correct": r.correct, "reveal": r.text}
    progress = {"answers": answers}
    return _reveal_text(answers[lesson.id]), progress, _progress_line(progress)


def on_next(lesson_id: str) -> str:
    ids = [le.id for le in LESSONS]
    i = ids.index(lesson_id) if lesson_id in ids else -1
    return ids[min(i + 1, len(ids) - 1)]


def build_start_tab(loader: ModelLoader) -> TabView:
    """The guided path (no API endpoint: it is a page of lessons over the other tabs)."""
    with gr.Column():
        gr.Markdown(EXPLAINER)
        progress = gr.BrowserState({"answers": {}}, storage_key=STORAGE_KEY)
        progress_line = gr.Markdown(elem_id="start-progress")
        lesson = gr.Dropdown([(le.title, le.id) for le in LESSONS], value=LESSONS[0].id, label="Lesson", elem_id="start-lesson")
        concept = gr.Markdown(elem_id="start-concept")
        question = gr.Markdown(elem_id="start-question")
        choice = gr.Radio([], label="Your prediction", elem_id="start-choice")
        guess = gr.Textbox(label="Your guess (one token)", max_length=50, visible=False, elem_id="start-guess")
        reveal_btn = gr.Button("Lock in my answer and reveal", variant="primary", elem_id="start-reveal-btn")
        reveal_md = gr.Markdown(elem_id="start-reveal")
        with gr.Row():
            try_btn = gr.Button("Try it: open the tab, inputs filled", elem_id="start-try")
            next_btn = gr.Button("Next lesson →", elem_id="start-next")
        reset = gr.Button("Reset my progress", size="sm", elem_id="start-reset")

        shown = [concept, question, choice, guess, reveal_md, progress_line]
        drawn = gr.State(None)  # the lesson id on the page now
        lesson.change(on_lesson_shown, [lesson, progress, drawn], [*shown, drawn], api_visibility="private", queue=False)
        on_page_load(on_page_opened, [lesson, progress, drawn], [*shown, drawn], api_visibility="private", queue=False)
        reveal = gpu_task(bind(on_reveal, loader), GpuBudget(30))  # three reveals run a model on the page's device
        for trigger in (reveal_btn.click, guess.submit):
            trigger(reveal, [lesson, choice, guess, progress], [reveal_md, progress, progress_line], api_visibility="private")
        next_btn.click(on_next, [lesson], [lesson], api_visibility="private", queue=False)
        reset.click(lambda: {"answers": {}}, None, progress, api_visibility="private", queue=False).then(
            on_lesson, [lesson, progress], shown, api_visibility="private", queue=False)
    return TabView(inputs={"lesson": lesson}, opens=(lesson, try_btn))


if __name__ == "__main__":  # run this tab on its own
    launch_alone(build_start_tab)
