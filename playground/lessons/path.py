"""The guided path: lessons in the concepts' order, each a predict-then-reveal question and a lesson link.

A lesson explains one idea, asks the learner to predict what a view will show, and only then reveals the
answer and why; its link opens the tab that shows it, inputs filled. Four reveals are computed live on the
models the page runs (which tokenizer splits a word more, the model's next-token distribution and your
guess's rank, the head a prediction depends on most, how much signal the noise schedule leaves); the rest
are facts of the architecture, true of any model of its kind.

>>> [lesson.tab for lesson in LESSONS][:3]
['tokenizer', 'inside', 'attention']
>>> grade(lesson_by_id("attention"), "1").correct
True
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from playground.errors import InputError

MAX_ANSWER_CHARS = 200  # a typed guess


@dataclass(frozen=True)
class Reveal:
    correct: bool | None  # whether the prediction was right (None: a guess that is scored, not right or wrong)
    text: str  # markdown: the answer, and why


@dataclass(frozen=True)
class Question:
    prompt: str  # what the learner predicts
    choices: tuple[str, ...] = ()  # the options; empty: the learner types a guess
    answer: str | None = None  # the right option (None: computed live by `live`)
    why: str = ""  # markdown shown with the answer
    live: Callable[[Any, str], Reveal] | None = None  # live(loader, answer): the reveal computed on the page's models
    sample_guess: str = "the"  # a typed guess the workshop check reveals with (a question without choices)


@dataclass(frozen=True)
class Lesson:
    id: str  # the lesson's key (?tab=start&lesson=<id>)
    title: str  # shown in the lesson list
    tab: str  # the tab its link opens
    concept: str  # markdown: the idea, in a few sentences
    try_it: str  # what to look at once the tab opens
    question: Question
    link: dict[str, Any] = field(default_factory=dict)  # the tab's inputs its link fills

    def query(self, specs: Any) -> str:
        """The lesson link's query string, checked against the page's inputs (`specs`: tab -> its link inputs)."""
        from playground.lessons.links import Link, to_query

        return to_query(Link(self.tab, dict(self.link)), specs)


# ---- live reveals: computed on the models the page runs --------------------------------------------------

# Measured, and re-measured by the lessons' tests (tests/test_lessons.py) on the page's own runs:
FLOW_WHY = ("Measured on the two moons with the defaults (2,000 steps each, seed 0): with 4 steps the flow's samples lie 0.058 from "
            "held-out data (fresh data: 0.018), the DDPM-trained model's with 4 DDIM steps 1.21, twenty times farther; with 8 steps "
            "0.030 against 0.24; DDIM needs about 100 steps to come within 0.04. The flow's paths bend less (a path's length over "
            "the straight distance from start to end: 1.74 against DDIM's 2.33), so a few long Euler steps follow them; and DDIM's "
            "first jump out of pure noise divides by √ᾱ_T, nearly 0 (with one or two steps it lands dozens of units away). This is "
            "why Stable Diffusion 3 and Flux sample in fewer steps.")
VARIATIONS_WHY = ("The decoder reads only the picture's CLIP image embedding (its caption is empty), and CLIP's space knows colours and "
                  "shapes: clip-shapes reads them zero-shot 99-100% right. Measured on unclip-shapes: variations of one-object "
                  "pictures keep the colour 100.0% of the time and the shape with it 96.5% while the pixels change (10.8 of 255 on "
                  "average); the place only 83.5%; of the model's own pictures too, the colour 100.0% (now and then a blurred circle "
                  "of its own comes back as a square); and a two-object picture's relation only 15.0%: CLIP barely records which "
                  "object is where.")
WHAT_RUNS_HUB = "segmind/tiny-sd itself, from the Hub"
WHAT_RUNS_EMBEDDED = "sd-shapes, the embedded stand-in trained here"


def _what_runs(loader: Any, answer: str) -> Reveal:
    from playground.models import Family, SourceKind

    source = loader.resolve("segmind/tiny-sd", Family.LATENT_DIFFUSION)
    embedded = source.kind is SourceKind.EMBEDDED
    text = (f"Here it resolves to **{source.describe()}**. "
            + ("The Hub cannot be reached (or the page runs offline), so the id loads the embedded sd-shapes: a Stable-Diffusion-"
               "shaped model of coloured shapes, 32x32 pictures, trained by `python -m playground.train.shapes`. "
               if embedded else "The Hub is reachable, so the real model loads (and is cached). ")
            + "The Models tab lists every preset this way, and each tab's status line names the model that ran.")
    return Reveal(answer == (WHAT_RUNS_EMBEDDED if embedded else WHAT_RUNS_HUB), text)


DESIGNS_PROMPT = "a red circle left of a blue square"
DESIGN_NAMES = ("Stable Diffusion", "DALL-E 2", "Imagen", "DALL-E 3", "alt text (DALL-E 3's baseline)")  # designs.DESIGNS' names
NO_DESIGN_WRONG = "None: every design draws it right"


def _designs_reveal(loader: Any, answer: str) -> Reveal:
    """The prompt through every design on the page's models (the Designs section's run: seed 0, 50 steps, guidance 5), and
    each model's card figure for two objects and their relation over 200 prompts."""
    from playground.core.diffusion import designs
    from playground.train import common

    rows, wrong, missing = [], [], []
    for o in designs.outcomes(loader, designs.DesignsRequest(DESIGNS_PROMPT, 0, 50, 5.0)):
        folder = common.MODELS_DIR / ("sd-shapes" if o.design.key == "dalle3" else o.design.model)
        figure = common.load_metrics(folder).get("grammar", {}).get("two_objects")
        card = f"{figure:.0%}" if figure is not None else "not measured"
        if o.picture is None:
            missing.append(o.design.name)
            rows.append(f"| {o.design.name} | {o.design.model} | not built here | {card} |")
            continue
        right = bool(o.checker["relation"])
        if not right:
            wrong.append(o.design.name)
        rows.append(f"| {o.design.name} | {o.design.model} | {'✓ right' if right else '✗ wrong'} | {card} |")
    said = ("**" + ", ".join(wrong) + "** drew it wrong" if wrong else "**Every design** drew it right") + " at seed 0."
    text = (f"{said}\n\n| design | model | this picture | two objects right over 200 prompts (its card) |\n|---|---|---|---|\n"
            + "\n".join(rows) + "\n\nOne picture is an anecdote; the cards' figures are the measurement. Where the designs differ: "
            "DALL-E 2's decoder leans on CLIP's image embedding, which barely records which object is where; the alt-text model "
            "saw the relation words in only a fifth of its captions; Imagen's frozen T5 never learned these words with pictures. "
            "Try other seeds, and a terse prompt, in the Designs section."
            + (f" ({', '.join(missing)}: not built on this machine.)" if missing else ""))
    correct = answer in wrong if wrong else answer == NO_DESIGN_WRONG
    return Reveal(correct, text)


