"""A small synthetic multilingual world, and demo tasks on it, that xit generates itself.

They make a whole sweep runnable offline in minutes, with numbers that mean something: the
languages share one grammar of meaning and differ in surface form, so what a model learns in
English can transfer, and the tasks are built so that what an intermediate task teaches can show in a target
(``examples/demo.yaml`` says which).

**Meaning.** Every sentence states one event: an agent (a person), a verb, a count (a digit),
an adjective and a noun (the thing), a place, and whether it did *not* happen.

**Languages** (each with its own function words, and its own verbs, nouns and adjectives drawn
from its own syllable inventory, except that half of the content words are loanwords that every
language shares, as ``taxi`` or ``radio`` are, inflected by each language's own grammar):

* ``en``: English, subject-verb-object, prepositions: ``Ana carried 3 green bottles in Porto .``
* ``agg``: agglutinative, subject-object-verb; case, plural and negation are suffixes fused to
  the stem, written after an apostrophe on names and places as Turkish writes them:
  ``Ana'ga Porto'de 3 mali lusilarko tilinu .`` (negated: ``tilinuma``)
* ``vso``: verb-subject-object, adjectives after their noun, a plural particle, a negation
  particle: ``savorov Ana gosov bogov pe 3 ro Porto .``
* ``fus``: subject-verb-object with its own words, adjectives after the noun, plural fused
  into the noun ending by noun class: ``Ana fecari 3 cimii mita en Porto .``

A loanword keeps its English stem under each grammar: ``candles``, agg ``candlelarko``, fus ``candlei``.

**Anchors.** Names, places and digits are written the same in every language (``agg`` adds its
case suffixes after an apostrophe, where the tokenizer splits), the way real scripts share names and
numbers.

**Pretraining corpus.** ``demo-mlm`` is the `mlm` task (format ``mlm``) on the world's
unlabelled text (`language_text`): random events in every language, a fifth of the lines
code-switched (some stems taken from another language, inflected by the sentence's own
grammar), half followed by a translation (XLM's translation LM). The built-in tiny model
is pretrained on it (`xit.tiny.build_tiny`); a spec can also mix it into intermediate
training like ``mlm``.

**Tasks** (the English training set is the only training data; test sets of all languages
are translations of one English set, as in XNLI or XQuAD):

* ``demo-nli`` (intermediate): a premise and a hypothesis. Entailment: the same event with
  less detail; contradiction: the same event negated or with another count; neutral:
  another agent or another thing.
* ``demo-para`` (target): two sentences. Paraphrase: both tell the same event; not: the second
  tells another event.
* ``demo-qa`` (intermediate or target): three facts, a question about one, the answer a span.
* ``demo-mc`` (intermediate): a purchase, then four follow-ups; the right one reuses the thing.
* ``demo-tag`` (target): persons and places in event sentences (BIO tags).
* ``demo-tatoeba``, ``demo-bucc`` (retrieval targets): event sentences and their English
  translations, nearest neighbour and mined pairs.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from typing import Any

from xit.errors import XitError
from xit.tasks.registry import DataSource, Slice, Task, register

LANGUAGES = ("en", "agg", "vso", "fus")
GENERATOR_VERSION = "4"
# Rows per split; per-task training sizes below (small where the target should need its intermediate task).
SIZES = {"train": 1000, "dev": 200, "test": 200}
TRAIN_SIZES = {"demo-para": 1000}

NAMES = (
    "Ana Ben Carla Dario Elif Farid Greta Hugo Ines Jonas Kemal Lina Marta Nils Omar Paula "
    "Quinn Rosa Sami Tara Umar Vera Wim Yara Zeno"
).split()
SURNAMES = "Lima Okafor Berg Novak Silva Tanaka Moreau Costa".split()
PLACES = "Porto Kigali Tartu Oslo Lyon Quito Pune Hanoi Cusco Riga Dakar Perth Bergen Izmir".split()
NOUNS = (
    "basket candle mirror bottle ladder pillow wallet blanket hammer violin bicycle carpet "
    "kettle lantern needle pocket rocket saddle tunnel window letter garden"
).split()
VERBS = "painted carried opened cleaned sold found repaired borrowed moved washed".split()
ADJS = "green small heavy yellow broken golden quiet narrow wooden bright".split()
COUNTS = tuple(range(2, 10))

# Syllable inventories: each language's own words look like its own. Every second content word (alphabetical
# order, per kind) is a loanword instead, written as English writes it in every language and inflected by each
# language's own grammar, as languages share words such as "taxi" or "radio".
_SYLLABLES = {
    "agg": ("k t l m n s y", "a i u"),
    "vso": ("r s n d v b g", "o e a"),
    "fus": ("p l m f c r t", "a o i e"),
}


LOANWORDS = frozenset(w for group in (NOUNS, VERBS, ADJS) for i, w in enumerate(sorted(group)) if i % 2 == 0)


def _lexicon(lang: str) -> dict[str, dict[str, str]]:
    """Per concept kind, English lemma -> this language's stem (seeded by the language name)."""
    if lang == "en":
        return {"noun": {w: w for w in NOUNS}, "verb": {w: w for w in VERBS}, "adj": {w: w for w in ADJS}}
    cons, vows = (s.split() if " " in s else list(s) for s in _SYLLABLES[lang])
    r = random.Random(f"demo-lexicon|{lang}|{GENERATOR_VERSION}")
    used: set[str] = set(NOUNS + VERBS + ADJS)
    out: dict[str, dict[str, str]] = {}
    for kind, lemmas, n_syll in (("noun", NOUNS, 2), ("verb", VERBS, 3), ("adj", ADJS, 2)):
        table = {}
        for lemma in lemmas:
            if lemma in LOANWORDS:
                table[lemma] = lemma
                continue
            while True:
                w = "".join(r.choice(cons) + r.choice(vows) for _ in range(n_syll))
                if lang == "vso":
                    w += r.choice(cons)  # closed final syllables
                if w not in used:
                    break
            used.add(w)
            table[lemma] = w
        out[kind] = table
    return out


