"""XTREME target tasks (Hu et al., 2020) with their full XTREME language lists.

Zero-shot protocol: train on English, select on English dev, evaluate on every language's
test set. Production sources are parquet-backed Hub datasets (``datasets`` >= 4 runs no loading
scripts); local sources are the original distributions, default layouts relative to ``data_dir``:

=========  ===================================================================================
xnli       en train: MNLI (``MNLI/train.tsv`` or ``multinli_1.0/multinli_1.0_train.jsonl``);
           dev/test: ``XNLI-1.0/xnli.{dev,test}.tsv`` (all languages in one file, ``language`` column)
pawsx      ``{lang}/{dev_2k,test_2k}.tsv``, en train ``en/train.tsv`` (rows with "NS"/empty dropped)
panx       ``{lang}/{train,dev,test}``: ``lang:token<TAB>tag`` lines (also ``token<TAB>tag`` or
           ``token tag``), blank line between sentences
xquad      test ``xquad.{lang}.json``; en train/dev SQuAD v1.1 ``train-v1.1.json`` / ``dev-v1.1.json``
tatoeba    ``tatoeba.{iso3}-eng.{iso3}`` + ``tatoeba.{iso3}-eng.eng`` (LASER's v1 test set)
bucc       ``{lang}-en.{dev,test}.{lang|en|gold}`` (XTREME's renaming; BUCC's own
           ``{lang}-en.{sample,training}.*`` names are accepted too): ``id<TAB>sentence`` lines,
           gold ``src_id<TAB>tgt_id``
=========  ===================================================================================

What XTREME evaluates on: XQuAD and Tatoeba have a single split each (the Hub calls it
"validation"; here it is "test"). BUCC's official test gold was never released: XTREME uses the
BUCC 2018 *training* data as "test" and the *sample* data as "dev" (where the mining threshold is
tuned). Note the Hub's ``google/xtreme`` ``bucc18.*`` configs hold only the gold pairs, not the
full comparable corpora, so mining on them is far easier than on the original files.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from xit.errors import XitError
from xit.tasks.english import MNLI_FILES, NLI_LABELS, SQUAD_FILES, hf_mnli_rows
from xit.tasks.loading import (
    HF_SPLIT,
    Rows,
    hf_load,
    hf_pair_rows,
    hf_squad_rows,
    local_file,
    make_io,
    nli_rows,
    read_lines,
    read_tsv,
    require,
    squad_rows,
)
from xit.tasks.registry import DataSource, Task, register

XNLI_LANGS = ("en", "ar", "bg", "de", "el", "es", "fr", "hi", "ru", "sw", "th", "tr", "ur", "vi", "zh")
PAWSX_LANGS = ("en", "de", "es", "fr", "ja", "ko", "zh")
PANX_LANGS = (
    "af ar bg bn de el en es et eu fa fi fr he hi hu id it ja jv "
    "ka kk ko ml mr ms my nl pt ru sw ta te th tl tr ur vi yo zh"
).split()
XQUAD_LANGS = ("en", "ar", "de", "el", "es", "hi", "ru", "th", "tr", "vi", "zh")
# XTREME's 36 Tatoeba languages -> the LASER file codes (ISO 639-3, as XTREME uses them).
TATOEBA_ISO3 = {
    "af": "afr", "ar": "ara", "bg": "bul", "bn": "ben", "de": "deu", "el": "ell", "es": "spa",
    "et": "est", "eu": "eus", "fa": "pes", "fi": "fin", "fr": "fra", "he": "heb", "hi": "hin",
    "hu": "hun", "id": "ind", "it": "ita", "ja": "jpn", "jv": "jav", "ka": "kat", "kk": "kaz",
    "ko": "kor", "ml": "mal", "mr": "mar", "nl": "nld", "pt": "por", "ru": "rus", "sw": "swh",
    "ta": "tam", "te": "tel", "th": "tha", "tl": "tgl", "tr": "tur", "ur": "urd", "vi": "vie",
    "zh": "cmn",
}  # fmt: skip
BUCC_LANGS = ("de", "fr", "ru", "zh")
PANX_LABELS = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC")

_CLS = {"lr": 2e-5, "epochs": 5, "batch_size": 32, "max_length": 128, "warmup_ratio": 0.1}
_RETRIEVAL = {"max_length": 128, "batch_size": 64}


def _en_train(language: str) -> tuple[str, ...]:
    """English has train/dev/test; other languages are evaluation-only (zero-shot)."""
    return ("train", "dev", "test") if language == "en" else ("dev", "test")


def _only(languages: Iterable[str], *splits: str) -> Callable[[str], tuple[str, ...]]:
    """Splits for retrieval tasks: no English side of its own (English is every pair's target)."""
    return lambda lang: splits if lang in languages else ()


def _xtreme(name: str, fmt: str, languages: tuple[str, ...], metric: str, source: str,
            io: dict[str, Any], **kw: Any) -> Task:
    return register(Task(name=name, format=fmt, languages=tuple(languages), metric=metric, source=source,
                         family="xtreme", **io, **kw))


def _one_file(names: Callable[[str, str], tuple[str, ...]]) -> Callable[..., list[Path]]:
    """files_fn for tasks reading one file per (language, split), given candidate default names."""
    return lambda task, lang, split, source: [local_file(task, lang, split, source, *names(lang, split))]


# --------------------------------------------------------------------------- XNLI


def _xnli_names(lang: str, split: str) -> tuple[str, ...]:
    return MNLI_FILES["train"] if split == "train" else (f"XNLI-1.0/xnli.{split}.tsv",)


def _xnli_hub(task: Task, lang: str, split: str) -> Rows:
    if split == "train":
        return hf_mnli_rows("train")
    return hf_pair_rows(hf_load("facebook/xnli", lang, HF_SPLIT[split]), "premise", "hypothesis", 3)


_xtreme(
    "xnli", "classification", XNLI_LANGS, "accuracy",
    "facebook/xnli (dev, test) + nyu-mll/glue:mnli (en train)",
    make_io(
        _en_train,
        _one_file(_xnli_names),
        lambda task, lang, split, files: nli_rows(task, files[0], None if split == "train" else lang),
        _xnli_hub,
    ),
    labels=NLI_LABELS, defaults=dict(_CLS),
)  # fmt: skip


# --------------------------------------------------------------------------- PAWS-X


def _usable_pair(a: str | None, b: str | None) -> bool:
    """PAWS-X marks untranslatable sentences "NS"; upstream says to drop those rows (and empty ones)."""
    return all(s is not None and s.strip() not in ("", "NS") for s in (a, b))


_PAWSX_FILES = {"train": "train.tsv", "dev": "dev_2k.tsv", "test": "test_2k.tsv"}


def _pawsx_parse(task: Task, lang: str, split: str, files: list[Path]) -> Rows:
    return [
        {"text_a": r["sentence1"], "text_b": r["sentence2"], "label": int(r["label"])}
        for r in read_tsv(files[0])
        if _usable_pair(r.get("sentence1"), r.get("sentence2")) and r.get("label", "").strip() in ("0", "1")
    ]


def _pawsx_hub(task: Task, lang: str, split: str) -> Rows:
    ds = hf_load("google-research-datasets/paws-x", lang, HF_SPLIT[split])
    rows = hf_pair_rows(ds, "sentence1", "sentence2", 2)
    return [r for r in rows if _usable_pair(r["text_a"], r["text_b"])]


_xtreme(
    "pawsx", "classification", PAWSX_LANGS, "accuracy", "google-research-datasets/paws-x",
    make_io(
        _en_train,
        _one_file(lambda lang, split: (f"{lang}/{_PAWSX_FILES[split]}",)),
        _pawsx_parse,
        _pawsx_hub,
    ),
    labels=("different", "paraphrase"), defaults=dict(_CLS),
)  # fmt: skip


# --------------------------------------------------------------------------- PAN-X (WikiANN)


def _panx_parse(task: Task, lang: str, split: str, files: list[Path]) -> Rows:
    path, prefix = files[0], f"{lang}:"
    rows: Rows = []
    tokens: list[str] = []
    tags: list[str] = []
    for i, line in enumerate([*read_lines(path), ""], 1):
        if not line.strip() or line.startswith("-DOCSTART-"):
            if tokens:
                rows.append({"tokens": tokens, "tags": tags})
                tokens, tags = [], []
            continue
        tok, sep, tag = line.rpartition("\t")
        if not sep:
            tok, _, tag = line.strip().rpartition(" ")
        if not tok or tag not in task.labels:
            raise XitError(f"{path}:{i}: expected 'token<TAB>tag', tag in {'/'.join(task.labels)}: {line!r}")
        tokens.append(tok[len(prefix):] if tok.startswith(prefix) and len(tok) > len(prefix) else tok)
        tags.append(tag)
    return rows


def _panx_hub(task: Task, lang: str, split: str) -> Rows:
    ds = hf_load("unimelb-nlp/wikiann", lang, HF_SPLIT[split])
    return [{"tokens": list(r["tokens"]), "tags": [task.labels[t] for t in r["ner_tags"]]} for r in ds]


_xtreme(
    "panx", "tagging", PANX_LANGS, "f1", "unimelb-nlp/wikiann (Rahimi et al. splits, as XTREME)",
    make_io(lambda lang: ("train", "dev", "test"), _one_file(lambda lang, split: (f"{lang}/{split}",)),
            _panx_parse, _panx_hub),
    labels=PANX_LABELS, defaults={**_CLS, "epochs": 10},
)  # fmt: skip


# --------------------------------------------------------------------------- XQuAD


def _xquad_hub(task: Task, lang: str, split: str) -> Rows:
    if split == "test":
        return hf_squad_rows(hf_load("google/xquad", f"xquad.{lang}", "validation"))
    return hf_squad_rows(hf_load("rajpurkar/squad", "plain_text", HF_SPLIT[split]))


_xtreme(
    "xquad", "span_qa", XQUAD_LANGS, "em_f1", "google/xquad (test) + rajpurkar/squad (en train, dev)",
    make_io(
        lambda lang: ("train", "dev", "test") if lang == "en" else ("test",),
        _one_file(lambda lang, split: (f"xquad.{lang}.json" if split == "test" else SQUAD_FILES[split],)),
        lambda task, lang, split, files: squad_rows(files[0]),
        _xquad_hub,
    ),
    defaults={**_CLS, "lr": 3e-5, "epochs": 2, "max_length": 384, "doc_stride": 128},
)  # fmt: skip


# --------------------------------------------------------------------------- Tatoeba


def _tatoeba_files(task: Task, lang: str, split: str, source: DataSource) -> list[Path]:
    iso = TATOEBA_ISO3[lang]
    src = local_file(task, lang, split, source, f"tatoeba.{iso}-eng.{iso}")
    return require(task, src, src.with_suffix(".eng"))


def _tatoeba_parse(task: Task, lang: str, split: str, files: list[Path]) -> Rows:
    source, target = read_lines(files[0]), read_lines(files[1])
    if len(source) != len(target):
        raise XitError(f"{files[0]} has {len(source)} lines but {files[1]} has {len(target)}: not aligned")
    return [{"source": source, "target": target}]


def _tatoeba_hub(task: Task, lang: str, split: str) -> Rows:
    ds = hf_load("google/xtreme", f"tatoeba.{TATOEBA_ISO3[lang]}", "validation")  # its only split
    return [{"source": [r["source_sentence"].rstrip("\r\n") for r in ds],
             "target": [r["target_sentence"].rstrip("\r\n") for r in ds]}]


_xtreme(
    "tatoeba", "retrieval", tuple(TATOEBA_ISO3), "accuracy",
    "google/xtreme:tatoeba.<iso3> (LASER Tatoeba v1)",
    make_io(_only(TATOEBA_ISO3, "test"), _tatoeba_files, _tatoeba_parse, _tatoeba_hub),
    retrieval="tatoeba", roles=frozenset({"target"}), defaults=dict(_RETRIEVAL),
)  # fmt: skip


# --------------------------------------------------------------------------- BUCC 2018

_BUCC_ORIGINAL = {"dev": "sample", "test": "training"}


def _bucc_files(task: Task, lang: str, split: str, source: DataSource) -> list[Path]:
    names = (f"{lang}-en.{split}.{lang}", f"{lang}-en.{_BUCC_ORIGINAL[split]}.{lang}")
    src = local_file(task, lang, split, source, *names)
    return require(task, src, src.with_suffix(".en"), src.with_suffix(".gold"))


def _id_sentences(path: Path) -> tuple[list[str], list[str]]:
    ids, sents = [], []
    for i, line in enumerate(read_lines(path), 1):
        sid, sep, sent = line.partition("\t")
        if not sep:
            raise XitError(f"{path}:{i}: expected 'id<TAB>sentence'")
        ids.append(sid)
        sents.append(sent)
    return ids, sents


def _bucc_parse(task: Task, lang: str, split: str, files: list[Path]) -> Rows:
    (source_ids, source), (target_ids, target) = _id_sentences(files[0]), _id_sentences(files[1])
    known_s, known_t = set(source_ids), set(target_ids)
    gold = []
    for i, line in enumerate(read_lines(files[2]), 1):
        pair = line.split("\t")
        if len(pair) != 2 or pair[0] not in known_s or pair[1] not in known_t:
            raise XitError(f"{files[2]}:{i}: expected 'src_id<TAB>tgt_id' with ids from the sentence files")
        gold.append(pair)
    return [{"source_ids": source_ids, "source": source, "target_ids": target_ids, "target": target,
             "gold": gold}]


def _bucc_hub(task: Task, lang: str, split: str) -> Rows:
    # google/xtreme bucc18.*: one row per gold pair; "source_lang"/"target_lang" hold the sentence *ids*.
    ds = hf_load("google/xtreme", f"bucc18.{lang}", HF_SPLIT[split])
    src: dict[str, str] = {}
    tgt: dict[str, str] = {}
    gold = []
    for r in ds:
        src[r["source_lang"]] = r["source_sentence"]
        tgt[r["target_lang"]] = r["target_sentence"]
        gold.append([r["source_lang"], r["target_lang"]])
    return [{"source_ids": list(src), "source": list(src.values()), "target_ids": list(tgt),
             "target": list(tgt.values()), "gold": gold}]


_xtreme(
    "bucc", "retrieval", BUCC_LANGS, "f1",
    "google/xtreme:bucc18.<lang> (BUCC 2018: sample = dev, training = test)",
    make_io(_only(BUCC_LANGS, "dev", "test"), _bucc_files, _bucc_parse, _bucc_hub),
    retrieval="bucc", roles=frozenset({"target"}), defaults=dict(_RETRIEVAL),
)  # fmt: skip
