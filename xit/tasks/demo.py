"""Synthetic multilingual demo tasks that xit generates itself, one per format.

They make a whole sweep runnable offline in minutes. The "languages" are English and
three deterministic rewritings of it, so every example has exact translations:

* ``pig``: pig-latin of content words (``river`` → ``iverray``),
* ``rev``: content words reversed (``river`` → ``revir``),
* ``vow``: vowels rotated a→e→i→o→u→a in content words (``river`` → ``rovir``).

Names, places and function words are shared by all languages, as names and numbers
often are between real languages; content words differ. So a model trained on English
transfers partly: through the shared words and the shared structure, not through the
content words. Data are generated from a seed per (task, split): test sets of all
languages are translations of one English set, as in XNLI or XQuAD.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from xit.errors import XitError
from xit.tasks.registry import DataSource, Slice, Task, register

LANGUAGES = ("en", "pig", "rev", "vow")
GENERATOR_VERSION = "1"
SIZES = {"train": 1200, "dev": 200, "test": 200}

NAMES = (
    "Ana Ben Carla Dario Elif Farid Greta Hugo Ines Jonas Kemal Lina Marta Nils Omar Paula "
    "Quinn Rosa Sami Tara Umar Vera Wim Yara Zeno"
).split()
SURNAMES = "Lima Okafor Berg Novak Silva Tanaka Moreau Costa".split()
PLACES = "Porto Kigali Tartu Oslo Lyon Quito Pune Hanoi Cusco Riga Dakar Perth Bergen Izmir".split()
NOUNS = (
    "river house garden window letter basket candle mirror bottle ladder pillow wallet "
    "blanket hammer violin bicycle carpet kettle lantern needle pocket rocket saddle tunnel"
).split()
VERBS = "painted carried opened cleaned sold found repaired borrowed moved washed".split()
ADJS = "green small heavy yellow broken golden quiet narrow wooden bright".split()
RELS = {"lives in": "where does {n} live ?", "works in": "where does {n} work ?"}


def _pig(w: str) -> str:
    for i, ch in enumerate(w):
        if ch in "aeiou":
            return w[i:] + w[:i] + "ay" if i else w + "way"
    return w + "ay"


def _vow(w: str) -> str:
    rot = str.maketrans("aeiou", "eioua")
    return w.translate(rot)


TRANSFORMS = {"en": lambda w: w, "pig": _pig, "rev": lambda w: w[::-1], "vow": _vow}


@dataclass(frozen=True)
class W:
    """A word and whether it is a content word (rewritten per language)."""

    text: str
    content: bool = False


def C(text: str) -> W:
    return W(text, True)


def words(text: str) -> list[W]:
    return [W(t) for t in text.split()]


def render(ws: list[W], lang: str) -> str:
    return " ".join(TRANSFORMS[lang](w.text) if w.content else w.text for w in ws)


def render_with_spans(parts: list[list[W]], lang: str) -> tuple[str, list[tuple[int, int]]]:
    """Join parts with spaces; return the text and each part's (start, end) char span."""
    out, spans, pos = [], [], 0
    for p in parts:
        s = render(p, lang)
        if out:
            pos += 1
        spans.append((pos, pos + len(s)))
        out.append(s)
        pos += len(s)
    return " ".join(out), spans


def _seed(task: str, split: str) -> int:
    return sum((i + 1) * ord(c) for i, c in enumerate(f"{task}|{split}|{GENERATOR_VERSION}"))


def _person(r: random.Random) -> list[W]:
    return words(r.choice(NAMES) + (" " + r.choice(SURNAMES) if r.random() < 0.3 else ""))


# --- generators: each returns one example as language-neutral structure + a render function.


def _gen_nli(r: random.Random, lang: str) -> dict[str, Any]:
    n1, v, a, o, p = r.choice(NAMES), r.choice(VERBS), r.choice(ADJS), r.choice(NOUNS), r.choice(PLACES)
    premise = words(n1) + [C(v)] + words("the") + [C(a), C(o)] + words(f"in {p} .")
    label = r.randrange(3)
    if label == 0:  # entailment: the same event, less detail
        hyp = words(n1) + [C(v)] + words("the") + [C(o)] + words(".")
    elif label == 2:  # contradiction: the same event, negated
        hyp = words(f"{n1} did not") + [C(v)] + words("the") + [C(o)] + words(".")
    else:  # neutral: someone else
        n2 = r.choice([n for n in NAMES if n != n1])
        hyp = words(n2) + [C(r.choice(VERBS))] + words("a") + [C(r.choice(NOUNS))] + words(".")
    return {"text_a": render(premise, lang), "text_b": render(hyp, lang), "label": label}