LEXICON = {lang: _lexicon(lang) for lang in LANGUAGES}
# Noun class of the fusional language: the plural ending depends on it.
_FUS_CLASS = {n: i % 2 for i, n in enumerate(NOUNS)}


@dataclass(frozen=True)
class Event:
    """One meaning: `agent` did (or did not) `verb` `count` `adj` `noun`(s) in `place`."""

    agent: tuple[str, ...]  # a name, maybe with a surname
    verb: str
    count: int
    adj: str | None
    noun: str
    place: str | None
    neg: bool = False


def random_event(r: random.Random) -> Event:
    agent = (r.choice(NAMES),) + ((r.choice(SURNAMES),) if r.random() < 0.3 else ())
    return Event(agent, r.choice(VERBS), r.choice(COUNTS), r.choice(ADJS), r.choice(NOUNS),
                 r.choice(PLACES), r.random() < 0.2)


Token = tuple[str, str]  # (surface word, BIO tag)


def _stem(lang: str, kind: str, lemma: str, stems: dict[str, str] | None) -> str:
    """The stem of a content word; `stems` maps a lemma to the language to borrow it from (code-switching)."""
    src = (stems or {}).get(lemma, lang)
    return LEXICON[src][kind][lemma]


def render_tokens(e: Event, lang: str, *, fronted: bool = False, stems: dict[str, str] | None = None) -> list[Token]:
    """The words of `e` in `lang`, each with its entity tag. `fronted`: the place comes first (another construction)."""
    per = [(w, "B-PER" if i == 0 else "I-PER") for i, w in enumerate(e.agent)]
    noun = _stem(lang, "noun", e.noun, stems)
    verb = _stem(lang, "verb", e.verb, stems)
    adj = _stem(lang, "adj", e.adj, stems) if e.adj else None
    if lang == "en":
        verb_part = [("never", "O"), (verb, "O")] if e.neg else [(verb, "O")]
        obj = [(str(e.count), "O")] + ([(adj, "O")] if adj else []) + [(noun + "s", "O")]
        loc = [("in", "O"), (e.place, "B-LOC")] if e.place else []
        if fronted and loc:
            return loc + [(",", "O")] + per + verb_part + obj + [(".", "O")]
        return per + verb_part + obj + loc + [(".", "O")]
    if lang == "agg":  # SOV; -ga subject, -de locative, -lar plural, -ko object, -ma negation
        subj = [(w + ("'ga" if i == len(e.agent) - 1 else ""), t) for i, (w, t) in enumerate(per)]
        loc = [(e.place + "'de", "B-LOC")] if e.place else []
        obj = [(str(e.count), "O")] + ([(adj, "O")] if adj else []) + [(noun + "larko", "O")]
        v = [(verb + ("ma" if e.neg else ""), "O")]
        front, rest = (loc + subj, obj) if fronted else (subj, loc + obj)
        return front + rest + v + [(".", "O")]
    if lang == "vso":  # VSO; negation particle "na", plural particle "pe", preposition "ro"
        v = ([("na", "O")] if e.neg else []) + [(verb, "O")]
        obj = [(noun, "O")] + ([(adj, "O")] if adj else []) + [("pe", "O"), (str(e.count), "O")]
        loc = [("ro", "O"), (e.place, "B-LOC")] if e.place else []
        if fronted and loc:
            return loc + v + per + obj + [(".", "O")]
        return v + per + obj + loc + [(".", "O")]
    if lang == "fus":  # SVO; negation "ne"; plural ending by noun class; adjective after the noun
        v = ([("ne", "O")] if e.neg else []) + [(verb, "O")]
        obj = [(str(e.count), "O"), (noun + ("i" if _FUS_CLASS[e.noun] else "e"), "O")] + ([(adj, "O")] if adj else [])
        loc = [("en", "O"), (e.place, "B-LOC")] if e.place else []
        if fronted and loc:
            return loc + per + v + obj + [(".", "O")]
        return per + v + obj + loc + [(".", "O")]
    raise XitError(f"demo: no language {lang!r}; languages: {', '.join(LANGUAGES)}")