MAPS_PROMPT = "a large red circle on the left"
MAPS_MODELS = {  # choice -> (the Text-to-image tab's model, its family, its embedded folder)
    "sd-shapes": ("segmind/tiny-sd", "latent-diffusion", "sd-shapes"),
    "imagen-shapes": ("assets/models/imagen-shapes", "diffusion", "imagen-shapes"),
}


def _maps_reveal(loader: Any, answer: str) -> Reveal:
    """The link's prompt on both models (seed 0, 50 steps, guidance 5, as their cards measure): the share of the colour
    and the shape word's maps on the drawn object, and each card's figure over 40 prompts."""
    from playground.models.sources import SourceError
    from playground.train import common, shapes_eval

    rows, ratios = [], {}
    for name, (preset, family, folder) in MAPS_MODELS.items():
        card = common.load_metrics(common.MODELS_DIR / folder).get("word_maps", {})
        figure = f"{card['shape_word_at_bar']:.0%}" if "shape_word_at_bar" in card else "not measured"
        try:
            components = loader.load(preset, family).components
        except SourceError:
            rows.append(f"| {name} | not built here | | | {figure} |")
            continue
        on = shapes_eval.words_on_object(components, MAPS_PROMPT, seed=0, steps=50, guidance=5.0)
        if on is None:
            rows.append(f"| {name} | drew nothing the checker reads | | | {figure} |")
            continue
        ratios[name] = on.shape / on.area
        rows.append(f"| {name} | {on.colour:.0%} ({on.colour / on.area:.1f}x) | {on.shape:.0%} ({on.shape / on.area:.1f}x) | "
                    f"{on.area:.0%} | {figure} |")
    best = max(ratios, key=ratios.get) if ratios else None
    text = ((f"**{best}**'s map of \"circle\" puts more of its mass on the circle at seed 0." if best else "Neither model ran here.")
            + "\n\n| model | \"red\" on the circle | \"circle\" on the circle | the circle's share of the picture | "
            "its card: prompts whose shape word puts 2x its share or more on the object (40) |\n|---|---|---|---|---|\n"
            + "\n".join(rows) + "\n\nA map that spread evenly would put the circle's own share of the picture on it (1.0x). "
            "sd-shapes' maps land because its training asked them to: a loss that puts each object word's attention on that "
            "object's pixels (TokenCompose). imagen-shapes' attention was never asked; "
            "its frozen T5 also spells most words in pieces. Stable Diffusion's own maps land without such a loss, from scale.")
    return Reveal(answer == best if best else None, text)