def _gen_para(r: random.Random, lang: str) -> dict[str, Any]:
    n, v, o, p = r.choice(NAMES), r.choice(VERBS), r.choice(NOUNS), r.choice(PLACES)
    a = words(n) + [C(v)] + words("the") + [C(o)] + words(f"in {p} .")
    label = r.randrange(2)
    if label == 0:  # same shape and verb, other participants: not a paraphrase
        n = r.choice([x for x in NAMES if x != n])
        o = r.choice([x for x in NOUNS if x != o])
    b = words(f"in {p} {n}") + [C(v)] + words("the") + [C(o)] + words(".")
    return {"text_a": render(a, lang), "text_b": render(b, lang), "label": label}


def _gen_qa(r: random.Random, lang: str, idx: int, split: str) -> dict[str, Any]:
    people = r.sample(NAMES, 3)
    facts: list[tuple[list[W], list[W], str]] = []  # (sentence parts, answer, question)
    for n in people:
        if r.random() < 0.5:
            rel = r.choice(list(RELS))
            place = r.choice(PLACES)
            facts.append(([*words(f"{n} {rel}")], words(place), RELS[rel].format(n=n)))
        else:
            thing = [C(r.choice(ADJS)), C(r.choice(NOUNS))]
            facts.append(([*words(f"{n} has a")], thing, f"what does {n} have ?"))
    parts: list[list[W]] = []
    answer_part = []
    for head, ans, _ in facts:
        parts.extend([head, ans, words(".")])
        answer_part.append(len(parts) - 2)
    context, spans = render_with_spans(parts, lang)
    q = r.randrange(len(facts))
    start, end = spans[answer_part[q]]
    return {
        "id": f"demo-qa-{split}-{idx}",
        "context": context,
        "question": facts[q][2],
        "answers": {"text": [context[start:end]], "answer_start": [start]},
    }


def _gen_mc(r: random.Random, lang: str) -> dict[str, Any]:
    n, p = r.choice(NAMES), r.choice(PLACES)
    objs = r.sample(NOUNS, 4)
    ctx = words(f"{n} went to {p} and bought a") + [C(objs[0])] + words(".")
    label = r.randrange(4)
    order = objs[1:]
    order.insert(label, objs[0])
    choices = [render(words(f"then {n} used the") + [C(o)] + words("."), lang) for o in order]
    return {"context": render(ctx, lang), "question": "", "choices": choices, "label": label}


def _gen_tag(r: random.Random, lang: str) -> dict[str, Any]:
    seq: list[tuple[str, str, bool]] = []  # (word, tag, content)

    def person() -> None:
        for i, w in enumerate(_person(r)):
            seq.append((w.text, "B-PER" if i == 0 else "I-PER", False))

    def place() -> None:
        if r.random() < 0.25:
            seq.extend([("New", "B-LOC", False), (r.choice(PLACES), "I-LOC", False)])
        else:
            seq.append((r.choice(PLACES), "B-LOC", False))

    person()
    seq.append((r.choice(VERBS), "O", True))
    seq.append(("the", "O", False))
    seq.append((r.choice(ADJS), "O", True))
    seq.append((r.choice(NOUNS), "O", True))
    seq.append(("in" if r.random() < 0.5 else "near", "O", False))
    place()
    if r.random() < 0.5:
        seq.append(("with", "O", False))
        person()
    seq.append((".", "O", False))
    return {
        "tokens": [TRANSFORMS[lang](w) if c else w for w, _, c in seq],
        "tags": [t for _, t, _ in seq],
    }


def _sentence(r: random.Random) -> list[W]:
    return (
        _person(r) + [C(r.choice(VERBS))] + words("the") + [C(r.choice(ADJS)), C(r.choice(NOUNS))]
        + words(f"in {r.choice(PLACES)} .")
    )


def _gen_tatoeba(lang: str, split: str, n: int) -> dict[str, Any]:
    r = random.Random(_seed("demo-tatoeba", split))
    sents = [_sentence(r) for _ in range(n)]
    return {"source": [render(s, lang) for s in sents], "target": [render(s, "en") for s in sents]}