def render(e: Event, lang: str, **kw: Any) -> str:
    return " ".join(w for w, _ in render_tokens(e, lang, **kw))


def _seed(task: str, split: str) -> int:
    return sum((i + 1) * ord(c) for i, c in enumerate(f"{task}|{split}|{GENERATOR_VERSION}"))


def _other(r: random.Random, pool: list[str] | tuple[str, ...], not_this: Any) -> Any:
    return r.choice([x for x in pool if x != not_this])


# --- generators: each returns one example in `lang` from the language-neutral draws of `r`.


def _gen_nli(r: random.Random, lang: str) -> dict[str, Any]:
    e = random_event(r)
    e = replace(e, neg=False)
    label = r.randrange(3)
    if label == 0:  # entailment: the same event with less detail
        drop = r.randrange(3)
        h = replace(e, adj=None if drop != 1 else e.adj, place=None if drop != 0 else e.place)
    elif label == 2:  # contradiction: the same event did not happen, or with another count
        h = replace(e, neg=True) if r.random() < 0.5 else replace(e, count=_other(r, COUNTS, e.count))
        h = replace(h, adj=None, place=None if r.random() < 0.5 else h.place)
    else:  # neutral: someone else, or something else
        if r.random() < 0.5:
            h = replace(e, agent=(_other(r, NAMES, e.agent[0]),))
        else:
            h = replace(e, noun=_other(r, NOUNS, e.noun))
        h = replace(h, adj=None)
    return {"text_a": render(e, lang), "text_b": render(h, lang), "label": label}


def _gen_para(r: random.Random, lang: str) -> dict[str, Any]:
    e = random_event(r)
    label = r.randrange(2)
    b = e
    if label == 0:  # not a paraphrase: another event
        b = random_event(r)
    return {"text_a": render(e, lang), "text_b": render(b, lang), "label": label}