WORD = "unbelievably"
TOKENIZERS = {"GPT-2 BPE": "gpt2", "BERT WordPiece": "bert-base-uncased", "T5 SentencePiece": "t5-small"}
PASSAGE = "Friends, Romans, countrymen, lend me your"  # Julius Caesar, a play the offline GPT never read


def _tokenizers_note(loader: Any) -> str:
    """Which tokenizers the page runs: the real ones (vendored, or from the Hub), said from what the loader resolved."""
    from playground.models import Family, SourceKind

    kinds = {loader.resolve(name, Family.TOKENIZER).kind for name in TOKENIZERS.values()}
    where = "from the Hub" if kinds == {SourceKind.HUB} else "shipped with the playground, so they work offline"
    return (f"These are the real GPT-2, BERT and T5 tokenizers ({where}): the vocabularies those models were trained "
            "with, the same online and offline.")


def _tokenizer_pieces(loader: Any, answer: str) -> Reveal:
    from playground.core.text.tokenize import tokenize
    from playground.models import Family

    counts = {}
    for label, name in TOKENIZERS.items():
        t = tokenize(loader.load(name, Family.TOKENIZER).tokenizer, WORD, name=name)
        counts[label] = [tok.face for tok in t.tokens if not tok.special]
    most = max(len(p) for p in counts.values())
    winners = [label for label, p in counts.items() if len(p) == most]
    rows = "\n".join(f"| {label} | {len(p)} | {' · '.join(p)} |" for label, p in counts.items())
    text = (f"Most pieces: **{' and '.join(winners)}** ({most}).\n\n| tokenizer | pieces | split |\n|---|---|---|\n{rows}\n\n"
            "Each tokenizer learned its vocabulary from its own training text: a word frequent there is one token, a rarer "
            f"one is built from pieces. {_tokenizers_note(loader)}")
    return Reveal(answer in winners, text)


def _next_token(loader: Any, answer: str) -> Reveal:
    from playground.lessons.game import next_token_guess, top_table
    from playground.models import Family

    lm = loader.load("gpt2", Family.CAUSAL_LM)
    g = next_token_guess(lm.model, lm.tokenizer, PASSAGE, answer)
    rank = (f"your guess {answer.strip()!r} is the model's **#{g.rank:,}** choice ({g.probability:.2%})" if g.rank
            else f"your guess {answer.strip()!r} is not one token of this model's vocabulary")
    text = (f"The model's top next token: **{g.top[0][0]!r}** ({g.top[0][1]:.1%}); {rank}.\n\n{top_table(g.top)}\n\n"
            "A decoder-only model outputs a probability for every token of its vocabulary; "
            "generation picks one (greedy: the top one) and repeats. The play itself says \"ears\".")
    return Reveal(g.rank == 1 if g.rank else False, text)


HEAD_TEXT = "I am Lord Angelo's man. Lord"  # offline, the embedded GPT predicts " Angelo" here, copying the name


def _head_that_matters(loader: Any, answer: str) -> Reveal:
    from playground.core.text.interventions import parse_heads, sweep
    from playground.models import Family

    lm = loader.load("gpt2", Family.CAUSAL_LM)
    s = sweep(lm.model, lm.tokenizer, HEAD_TEXT)
    ranked = sorted((s.delta_logprob[a][b], (a, b)) for a in range(s.layers) for b in range(s.n_heads))
    guess = parse_heads(answer, s.layers, s.n_heads)[0]
    rank = [head for _, head in ranked].index(guess) + 1
    worst_delta, worst = ranked[0]
    mine = s.delta_logprob[guess[0]][guess[1]]
    text = (f"The model that runs here ({s.layers} layers x {s.n_heads} heads) predicts **{s.clean_token.strip()!r}** "
            f"(p = {s.clean[0].prob:.2f}). Knocked out alone, head **{worst[0]}.{worst[1]}** costs it the most: "
            f"{worst_delta:+.2f} nats of log-probability. Your head {guess[0]}.{guess[1]} ranks **#{rank}** of {len(ranked)} "
            f"({mine:+.2f} nats).\n\nA map of attention says where a head looks; only taking the head away shows whether the "
            "answer needs it. Heads often share a job, so knocking out one can cost little while two together cost a lot: "
            "try several at once, and the patching map, which shows where the name travels from.")
    return Reveal(guess == worst, text)