def _gen_bucc(lang: str, split: str, n: int) -> dict[str, Any]:
    r = random.Random(_seed("demo-bucc", split))
    n_gold = n // 3
    gold_sents = [_sentence(r) for _ in range(n_gold)]
    src_only = [_sentence(r) for _ in range(n - n_gold)]
    tgt_only = [_sentence(r) for _ in range(n - n_gold)]
    src = [(s, i) for i, s in enumerate(gold_sents)] + [(s, None) for s in src_only]
    tgt = [(s, i) for i, s in enumerate(gold_sents)] + [(s, None) for s in tgt_only]
    r.shuffle(src)
    r.shuffle(tgt)
    src_ids = [f"{lang}-{split}-{i:06d}" for i in range(len(src))]
    tgt_ids = [f"en-{split}-{i:06d}" for i in range(len(tgt))]
    gi_src = {g: src_ids[i] for i, (_, g) in enumerate(src) if g is not None}
    gi_tgt = {g: tgt_ids[i] for i, (_, g) in enumerate(tgt) if g is not None}
    return {
        "source_ids": src_ids,
        "source": [render(s, lang) for s, _ in src],
        "target_ids": tgt_ids,
        "target": [render(s, "en") for s, _ in tgt],
        "gold": sorted([gi_src[g], gi_tgt[g]] for g in range(n_gold)),
    }


def _load_rows(task: Task, language: str, split: str, source: DataSource | None) -> list[dict[str, Any]]:
    if source is not None:
        raise XitError(f"task {task.name!r} is generated by xit and takes no data_dir/data_files")
    if split not in SIZES:
        raise XitError(f"task {task.name!r} has no split {split!r}; splits: {', '.join(SIZES)}")
    n = SIZES[split]
    if task.retrieval == "tatoeba":
        return [_gen_tatoeba(language, split, n)]
    if task.retrieval == "bucc":
        return [_gen_bucc(language, split, n)]
    name = task.base_name  # demo-nli@pig: demo-nli's draws, rendered in pig
    gen = GENERATORS[name]
    base = _seed(name, split)
    out = []
    for i in range(n):
        # One generator per example, seeded independently of the language: the examples of
        # all languages are renderings of the same draws, i.e. exact translations.
        r = random.Random(base * 1_000_003 + i)
        out.append(gen(r, language, i, split) if name == "demo-qa" else gen(r, language))
    return out


GENERATORS = {
    "demo-nli": _gen_nli,
    "demo-para": _gen_para,
    "demo-qa": _gen_qa,
    "demo-mc": _gen_mc,
    "demo-tag": _gen_tag,
}

_DEMO_DEFAULTS = {"lr": 1e-3, "epochs": 3, "batch_size": 16, "max_length": 64, "warmup_ratio": 0.1}
_SRC = f"generated by xit (xit.tasks.demo, v{GENERATOR_VERSION})"


# Stand-ins for XCOPA's seen/unseen-language slices in the tiny offline sweeps.
DEMO_SLICES = {"english": Slice("languages", ("en",), "the training language"),
               "rewritten": Slice("languages", ("pig", "rev", "vow"), "the rewritten languages")}


def _demo(name: str, fmt: str, metric: str, **kw: Any) -> Task:
    defaults = {**_DEMO_DEFAULTS, **kw.pop("defaults", {})}
    # Retrieval pairs each language with English, so English itself is not a language of it.
    langs = LANGUAGES[1:] if fmt == "retrieval" else LANGUAGES
    return register(
        Task(name=name, format=fmt, languages=langs, metric=metric, source=_SRC, family="demo",
             load_fn=_load_rows, defaults=defaults, data_version=GENERATOR_VERSION,
             train_languages=() if fmt == "retrieval" else LANGUAGES,
             slices={} if fmt == "retrieval" else DEMO_SLICES, **kw)
    )


_demo("demo-nli", "classification", "accuracy", labels=("entailment", "neutral", "contradiction"))
_demo("demo-para", "classification", "accuracy", labels=("different", "paraphrase"))
_demo("demo-qa", "span_qa", "em_f1", defaults={"max_length": 64, "doc_stride": 24})
_demo("demo-mc", "multiple_choice", "accuracy", num_choices=4)
_demo("demo-tag", "tagging", "f1", labels=("O", "B-PER", "I-PER", "B-LOC", "I-LOC"))
_demo("demo-tatoeba", "retrieval", "accuracy", retrieval="tatoeba", roles=frozenset({"target"}))
_demo("demo-bucc", "retrieval", "f1", retrieval="bucc", roles=frozenset({"target"}), eval_split="test")


def corpus() -> list[str]:
    """Text in every demo language, for training the built-in tiny model's tokenizer."""
    r = random.Random(7)
    lines = []
    for lang in LANGUAGES:
        for _ in range(400):
            lines.append(render(_sentence(r), lang))
        vocab = NAMES + SURNAMES + PLACES + ["New"]
        lines.append(" ".join(vocab))
        lines.append(" ".join(TRANSFORMS[lang](w) for w in NOUNS + VERBS + ADJS))
        for q in list(RELS.values()) + ["what does {n} have ?"]:
            lines.append(q.format(n=r.choice(NAMES)) + " has a did not then used went to and bought near with")
    return lines