_QUESTIONS = {  # (where does X live / what does X have), X substituted; per language word order
    "en": ("where does {n} live ?", "what does {n} have ?"),
    "agg": ("{n}'ga nerede yasar ?", "{n}'ga neyi var ?"),
    "vso": ("dos vive {n} ?", "ke tene {n} ?"),
    "fus": ("{n} ubi vivo ?", "{n} quo habo ?"),
}
_FACTS = {  # (lives in P, has ...) templates as token lists; {P} place, {O} object tokens
    "en": (("{n}", "lives", "in", "{P}", "."), ("{n}", "has", "{O}", ".")),
    "agg": (("{n}'ga", "{P}'de", "yasar", "."), ("{n}'ga", "{O}", "var", ".")),
    "vso": (("vive", "{n}", "ro", "{P}", "."), ("tene", "{n}", "{O}", ".")),
    "fus": (("{n}", "vivo", "en", "{P}", "."), ("{n}", "habo", "{O}", ".")),
}


def _object_tokens(lang: str, count: int, adj: str, noun: str) -> list[str]:
    e = Event(("x",), VERBS[0], count, adj, noun, None)
    toks = [w for w, _ in render_tokens(e, lang)]
    # The object phrase of the rendered event: count, adjective and noun in the language's order.
    if lang == "en":
        return toks[2:5]
    if lang == "agg":
        return toks[1:4]
    if lang == "vso":
        return toks[2:6]
    return toks[2:5]


def _gen_qa(r: random.Random, lang: str, idx: int, split: str) -> dict[str, Any]:
    people = r.sample(NAMES, 3)
    parts: list[str] = []
    answers: list[tuple[int, int]] = []
    questions = []
    pos = 0
    for n in people:
        if r.random() < 0.5:
            template, ans = _FACTS[lang][0], [r.choice(PLACES)]
            questions.append(_QUESTIONS[lang][0].format(n=n))
        else:
            template = _FACTS[lang][1]
            ans = _object_tokens(lang, r.choice(COUNTS), r.choice(ADJS), r.choice(NOUNS))
            questions.append(_QUESTIONS[lang][1].format(n=n))
        for t in template:
            if t in ("{P}", "{P}'de", "{O}"):
                words_ = [ans[0] + ("'de" if t == "{P}'de" else "")] if t != "{O}" else ans
                text = " ".join(words_)
                start = pos + (1 if parts else 0)
                answers.append((start, start + len(text)))
            else:
                text = t.format(n=n)
            if parts:
                pos += 1
            parts.append(text)
            pos += len(text)
    context = " ".join(parts)
    q = r.randrange(3)
    start, end = answers[q]
    return {
        "id": f"demo-qa-{split}-{idx}",
        "context": context,
        "question": questions[q],
        "answers": {"text": [context[start:end]], "answer_start": [start]},
    }


def _gen_mc(r: random.Random, lang: str) -> dict[str, Any]:
    e = replace(random_event(r), neg=False, adj=None)
    others = r.sample([n for n in NOUNS if n != e.noun], 3)
    label = r.randrange(4)
    nouns = others[:]
    nouns.insert(label, e.noun)
    verb = _other(r, VERBS, e.verb)
    choices = [render(Event(e.agent, verb, e.count, None, n, None), lang) for n in nouns]
    return {"context": render(e, lang), "question": "", "choices": choices, "label": label}


def _gen_tag(r: random.Random, lang: str) -> dict[str, Any]:
    e = random_event(r)
    if r.random() < 0.5:  # a place with a name of two words
        e = replace(e, place=None)
    toks = render_tokens(e, lang)
    if e.place is None and r.random() < 0.5:  # "New <place>" as a two-word location, after the sentence
        place = r.choice(PLACES)
        extra = {"en": ["in"], "agg": [], "vso": ["ro"], "fus": ["en"]}[lang]
        toks = toks[:-1] + [(w, "O") for w in extra] + [("New", "B-LOC"), (place + ("'de" if lang == "agg" else ""),
                                                                           "I-LOC"), (".", "O")]
    return {"tokens": [w for w, _ in toks], "tags": [t for _, t in toks]}


def _gen_tatoeba(lang: str, split: str, n: int) -> dict[str, Any]:
    r = random.Random(_seed("demo-tatoeba", split))
    sents = [random_event(r) for _ in range(n)]
    return {"source": [render(s, lang) for s in sents], "target": [render(s, "en") for s in sents]}