def _signal_left(loader: Any, answer: str) -> Reveal:
    from playground.core.diffusion.schedule import noise_schedule

    a = float(noise_schedule("linear").alphas_cumprod[500]) ** 0.5
    options = {"about 0.9": 0.9, "about 0.3": 0.3, "about 0.01": 0.01}
    right = min(options, key=lambda k: abs(options[k] - a))
    text = (f"√ᾱ_500 = **{a:.3f}** ({right}): x_500 = {a:.2f} · x_0 + {(1 - a * a) ** 0.5:.2f} · ε. The linear schedule adds "
            "noise in small steps that compound: ᾱ_t = Π(1 − β_s). By t = 1,000 almost nothing of the image is left, which "
            "is why sampling can start from pure noise.")
    return Reveal(answer == right, text)


# ---- the path ---------------------------------------------------------------------------------------------

LESSONS: tuple[Lesson, ...] = (
    Lesson("tokens", "1. Tokens", "tokenizer",
           "A model never sees letters: a **tokenizer** cuts text into pieces from a fixed vocabulary and turns each into "
           "an id. GPT-2 uses byte-level BPE (merges of frequent byte pairs), BERT WordPiece (`##` marks a word's "
           "continuation), T5 SentencePiece (`▁` marks a space).",
           "Compare the three panels and the token counts; click a word under *How was this word split?*",
           Question(f"Which tokenizer splits \"{WORD}\" into the most pieces?", tuple(TOKENIZERS), live=_tokenizer_pieces),
           {"text": f"{WORD} unbelievable believe", "tokenizers": list(TOKENIZERS.values())}),
    Lesson("embeddings", "2. Embeddings", "inside",
           "Each token id picks one row of the **embedding matrix**: a vector of a few hundred numbers. GPT-2 adds a "
           "second vector for the position. Tokens used alike end up pointing alike.",
           "Section 1 shows the query token's row (the last token: the second \"king\"), its position vector and their sum, and "
           "the nearest tokens; pick the first \"king\" as the query token to compare.",
           Question("\"king\" appears twice in the text. Before the first layer, are its two vectors the same?",
                    ("Yes, identical", "Same token row, different position vector", "Completely different"),
                    "Same token row, different position vector",
                    "Both read row *king* of the embedding matrix; GPT-2 then adds the position's own vector, so the sums differ "
                    "a little. Only the layers above (attention) make each copy depend on its neighbours."),
           {"model": "gpt2", "text": "The king is dead, long live the king", "layer": 0, "head": 0}),  # ends on "king": the query
    Lesson("attention", "3. Attention: Q, K, V and softmax", "attention",
           "In each head every token asks a question (its **query** q), every token offers a **key** k and a **value** v. "
           "Scores q·k/√d go through a **softmax** into weights; the token's output is the weighted sum of the values.",
           "Pick a row of the map: one query token. Hover the cells; try other layers and heads.",
           Question("One query token's attention weights over all the tokens: what do they add up to?",
                    ("1", "The number of tokens", "It depends on the text"), "1",
                    "The softmax turns any scores into positive weights that sum to 1: attention is a weighted *average* of "
                    "the values. A row of the map is a probability distribution."),
           {"model": "bert-base-uncased", "text": "The animal didn't cross the street because it was too tired.", "layer": 2, "head": 1}),
    Lesson("causal", "4. Causal vs bidirectional", "attention",
           "An encoder (BERT) lets every token attend to every other: **bidirectional**. A decoder (GPT) adds a **causal "
           "mask**: a token sees only itself and the tokens before it, because it must predict what comes next.",
           "Look at the map's upper-right triangle; then *Compare* BERT and GPT on the same sentence below.",
           Question("In GPT, can the word \"cat\" attend to \"mat\", which comes later in the sentence?", ("Yes", "No"), "No",
                    "The causal mask sets every score to a later token to −∞ before the softmax, so its weight is exactly 0: "
                    "the decoder's map is empty above the diagonal. BERT's has no mask and fills the whole square."),
           {"model": "gpt2", "text": "The cat sat on the mat because it was warm."}),
    Lesson("cross-attention", "5. Cross-attention", "attention",
           "An encoder-decoder (T5) has a third kind of attention: the decoder's tokens attend to the encoder's output. "
           "That is how the output reads the input.",
           "Choose *cross-attention* under Attention kind: rows are output tokens, columns input tokens.",
           Question("In T5's cross-attention, where do the queries come from?",
                    ("The decoder (the output so far)", "The encoder (the input)"), "The decoder (the output so far)",
                    "Queries come from the decoder; keys and values from the encoder's final states. For *reverse words* the "
                    "map runs along the anti-diagonal: each decoder row reads the input word it is about to write (a row is "
                    "the token written before it, so the first row, <pad>, reads \"dog\")."),
           {"model": "t5-small", "text": "reverse words: red cat blue dog", "target": "dog blue cat red"}),
    Lesson("decoder", "6. Decoder-only: GPT generates", "gpt",
           "GPT reads the text so far and outputs a **probability for every token** of its vocabulary. Generation picks "
           "one (greedy, sampling with temperature/top-k/top-p, or beam search), appends it, and repeats.",
           "Under *Inside one step* see each step's candidates; then play *Guess the next token*.",
           Question(f"\"{PASSAGE} …\": what is the model's most likely next token? Type your guess.", live=_next_token),
           {"model": "gpt2", "prompt": PASSAGE, "mode": "greedy", "max_new": 20}),
    Lesson("kv-cache", "7. The KV cache", "gpt",
           "To write the next token, attention needs the keys and values of every token before it. A **KV cache** keeps them: "
           "each step runs only the new token and reads the rest from memory, instead of running the whole text again. The "
           "cache grows by 2 (K and V) x layers x kv heads x d_head numbers per token.",
           "Open *The KV cache, measured* below the generation and press its button: the time per step with and without the "
           "cache, the bytes it holds, and how far the two logits differ.",
           Question("Does generation with the cache compute the same next-token scores as running the whole text again?",
                    ("The same, up to rounding", "Close, but an approximation", "Different: it is a shortcut that changes the "
                     "model"), "The same, up to rounding",
                    "The cached keys and values are exactly the ones the full run would compute again: a token's K and V depend only "
                    "on the tokens before it (the causal mask), so nothing changes but the work. The section shows the largest "
                    "difference, about 1e-5 in float32 (the order of the sums). The price is memory: the embedded GPT's cache "
                    "takes 8,192 bytes a token; a model with grouped-query attention shares one K and V among several heads."),
           {"model": "gpt2", "prompt": "ROMEO.\nBut soft, what light through yonder window breaks?\n", "mode": "greedy",
            "max_new": 20}),
    Lesson("encoder", "8. Encoder-only: BERT fills masks", "bert",
           "BERT was trained to fill in hidden words (**masked language modelling**), reading the whole sentence at once. "
           "Its vectors, averaged, are sentence embeddings.",
           "See the predictions for each [MASK], then compare sentences' embeddings below.",
           Question("What can BERT use that GPT cannot when it predicts a hidden word?",
                    ("The words after the blank", "A bigger vocabulary", "Nothing: they see the same"), "The words after the blank",
                    "BERT's attention is bidirectional: the blank's prediction reads both sides. The price: BERT cannot "
                    "generate text left to right; GPT can, seeing only the left."),
           {"model": "bert-base-uncased", "text": "The [MASK] is dead; long live the [MASK]."}),
    Lesson("encoder-decoder", "9. Encoder-decoder: T5 text to text", "t5",
           "T5 turns every task into text to text: the encoder reads the input (with a task prefix), the decoder writes "
           "the output token by token while cross-attending to it. **Beam search** keeps several partial outputs.",
           "Read the beams table and the decoder's steps.",
           Question("With 4 beams, is the best beam always what greedy decoding (1 beam) writes?", ("Always", "Not always"),
                    "Not always",
                    "Greedy commits to the single best token at each step; beam search keeps the 4 best partial outputs by "
                    "total log-probability, so it can find a sequence whose first token was not the top one."),
           {"model": "t5-small", "text": "reverse words: red cat blue dog", "beams": 4}),
    Lesson("parameters", "10. Parameters vs training data", "inside",
           "**Parameters** are the numbers training adjusts (embeddings, attention and MLP weights). **Training data** is "
           "the text it read, counted in tokens. They are different quantities.",
           "Section 5: parameters by component, and parameters beside training tokens for known models.",
           Question("GPT-2 small has 124 million parameters. How much text was it trained on?",
                    ("124 million tokens", "About 40 GB of web text: billions of tokens", "One token per parameter, by design"),
                    "About 40 GB of web text: billions of tokens",
                    "GPT-2 was trained on WebText, about 40 GB of text. Later work (Chinchilla, 2022) found about 20 tokens "
                    "per parameter a good budget; Llama models read far more."),
           {"model": "gpt2", "text": "ROMEO. But soft, what light through yonder window breaks?", "layer": 0, "head": 0}),
    Lesson("experts", "11. Experts: more parameters, the same cost", "inside",
           "In a **mixture of experts** (Mixtral, many of today's largest models) each block's MLP is several MLPs, the "
           "**experts**, and a small **router** sends every token to a few of them (the top k of a softmax). The model holds "
           "all the experts' parameters but runs only k of them per token.",
           "Open section 6, *Experts*, and press *Route the text*: every token on its top expert's colour, layer by layer, the "
           "load per expert, and below, what each expert's favourite tokens have in common.",
           Question("The embedded mixture of experts has 4 experts of width 384 in each block and sends each token to 2; the "
                    "embedded Llama has one MLP of width 768. Per token, how much MLP arithmetic does the mixture do?",
                    ("The same as the Llama", "Twice as much: it has twice the MLP parameters", "Four times as much"),
                    "The same as the Llama",
                    "Two experts of width 384 are 2 x 3 x 256 x 384 weights, exactly the Llama's 3 x 256 x 768: the same "
                    "arithmetic per token (plus the router's 4 x 256), though the model stores twice the MLP parameters. What "
                    "the extra parameters buy is on the two models' cards: held-out bits per character, the same plays."),
           {"model": "assets/models/moe-shakespeare", "text": "ROMEO. But soft, what light through yonder window breaks? It is the "
            "east, and Juliet is the sun.", "layer": 0, "head": 0}),
    Lesson("heads", "12. Which head matters? Knock it out", "interventions",
           "A picture of attention is a claim: \"this head looks at the name\". To test it, change the model and watch the "
           "prediction. **Knocking out** a head sets its output to zero for this one request; if the answer depends on the "
           "head, its probability falls. The **sweep** knocks out every head alone and maps the damage.",
           "The sweep's left map: each cell is one head knocked out; blue means the predicted name lost probability.",
           Question(f"\"{HEAD_TEXT}\": the model predicts the name again. Which head does that depend on most? Type "
                    "layer.head, both from 0 (e.g. 1.2).", live=_head_that_matters, sample_guess="0.0"),
           {"model": "gpt2", "text": HEAD_TEXT, "heads": "sweep"}),
    Lesson("noising", "13. Diffusion: forward noising", "diffusion",
           "A diffusion model learns to undo noise. The **forward process** adds Gaussian noise in T small steps: "
           "x_t = √ᾱ_t · x_0 + √(1 − ᾱ_t) · ε, with a schedule β_t and ᾱ_t = Π(1 − β_s).",
           "Move *Timestep t* in the forward section; read ᾱ_t and the signal-to-noise ratio beside it.",
           Question("After t = 500 of 1,000 steps of the linear schedule, how much signal is left (the factor √ᾱ_t on x_0)?",
                    ("about 0.9", "about 0.3", "about 0.01"), live=_signal_left),
           {"t": 500, "schedule": "linear"}),
    Lesson("objective", "14. The training objective", "training",
           "Training picks a data point x_0, a step t and noise ε, makes x_t, and asks the network for ε back: the loss is "
           "‖ε − ε_θ(x_t, t)‖² (Ho et al. 2020). Here it trains live on 2-D points, so you can watch it learn.",
           "Watch the loss fall and the samples take the data's shape.",
           Question("What does the network learn to predict from the noisy x_t and t?",
                    ("The noise ε that was added", "The next step x_(t+1)", "A class label"), "The noise ε that was added",
                    "DDPM's simple loss regresses the added noise. Knowing ε gives x̂_0 = (x_t − √(1 − ᾱ_t) ε̂) / √ᾱ_t, an "
                    "estimate of the clean data, from which each reverse step is built."),
           {"dataset": "moons", "steps": 1000}),
    Lesson("denoising", "15. Reverse denoising, step by step", "diffusion",
           "Sampling starts from pure noise and repeats: predict ε̂, estimate x̂_0, step to a less noisy x_(t−1). The "
           "explorer streams every step: x_t, the model's x̂_0, and the predicted noise.",
           "Scrub through the steps; watch x̂_0 early on.",
           Question("At step 5 of 50, will the model's estimate x̂_0 already look like a shoe?",
                    ("Yes, a blurry shoe", "No, still noise"), "Yes, a blurry shoe",
                    "x̂_0 is the model's best guess of the clean image, roughly the average of every image that fits: early on a "
                    "blurry silhouette of the class; later steps add the details. x_t itself still looks like noise."),
           {"model": "google/ddpm-cifar10-32", "prompt": "Ankle boot", "scheduler": "DDIM", "steps": 50, "seed": 0}),
    Lesson("schedulers", "16. Schedulers", "diffusion",
           "A **scheduler** is the rule that turns ε̂ into the next x: DDPM (1,000 small random steps), DDIM (few "
           "deterministic steps), Euler, DPM-Solver++. The network is the same.",
           "Run the same seed with DDPM and then DDIM and compare.",
           Question("DDIM with 20 steps and DDPM with 1,000: do they need differently trained networks?",
                    ("Yes", "No, the same network"), "No, the same network",
                    "Schedulers share the training objective; they differ only in how they step between noise levels. That is "
                    "why one trained model can be sampled with any of them."),
           {"model": "google/ddpm-cifar10-32", "prompt": "Ankle boot", "scheduler": "DDPM", "steps": 20, "seed": 0}),
    Lesson("flow", "17. Flow matching: fewer sampling steps", "training",
           "Stable Diffusion 3 and Flux train by **flow matching**: on the straight line x_σ = (1 − σ) x_0 + σ ε from a "
           "data point to its noise, the network learns the line's velocity ε − x_0, and sampling walks from noise to data in "
           "Euler steps.",
           "Under *Flow matching beside DDPM*, press *Train both*: the same network, data and steps, trained both ways. Compare "
           "the paths from the same noise, and the table of distances for 1 to 100 sampling steps.",
           Question("With only 4 sampling steps, whose samples land closer to the data?",
                    ("The flow-matching model (4 Euler steps)", "The DDPM-trained model (4 DDIM steps)", "About the same"),
                    "The flow-matching model (4 Euler steps)", FLOW_WHY),
           {"flow_dataset": "moons"}),
    Lesson("guidance", "18. Classifier-free guidance", "text-to-image",
           "The same network predicts noise with the prompt and with the empty prompt; guidance pushes away from the "
           "unconditional one: ε̂ = ε̂_∅ + w(ε̂_c − ε̂_∅). w = 0 ignores the prompt, w = 1 is the prompt's model alone. A "
           "**negative prompt** takes the empty prompt's place.",
           "Below the image, *Guidance compared*: the same six starting noises at w = 0, 1, 3 and 7.5; ✓ marks a picture "
           "that follows the prompt (the checker behind the offline model's card). \"a purple triangle\" is a pair the "
           "offline model never saw in training.",
           Question("Guidance w = 1 or w = 7.5: which follows the prompt more closely?", ("w = 1", "w = 7.5"), "w = 7.5",
                    "Larger w exaggerates what the prompt changes, so prompts are followed more closely, at the cost of variety "
                    "and, too high, of quality: count the ✓ in each row. At w = 0 the prompt is ignored altogether; at w = 1 "
                    "a combination the model never saw is often drawn in a colour or shape it knows better."),
           {"model": "segmind/tiny-sd", "prompt": "a purple triangle", "guidance": 7.5, "seed": 0, "compare": "yes"}),
    Lesson("latent", "19. Latent diffusion and text to image", "text-to-image",
           "Stable Diffusion denoises in the small **latent** of an autoencoder, not in pixels; a text encoder turns the "
           "prompt into vectors that the UNet's **cross-attention** reads. The word maps show where each word lands.",
           "Look at the word maps: where do \"blue\" and \"square\" put their mass?",
           Question("Where does the offline model's UNet do its denoising?",
                    ("In the 3x32x32 pixels", "In a 4x16x16 latent that the autoencoder decodes"),
                    "In a 4x16x16 latent that the autoencoder decodes",
                    "Only the autoencoder's decoder touches pixels, once, at the end. Stable Diffusion 1.5 does the same with a "
                    "4x64x64 latent for a 512x512 image: 48 times fewer numbers to denoise."),
           {"model": "segmind/tiny-sd", "prompt": "a small blue square on the left", "steps": 30, "seed": 0}),
    Lesson("clip", "20. CLIP: pictures and words in one space", "text-to-image",
           "**CLIP** trains an image tower and a text tower together: in a batch of pictures and captions, each picture's "
           "cosine with its own caption is pushed up and with the others down. The result is one space where a picture and "
           "its caption land close together: zero-shot classification, and DALL-E 2's starting point.",
           "Open *CLIP space* (below the word maps) and press *Compare pictures and captions*: each picture's own caption is "
           "outlined. Compare the two pictures whose captions differ only in *left of* / *right of*.",
           Question("CLIP compares the picture of \"a red circle left of a blue square\" with that caption and with \"a red circle "
                    "right of a blue square\". What happens?",
                    ("Its own caption wins clearly", "Nearly a tie: the order of the words barely counts",
                     "The wrong caption wins clearly"),
                    "Nearly a tie: the order of the words barely counts",
                    "Trained only to tell a batch's pictures apart, CLIP rarely needs the word order: colours and shapes tell "
                    "almost every pair apart. The embedded clip-shapes reads colours, shapes and places zero-shot 99-100% right, yet "
                    "prefers a two-object picture's own caption over the inverse relation's only 52% of the time (chance: 50%). "
                    "DALL-E 2, built on CLIP's space, inherits this: its paper reports weak binding of attributes and relations."),
           {"clip_texts": "a red circle left of a blue square\na red circle right of a blue square\na blue square\na red circle"}),
    Lesson("variations", "21. DALL-E 2: variations of a picture", "text-to-image",
           "DALL-E 2's **decoder** draws from a CLIP **image embedding**, not from the caption. Encode a picture with CLIP's "
           "image tower and decode the embedding again: a **variation**, the same things drawn anew, whatever CLIP's 64 "
           "numbers keep of it.",
           "Open *DALL-E 2, stage by stage*, press *Run both stages*, then *Use the picture drawn above* and *Draw "
           "variations*. Compare each variation with the picture.",
           Question("You ask for variations of a picture of a large red circle. Will they keep its colour?",
                    ("Yes: the colour comes back, drawn anew", "No: with no caption the decoder draws anything",
                     "They come back pixel for pixel"),
                    "Yes: the colour comes back, drawn anew", VARIATIONS_WHY),
           {"unclip_prompt": "a large red circle"}),
    Lesson("what-runs", "22. What runs here: a preset and its stand-in", "models",
           "Every tab addresses a model by its Hub id (gpt2, segmind/tiny-sd). With the Hub reachable, that model loads; "
           "offline (a workshop laptop, CI) the same id loads a small **embedded** model trained by this project's scripts "
           "on a laptop budget, of the same architecture family: gpt2 becomes gpt-shakespeare, segmind/tiny-sd becomes "
           "sd-shapes. Every view says which one ran.",
           "The Models tab lists each preset, what it resolves to here, and its card's figures.",
           Question("On this page, which model does the preset segmind/tiny-sd (a distilled Stable Diffusion) run?",
                    (WHAT_RUNS_HUB, WHAT_RUNS_EMBEDDED), live=lambda loader, answer: _what_runs(loader, answer)),
           {}),
    Lesson("image-models", "23. The designs side by side: Stable Diffusion, DALL-E 2, Imagen, DALL-E 3", "text-to-image",
           "The lesson's four text-to-image systems made different bets. **Stable Diffusion**: a text encoder read by cross-"
           "attention, diffusion in an autoencoder's latents. **DALL-E 2**: a prior turns the caption into a CLIP image embedding, "
           "a decoder draws from it. **Imagen**: a frozen, text-only T5 and pixel diffusion as a cascade (small, then larger), "
           "with dynamic thresholding. **DALL-E 3**: the same kind of network, trained on descriptive captions instead of alt "
           "text, with the user's prompt rewritten into that form. Here each is a model trained in the same shapes world, "
           "so one prompt and seed go through all of them.",
           "Open *The designs, side by side* (the Text-to-image tab) and press *Draw it with every design*: each picture with "
           "the checker's marks, and the table of what differs. Then try the terse \"red circle left blue square\".",
           Question(f"Which design do you predict draws \"{DESIGNS_PROMPT}\" wrong (seed 0)?",
                    (*DESIGN_NAMES, NO_DESIGN_WRONG), live=lambda loader, answer: _designs_reveal(loader, answer)),
           {"designs_prompt": DESIGNS_PROMPT}),
    Lesson("word-maps", "24. Where a word lands: maps that show it", "text-to-image",
           "A word's map (DAAM) adds up, over every cross-attention layer and step, how much each part of the picture read that "
           "word. It teaches \"this word went there\" only if it lands on what the word names; a map spread over the whole "
           "picture says little. Whether it lands depends on the model: small models trained only to denoise spread their "
           "attention over the picture, and a loss can ask it to land on the object the word names.",
           "Run the linked prompt and look at the maps of \"red\" and \"circle\"; then choose assets/models/imagen-shapes as "
           "the model and run it again.",
           Question("Which model's map of \"circle\" puts more of its mass on the drawn circle (seed 0)?", tuple(MAPS_MODELS),
                    live=lambda loader, answer: _maps_reveal(loader, answer)),
           {"model": "segmind/tiny-sd", "prompt": MAPS_PROMPT, "seed": 0}),
)


def lesson_by_id(lesson_id: str) -> Lesson:
    for lesson in LESSONS:
        if lesson.id == lesson_id:
            return lesson
    raise InputError(f"There is no lesson {lesson_id!r}; the lessons are {', '.join(le.id for le in LESSONS)}.")


def grade(lesson: Lesson, answer: Any, loader: Any = None) -> Reveal:
    """The reveal for the learner's `answer` (an option's text, or a typed guess); a clear error for none."""
    q = lesson.question
    if not isinstance(answer, str) or not answer.strip():
        raise InputError("Make your prediction first: pick an option (or type a guess), then reveal." if q.choices else
                         "Type your guess first, then reveal.")
    if len(answer) > MAX_ANSWER_CHARS:
        raise InputError(f"An answer is at most {MAX_ANSWER_CHARS} characters.")
    if q.choices and answer not in q.choices:
        raise InputError(f"Pick one of: {', '.join(q.choices)}.")
    if q.live is not None:
        if loader is None:
            raise InputError("This question's answer is computed on the page's models.")
        return q.live(loader, answer)
    right = answer == q.answer
    return Reveal(right, f"{'Right' if right else 'Not quite'}: **{q.answer}**. {q.why}")