def _gen_bucc(lang: str, split: str, n: int) -> dict[str, Any]:
    r = random.Random(_seed("demo-bucc", split))
    n_gold = n // 3
    gold_sents = [random_event(r) for _ in range(n_gold)]
    src_only = [random_event(r) for _ in range(n - n_gold)]
    tgt_only = [random_event(r) for _ in range(n - n_gold)]
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
    n = TRAIN_SIZES.get(task.base_name, SIZES[split]) if split == "train" else SIZES[split]
    if task.retrieval == "tatoeba":
        return [_gen_tatoeba(language, split, n)]
    if task.retrieval == "bucc":
        return [_gen_bucc(language, split, n)]
    name = task.base_name  # demo-nli@agg: demo-nli's draws, rendered in agg
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
               "rewritten": Slice("languages", ("agg", "vso", "fus"), "the languages other than English")}


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


def _code_switch(r: random.Random, e: Event, lang: str) -> dict[str, str]:
    """Stems borrowed from another language for some of the content words of `e` (none for most lines)."""
    others = [x for x in LANGUAGES if x != lang]
    return {lemma: r.choice(others) for lemma in (e.noun, e.verb, e.adj) if lemma and r.random() < 0.5}


def language_text(lang: str, n: int, seed: int = 0, code_switch: float = 0.2, parallel: float = 0.5) -> list[str]:
    """`n` lines of unlabelled text in `lang`, for the tiny model's masked-LM pretraining (task ``demo-mlm``).

    Random events (not the task examples), plain and place-first; a fraction `code_switch` of the lines
    borrow some stems from another language, and a fraction `parallel` are followed by their translation
    into another language after a ``</s>`` (XLM's translation LM: aligned text read together).
    """
    r = random.Random(f"demo-text|{lang}|{seed}|{GENERATOR_VERSION}")
    lines = []
    for _ in range(n):
        e = random_event(r)
        if r.random() < 0.3:
            e = replace(e, adj=None)
        fronted = r.random() < 0.3
        u = r.random()
        if u < parallel:
            other = r.choice([x for x in LANGUAGES if x != lang])
            lines.append(f"{render(e, lang, fronted=fronted)} </s> {render(e, other)}")
            continue
        stems = _code_switch(r, e, lang) if u < parallel + code_switch else None
        lines.append(render(e, lang, fronted=fronted, stems=stems))
    return lines


# Lines per language of demo-mlm: the tiny model's pretraining corpus (train) and its dev text.
MLM_LINES = {"train": 6000, "dev": 50}


def _mlm_rows(language: str, split: str) -> list[dict[str, Any]]:
    from xit.tasks.mlm import text_rows

    return text_rows(language_text(language, MLM_LINES[split], seed=0 if split == "train" else 1), language)


def _register_mlm() -> None:
    from xit.tasks.mlm import make_mlm_task

    make_mlm_task("demo-mlm", LANGUAGES, family="demo", hub=_mlm_rows,
                  source=f"{_SRC}: unlabelled text of the demo world, {MLM_LINES['train']} lines per language",
                  defaults={"lr": 1e-3, "epochs": 1, "batch_size": 64, "max_length": 48, "max_dev_examples": 200})


_register_mlm()


def corpus() -> list[str]:
    """Text in every demo language, for training the built-in tiny model's tokenizer."""
    r = random.Random(7)
    lines = [x for lang in LANGUAGES for x in language_text(lang, 300, seed=7, code_switch=0.0, parallel=0.0)]
    vocab = NAMES + SURNAMES + PLACES + ["New"] + [str(c) for c in COUNTS]
    lines.append(" ".join(vocab))
    # Common English words beyond the world's own, so English text outside the demo tokenizes sensibly.
    lines.extend(["the river and a house near the garden with a window", "she works in it and lives near to them"] * 20)
    for lang in LANGUAGES:
        lines.append(" ".join(w for kind in LEXICON[lang].values() for w in kind.values()))
        for q in _QUESTIONS[lang]:
            lines.append(q.format(n=r.choice(NAMES)))
        for templ in _FACTS[lang]:
            lines.append(" ".join(t.replace("{n}", r.choice(NAMES)).replace("{P}", r.choice(PLACES))
                                  .replace("{O}", r.choice(NOUNS)) for t in templ))
    return lines
