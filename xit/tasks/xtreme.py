"""XTREME target tasks (Hu et al., 2020) with their full XTREME language lists.

Zero-shot protocol: train on English, select on English dev, evaluate on every language's
test set. Production sources are parquet-backed Hub datasets (``datasets`` >= 4 runs no loading
scripts); local sources are the original distributions, default layouts relative to ``data_dir``:

=========  ===================================================================================
xnli       en train: MNLI (``MNLI/train.tsv`` or ``multinli_1.0/multinli_1.0_train.jsonl``);
           dev/test: ``XNLI-1.0/xnli.{dev,test}.tsv`` (all languages in one file, ``language`` column)
pawsx      ``{lang}/{dev_2k,test_2k}.tsv``, en train ``en/train.tsv`` (every labelled row, "NS" ones too, as XTREME)
panx       ``{lang}/{train,dev,test}``: ``lang:token<TAB>tag`` lines (also ``token<TAB>tag`` or
           ``token tag``), blank line between sentences
xquad      test ``xquad.{lang}.json``; en train/dev SQuAD v1.1 ``train-v1.1.json`` / ``dev-v1.1.json``
tatoeba    ``tatoeba.{iso3}-eng.{iso3}`` + ``tatoeba.{iso3}-eng.eng`` (LASER's v1 test set)
bucc       ``{lang}-en.{dev,test}.{lang|en|gold}`` (XTREME's renaming; BUCC's own
           ``{lang}-en.{sample,training}.*`` names, flat or in the archive's ``{lang}-en/``, are accepted too):
           ``id<TAB>sentence`` lines, gold ``src_id<TAB>tgt_id`` (test gold: ``.test.gold`` or ``.training.gold``)
udpos      CoNLL-U ``{lang}/*-ud-{split}.conllu`` (also ``UD_*/{lang}_*-ud-{split}.conllu``, flat
           ``{lang}_*-ud-{split}.conllu`` or the unpacked ``ud-treebanks-v2.5/``; every treebank of the
           language, concatenated): FORM + UPOS, read as
           XTREME's preprocessing reads UD (a multiword token is one word tagged with its head word's UPOS;
           sentences without word forms dropped). Only en has train/dev; kk, th, tl, yo have test only (UD v2.5)
xcopa      ``{lang}/{val,test}.{lang}.jsonl`` or flat ``{val,test}.{lang}.jsonl`` (val = dev);
           en train/dev: SuperGLUE COPA ``COPA/{train,val}.jsonl``
mlqa       test ``MLQA_V1/test/test-context-{l}-question-{l}.json`` (or the bare file name); rows carry
           ``"language"``, the language MLQA's normalisation scores them in (the task declares it); en train/dev
           SQuAD v1.1
tydiqa     test ``tydiqa-goldp-v1.1-dev/tydiqa-goldp-dev-{english,arabic,...}.json`` (XTREME's renamed
           ``tydiqa.{lang}.dev.json`` too); en train: the English questions of GoldP train (XTREME's
           ``tydiqa-goldp-v1.1-train/tydiqa.en.train.json``, or the release's ``tydiqa-goldp-v1.1-train.json``),
           en dev: English GoldP dev, as XTREME's ``train_qa.sh``
=========  ===================================================================================

What XTREME evaluates on: XQuAD and Tatoeba have a single split each (the Hub calls it
"validation"; here it is "test"). BUCC's official test gold was never released: XTREME uses the
BUCC 2018 *training* data as "test" and the *sample* data as "dev" (where the mining threshold is
tuned). The Hub's ``google/xtreme`` ``bucc18.*`` configs hold only the gold pairs, not the full comparable
corpora, so mining on them is far easier than on the original files: xit never reads them; its production
path downloads BUCC's own archives, as XTREME's download script does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from xit.errors import XitError
from xit.tasks.english import MNLI_FILES, NLI_LABELS, SQUAD_FILES, hf_mnli_rows
from xit.tasks.loading import (
    HF_SPLIT,
    HubFn,
    Rows,
    bucc_rows,
    hf_load,
    hf_pair_rows,
    hf_squad_rows,
    local_file,
    local_root,
    make_io,
    nli_rows,
    parallel_rows,
    read_jsonl,
    read_lines,
    read_tsv,
    require,
    squad_rows,
)
from xit.tasks.registry import DataSource, Slice, Task, register

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
# XTREME's scripts/train_qa.sh (SQuAD for XQuAD/MLQA, English GoldP for TyDiQA): lr 3e-5, 3 epochs, batch 4 x 8.
_QA = {**_CLS, "lr": 3e-5, "epochs": 3, "max_length": 384, "doc_stride": 128}


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
    if split == "train":
        return MNLI_FILES["train"] if lang == "en" else (f"XNLI-MT-1.0/multinli/multinli.train.{lang}.tsv",)
    return (f"XNLI-1.0/xnli.{split}.tsv",)


def xnli_mt_rows(task: Task, path: Path) -> Rows:
    """XNLI-MT 1.0's machine-translated MNLI train set of one language: a TSV headed ``premise hypo label`` whose
    label says ``contradictory`` for MNLI's ``contradiction`` (as the `datasets` XNLI builder maps it, xnli.py
    ``_generate_examples``: the Hub's facebook/xnli <lang> train split is this file)."""
    records = read_tsv(path)
    if records and not {"premise", "hypo", "label"} <= records[0].keys():
        raise XitError(f"{path}: expected XNLI-MT columns premise, hypo, label")
    rows = []
    for r in records:
        gold = "contradiction" if r.get("label") == "contradictory" else r.get("label")
        if gold in task.labels:
            rows.append({"text_a": r["premise"], "text_b": r["hypo"], "label": task.labels.index(gold)})
    return rows


def _xnli_parse(task: Task, lang: str, split: str, files: list[Path]) -> Rows:
    if split == "train":
        return nli_rows(task, files[0]) if lang == "en" else xnli_mt_rows(task, files[0])
    return nli_rows(task, files[0], lang)


# MNLI's training data has five genres; XNLI's dev/test pairs come from all ten of MultiNLI's (Conneau et al.,
# 2018, sec. 3.1), so five are out of distribution for a model intermediate-trained on MNLI.
MNLI_TRAIN_GENRES = ("fiction", "government", "slate", "telephone", "travel")
XNLI_NEW_GENRES = ("facetoface", "letters", "nineeleven", "oup", "verbatim")
XNLI_SLICES = {
    "mnli-genres": Slice("genre", MNLI_TRAIN_GENRES, "genres of MNLI's training data", needs_local=True),
    "new-genres": Slice("genre", XNLI_NEW_GENRES, "genres MNLI's training data lacks", needs_local=True),
}


def _xnli_hub(task: Task, lang: str, split: str) -> Rows:
    if split == "train" and lang == "en":
        return hf_mnli_rows("train")
    return hf_pair_rows(hf_load("facebook/xnli", lang, HF_SPLIT[split]), "premise", "hypothesis", 3)


_xtreme(
    "xnli", "classification", XNLI_LANGS, "accuracy",
    "facebook/xnli (dev, test; <lang> train: XNLI-MT's translated MNLI) + nyu-mll/glue:mnli (en train)",
    make_io(lambda lang: ("train", "dev", "test"), _one_file(_xnli_names), _xnli_parse, _xnli_hub),
    labels=NLI_LABELS, defaults=dict(_CLS), train_languages=XNLI_LANGS, slices=XNLI_SLICES,
)  # fmt: skip


# --------------------------------------------------------------------------- PAWS-X


_PAWSX_FILES = {"train": "train.tsv", "dev": "dev_2k.tsv", "test": "test_2k.tsv"}


def _pawsx_names(lang: str, split: str) -> tuple[str, ...]:
    """PAWS-X's ``x-final/<lang>/`` layout; the non-English train sets are machine-translated
    (``translated_train.tsv``, the Hub's <lang> train split)."""
    if split == "train" and lang != "en":
        return (f"{lang}/translated_train.tsv",)
    return (f"{lang}/{_PAWSX_FILES[split]}",)


# PAWS-X marks sentences its translators could not translate "NS" (68 of German dev_2k's 2,000 rows). XTREME keeps
# every row: google-research/xtreme utils_preprocess.py, pawsx_preprocess, copies each line's two sentences and
# label whatever they hold, and its scores are over all 2,000 dev/test rows per language. xit does the same, so a
# PAWS-X accuracy is comparable with XTREME's; only rows without a 0/1 label are left out.
def _pawsx_parse(task: Task, lang: str, split: str, files: list[Path]) -> Rows:
    return [
        {"text_a": (r.get("sentence1") or "").strip(), "text_b": (r.get("sentence2") or "").strip(),
         "label": int(r["label"])}
        for r in read_tsv(files[0])
        if (r.get("label") or "").strip() in ("0", "1")
    ]


def _pawsx_hub(task: Task, lang: str, split: str) -> Rows:
    return hf_pair_rows(hf_load("google-research-datasets/paws-x", lang, HF_SPLIT[split]), "sentence1", "sentence2", 2)


_xtreme(
    "pawsx", "classification", PAWSX_LANGS, "accuracy",
    "google-research-datasets/paws-x (every row kept, \"NS\" untranslated ones too, as XTREME scores it)",
    make_io(
        lambda lang: ("train", "dev", "test"),
        _one_file(_pawsx_names),
        _pawsx_parse,
        _pawsx_hub,
    ),
    labels=("different", "paraphrase"), defaults=dict(_CLS), train_languages=PAWSX_LANGS,
    data_version="2",  # 2: NS rows kept, as XTREME
)  # fmt: skip


# --------------------------------------------------------------------------- PAN-X (WikiANN)


def panx_parse(task: Task, lang: str, split: str, files: list[Path]) -> Rows:
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


# WikiANN's loaders and defaults, shared with XTREME-R's language expansion (xtreme_r.panx-r).
PANX_IO = make_io(lambda lang: ("train", "dev", "test"), _one_file(lambda lang, split: (f"{lang}/{split}",)),
                  panx_parse, _panx_hub)
PANX_DEFAULTS = {**_CLS, "epochs": 10}

_xtreme(
    "panx", "tagging", PANX_LANGS, "f1", "unimelb-nlp/wikiann (Rahimi et al. splits, as XTREME)", PANX_IO,
    labels=PANX_LABELS, defaults=PANX_DEFAULTS, train_languages=tuple(PANX_LANGS),
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
    defaults=dict(_QA), train_task="squad",
)  # fmt: skip


# --------------------------------------------------------------------------- Tatoeba


def tatoeba_files(iso3: dict[str, str]) -> Callable[..., list[Path]]:
    """files_fn of a Tatoeba task over the language -> ISO 639-3 table ``iso3``: LASER's file pair."""

    def files(task: Task, lang: str, split: str, source: DataSource) -> list[Path]:
        src = local_file(task, lang, split, source, f"tatoeba.{iso3[lang]}-eng.{iso3[lang]}")
        return require(task, src, src.with_suffix(".eng"))

    return files


def _tatoeba_parse(task: Task, lang: str, split: str, files: list[Path]) -> Rows:
    return parallel_rows(files[0], files[1])


def _tatoeba_hub(task: Task, lang: str, split: str) -> Rows:
    ds = hf_load("google/xtreme", f"tatoeba.{TATOEBA_ISO3[lang]}", "validation")  # its only split
    return [{"source": [r["source_sentence"].rstrip("\r\n") for r in ds],
             "target": [r["target_sentence"].rstrip("\r\n") for r in ds]}]


def tatoeba_task(name: str, iso3: dict[str, str], source: str, hub: HubFn, family: str) -> Task:
    """A Tatoeba retrieval target over the languages of `iso3` (language -> LASER's three-letter code): test
    only, LASER's line-aligned files locally (`tatoeba_files`), `hub` in production. XTREME's and XTREME-R's."""
    return register(Task(name=name, format="retrieval", languages=tuple(iso3), metric="accuracy", source=source,
                         family=family, retrieval="tatoeba", roles=frozenset({"target"}), defaults=dict(_RETRIEVAL),
                         **make_io(_only(iso3, "test"), tatoeba_files(iso3), _tatoeba_parse, hub)))


tatoeba_task("tatoeba", TATOEBA_ISO3, "google/xtreme:tatoeba.<iso3> (LASER Tatoeba v1)", _tatoeba_hub, "xtreme")


# --------------------------------------------------------------------------- BUCC 2018

_BUCC_ORIGINAL = {"dev": "sample", "test": "training"}
# The BUCC 2018 release XTREME mines (google-research/xtreme scripts/download_data.sh, download_bucc18): one
# archive per language and part, holding ``{lang}-en/{lang}-en.{sample|training}.{lang|en|gold}``, every sentence
# of both comparable corpora (hundreds of thousands per side for training) and the gold pairs.
BUCC_URL = "https://comparable.limsi.fr/bucc2018/bucc2018-{lang}-en.{part}-gold.tar.bz2"


def _bucc_files(task: Task, lang: str, split: str, source: DataSource) -> list[Path]:
    """The corpora of one language and split: XTREME's renamed ``{lang}-en.{dev|test}.*`` (download_bucc18 moves
    sample to dev and training to test), BUCC's own names, flat or in the archive's ``{lang}-en/`` folder.

    XTREME's script deletes ``*test.gold`` (its test gold is the leaderboard's); xit scores locally, so the test
    split needs it: ``{lang}-en.test.gold`` or BUCC's ``{lang}-en.training.gold`` beside the sentences."""
    orig = _BUCC_ORIGINAL[split]
    names = (f"{lang}-en.{split}.{lang}", f"{lang}-en.{orig}.{lang}", f"{lang}-en/{lang}-en.{orig}.{lang}")
    src = local_file(task, lang, split, source, *names)
    golds = [src.with_suffix(".gold"), src.parent / f"{lang}-en.{orig}.gold"]
    gold = next((g for g in golds if g.is_file()), golds[0])
    if not gold.is_file():
        raise XitError(f"task {task.name!r} ({lang}/{split}): missing local data file {gold} (the gold pairs; "
                       f"XTREME's download script deletes *test.gold: keep BUCC's {lang}-en.{orig}.gold)")
    return require(task, src, src.with_suffix(".en"), gold)


def _bucc_parse(task: Task, lang: str, split: str, files: list[Path]) -> Rows:
    return bucc_rows(files[0], files[1], files[2])


def _bucc_download(task: Task, lang: str, split: str) -> Rows:
    """The production path: BUCC 2018's own archive (what XTREME downloads), through `datasets`' download manager.

    Not the Hub's ``google/xtreme`` ``bucc18.<lang>`` configs: those hold only the gold pairs (bucc18.de: 1,038
    dev, 9,580 test rows), not the comparable corpora, so mining on them is near-trivial and F1 inflated."""
    from datasets import DownloadManager

    part = _BUCC_ORIGINAL[split]
    root = Path(DownloadManager().download_and_extract(BUCC_URL.format(lang=lang, part=part)))
    found = sorted(root.rglob(f"{lang}-en.{part}.{lang}"))
    if not found:
        raise XitError(f"task {task.name!r} ({lang}/{split}): {BUCC_URL.format(lang=lang, part=part)} holds no "
                       f"{lang}-en.{part}.{lang}")
    sents = found[0]
    return bucc_rows(*require(task, sents, sents.with_suffix(".en"), sents.with_suffix(".gold")))


_xtreme(
    "bucc", "retrieval", BUCC_LANGS, "f1",
    "BUCC 2018 corpora (comparable.limsi.fr bucc2018-<lang>-en.{sample,training}-gold, as XTREME's download "
    "script; sample = dev, training = test), mined de-duplicated as XTREME; not google/xtreme:bucc18 (gold pairs "
    "only)",
    make_io(_only(BUCC_LANGS, "dev", "test"), _bucc_files, _bucc_parse, _bucc_download),
    retrieval="bucc", roles=frozenset({"target"}), defaults=dict(_RETRIEVAL),
)  # fmt: skip


# --------------------------------------------------------------------------- UD-POS

# XTREME's 33 UD v2.5 languages -> their names (the Hub's google/xtreme "udpos.<Name>" configs, not read).
UDPOS_NAMES = {
    "af": "Afrikaans", "ar": "Arabic", "bg": "Bulgarian", "de": "German", "el": "Greek", "en": "English",
    "es": "Spanish", "et": "Estonian", "eu": "Basque", "fa": "Persian", "fi": "Finnish", "fr": "French",
    "he": "Hebrew", "hi": "Hindi", "hu": "Hungarian", "id": "Indonesian", "it": "Italian", "ja": "Japanese",
    "kk": "Kazakh", "ko": "Korean", "mr": "Marathi", "nl": "Dutch", "pt": "Portuguese", "ru": "Russian",
    "ta": "Tamil", "te": "Telugu", "th": "Thai", "tl": "Tagalog", "tr": "Turkish", "ur": "Urdu",
    "vi": "Vietnamese", "yo": "Yoruba", "zh": "Chinese",
}  # fmt: skip
# The 17 UD v2 UPOS tags, in the order of google/xtreme's udpos ``pos_tags`` ClassLabel.
UPOS_LABELS = (
    "ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM", "PART", "PRON", "PROPN", "PUNCT",
    "SCONJ", "SYM", "VERB", "X",
)  # fmt: skip
# UD v2.5 has no dev set for these (Kazakh's train is not used zero-shot): evaluation on test only.
UDPOS_TEST_ONLY = ("kk", "th", "tl", "yo")


def _udpos_splits(lang: str) -> tuple[str, ...]:
    if lang == "en":
        return ("train", "dev", "test")
    return ("test",) if lang in UDPOS_TEST_ONLY else ("dev", "test")


# The UD releases XTREME reads (google-research/xtreme scripts/download_data.sh, download_treebank): v2.5 for
# XTREME's 33 languages, v2.7 only for the five XTREME-R adds (lt pl uk wo ro), "to ensure backwards compatibility".
UD_RELEASES = {
    "2.5": "https://lindat.mff.cuni.cz/repository/xmlui/bitstream/handle/11234/1-3105/ud-treebanks-v2.5.tgz",
    "2.7": "https://lindat.mff.cuni.cz/repository/xmlui/bitstream/handle/11234/1-3424/ud-treebanks-v2.7.tgz",
}


def ud_files(task: Task, lang: str, split: str, source: DataSource, version: str) -> list[Path]:
    """All treebanks of a language in UD ``version``, as XTREME concatenates them (Arabic NYUAD, which has no
    word forms, skipped).

    Accepted layouts under ``data_dir``: the unpacked releases side by side (``ud-treebanks-v2.5/``,
    ``ud-treebanks-v2.7/``, as download_treebank untars them; the one of ``version`` is read), or one tree of
    ``{lang}/*-ud-{split}.conllu``, UD's own ``UD_*/{lang}_*-ud-{split}.conllu`` or flat
    ``{lang}_*-ud-{split}.conllu``; a ``data_dir`` named for another release is refused. ``data_files``
    overrides."""
    return local_root(task, source, (f"{lang}.{split}", split),
                      lambda root: _ud_search(task, lang, split, root, version),
                      missing=f"task {task.name!r} ({lang}/{split}): no local file: set data_files '{lang}.{split}' "
                              "or data_dir")


def _ud_search(task: Task, lang: str, split: str, root: Path, version: str) -> list[Path]:
    release = root / f"ud-treebanks-v{version}"
    if release.is_dir():
        root = release
    elif root.name.startswith("ud-treebanks-v") and root.name != release.name:
        raise XitError(f"task {task.name!r} ({lang}/{split}): {root} is not UD v{version}, the release XTREME reads "
                       f"for {lang!r}: give the directory holding ud-treebanks-v{version}/")
    patterns = (f"{lang}/*-ud-{split}.conllu", f"UD_*/{lang}_*-ud-{split}.conllu", f"{lang}_*-ud-{split}.conllu")
    for pattern in patterns:
        files = sorted(p for p in root.glob(pattern) if p.is_file() and "nyuad" not in p.name.lower())
        if files:
            return files
    raise XitError(f"task {task.name!r} ({lang}/{split}): missing local data file {root / patterns[0]}")


def _udpos_files(task: Task, lang: str, split: str, source: DataSource) -> list[Path]:
    return ud_files(task, lang, split, source, "2.5")


def ud_release_rows(task: Task, lang: str, split: str, version: str) -> Rows:
    """The production path: UD ``version``'s release archive, the one XTREME downloads (through `datasets`'
    download manager and cache), read as the local path reads it, so both give XTREME's sentences: multiword
    tokens as their fused forms. (The Hub's ``google/xtreme`` ``udpos.*`` configs keep the syntactic words
    instead and drop each "_" word, not XTREME's sentences, and hold v2.5 only: xit does not read them.)"""
    from datasets import DownloadManager

    root = Path(DownloadManager().download_and_extract(UD_RELEASES[version]))
    files = ud_files(task, lang, split, DataSource(data_dir=root), version)
    return udpos_parse(task, lang, split, files)


# XTREME converts UD with ud-conversion-tools' conllu_to_conll.py --replace_subtokens_with_fused_forms: a
# multiword token ("del" = de + el) becomes one word, its surface form, tagged with the UPOS of the span's head
# word: the one word of the span nearest the tree's root, or, on a tie, the word whose UPOS comes first in a
# precedence list (per language where the tool has one). These lists are the tool's.
UPOS_PRECEDENCE = {
    "default": ("VERB", "NOUN", "PROPN", "PRON", "ADJ", "NUM", "ADV", "INTJ", "AUX", "ADP", "DET", "PART", "CCONJ",
                "SCONJ", "X", "PUNCT"),
    "es": ("VERB", "AUX", "PRON", "ADP", "DET"),
    "fr": ("VERB", "AUX", "PRON", "NOUN", "ADJ", "ADV", "ADP", "DET", "PART", "SCONJ", "CONJ"),
    "it": ("VERB", "AUX", "ADV", "PRON", "ADP", "DET", "INTJ"),
}  # fmt: skip


def _span_head(span: list[int], upos: dict[int, str], depth: dict[int, int], lang: str) -> int:
    top = min(depth[w] for w in span)
    tied = [w for w in span if depth[w] == top]
    if len(tied) == 1:
        return tied[0]
    order = UPOS_PRECEDENCE.get(lang, UPOS_PRECEDENCE["default"])
    return min(tied, key=lambda w: order.index(upos[w]) if upos[w] in order else len(order))  # first on ties


def _depths(heads: dict[int, int]) -> dict[int, int]:
    """Each word's distance to the root (HEAD 0); a word whose head chain is broken or cyclic gets len(heads)."""
    out: dict[int, int] = {}
    for w in heads:
        d, h, seen = 0, w, set()
        while h != 0 and h in heads and h not in seen:
            seen.add(h)
            h, d = heads[h], d + 1
        out[w] = d if h == 0 else len(heads)
    return out


def conllu_rows(task: Task, path: Path, lang: str | None = None) -> Rows:
    """FORM and UPOS of each sentence (comments and empty nodes ``8.1`` skipped).

    Without ``lang``: the syntactic words (multiword-token lines ``3-4`` skipped). With ``lang``: as XTREME
    reads UD, each multiword token as one word, its surface form tagged with its head word's UPOS
    (`UPOS_PRECEDENCE`)."""
    rows: Rows = []
    words: list[tuple[int, str, str, int]] = []  # (id, form, upos, head; -1 if not a number)
    ranges: dict[int, tuple[int, str]] = {}  # first word id -> (last word id, surface form)

    def flush() -> None:
        if not words:
            return
        if lang is None or not ranges:
            rows.append({"tokens": [w[1] for w in words], "tags": [w[2] for w in words]})
        else:
            upos = {w[0]: w[2] for w in words}
            depth = _depths({w[0]: w[3] for w in words if w[3] >= 0})
            depth.update({w[0]: len(words) for w in words if w[3] < 0})
            tokens, tags, skip_to = [], [], 0
            for wid, form, tag, _ in words:
                if wid <= skip_to:
                    continue
                if wid in ranges:
                    last, surface = ranges[wid]
                    span = [w for w in range(wid, last + 1) if w in upos]
                    form, tag, skip_to = surface, upos[_span_head(span, upos, depth, lang)], last
                tokens.append(form)
                tags.append(tag)
            rows.append({"tokens": tokens, "tags": tags})
        words.clear()
        ranges.clear()

    for i, line in enumerate([*read_lines(path), ""], 1):
        if not line.strip():
            flush()
            continue
        if line.startswith("#"):
            continue
        cols = line.split("\t")
        if len(cols) != 10:
            raise XitError(f"{path}:{i}: expected 10 tab-separated CoNLL-U columns, got {len(cols)}")
        if "-" in cols[0]:
            first, _, last = cols[0].partition("-")
            if first.isdigit() and last.isdigit():
                ranges[int(first)] = (int(last), cols[1])
            continue
        if not cols[0].isdigit():  # "8.1" empty node
            continue
        if cols[3] not in task.labels:
            raise XitError(f"{path}:{i}: UPOS {cols[3]!r} is not one of {'/'.join(task.labels)}")
        words.append((int(cols[0]), cols[1], cols[3], int(cols[6]) if cols[6].isdigit() else -1))
    return rows


def has_word_forms(row: dict[str, Any]) -> bool:
    """XTREME's test for treebanks released without text (forms "_"): keep a sentence unless all its words, or
    all but one, are "_" (``udpos_preprocess`` in google-research/xtreme's ``utils_preprocess.py``)."""
    empty = sum(t == "_" for t in row["tokens"])
    return empty == 0 or empty < len(row["tokens"]) - 1


def xtreme_ud(rows: Rows) -> Rows:
    """XTREME's UD-POS preprocessing of read sentences: drop sentences without word forms, and delete zero-width
    non-joiners (U+200C) and spaces inside words (a word with a space, as in some Vietnamese treebanks, stays one
    word)."""
    return [{"tokens": ["".join(w.replace("\u200c", "").split(" ")) for w in r["tokens"]], "tags": r["tags"]}
            for r in rows if has_word_forms(r)]


def udpos_parse(task: Task, lang: str, split: str, files: list[Path]) -> Rows:
    """Every treebank file of a language, read as XTREME reads UD (`conllu_rows`, `xtreme_ud`)."""
    return xtreme_ud([r for f in files for r in conllu_rows(task, f, lang)])


_xtreme(
    "udpos", "tagging", tuple(UDPOS_NAMES), "f1",
    "UD v2.5 release (ud-treebanks-v2.5.tgz, as XTREME's download script), read as XTREME reads it (multiword "
    "tokens as fused forms) on both paths; not google/xtreme:udpos.* (syntactic words)",
    make_io(
        _udpos_splits,
        _udpos_files,
        udpos_parse,
        lambda task, lang, split: ud_release_rows(task, lang, split, "2.5"),
    ),
    labels=UPOS_LABELS, defaults={**_CLS, "epochs": 10}, data_version="2",  # 2: XTREME's sentence filter, U+200C
)  # fmt: skip


# --------------------------------------------------------------------------- XCOPA

XCOPA_LANGS = ("et", "ht", "id", "it", "qu", "sw", "ta", "th", "tr", "vi", "zh")
COPA_QUESTIONS = {"cause": "What was the cause?", "effect": "What happened as a result?"}
# English training data: COPA as distributed in SuperGLUE (same jsonl fields as XCOPA).
_COPA_FILES = {"train": ("COPA/train.jsonl", "train.jsonl"), "dev": ("COPA/val.jsonl", "val.jsonl")}
_XCOPA_SPLIT = {"dev": "val", "test": "test"}


def copa_row(r: dict[str, Any]) -> dict[str, Any]:
    """One COPA/XCOPA record: the premise is the context, cause/effect becomes the question text."""
    q = str(r.get("question", "")).strip()
    if q not in COPA_QUESTIONS or int(r["label"]) not in (0, 1):
        raise XitError(f"COPA record {r.get('idx', '?')}: expected question cause/effect and label 0/1")
    return {"context": r["premise"], "question": COPA_QUESTIONS[q], "choices": [r["choice1"], r["choice2"]],
            "label": int(r["label"])}


# Haitian Creole and Quechua are not among XLM-R's 100 CC-100 pretraining languages (Conneau et al., 2020,
# table 6); XCOPA's other languages are (Ponti et al., 2020, discuss the two as unseen).
XCOPA_SLICES = {
    "seen-languages": Slice("languages", ("et", "id", "it", "sw", "ta", "th", "tr", "vi", "zh"),
                            "languages in XLM-R's pretraining data"),
    "unseen-languages": Slice("languages", ("ht", "qu"), "languages XLM-R did not see in pretraining"),
}


def _xcopa_names(lang: str, split: str) -> tuple[str, ...]:
    if split == "train" or lang == "en":
        return _COPA_FILES[split]
    name = f"{_XCOPA_SPLIT[split]}.{lang}.jsonl"
    return (f"{lang}/{name}", name, f"data/{lang}/{name}")


def _xcopa_hub(task: Task, lang: str, split: str) -> Rows:
    if lang == "en":
        ds = hf_load("aps/super_glue", "copa", HF_SPLIT[split])
    else:
        ds = hf_load("cambridgeltl/xcopa", lang, HF_SPLIT[split])
    return [copa_row(r) for r in ds if int(r["label"]) in (0, 1)]


_xtreme(
    "xcopa", "multiple_choice", XCOPA_LANGS, "accuracy",
    "cambridgeltl/xcopa (validation = dev, test) + aps/super_glue:copa (en train, dev)",
    make_io(
        lambda lang: ("train", "dev") if lang == "en" else ("dev", "test"),
        _one_file(_xcopa_names),
        lambda task, lang, split, files: [copa_row(r) for r in read_jsonl(files[0])],
        _xcopa_hub,
    ),
    num_choices=2, defaults={**_CLS, "lr": 1e-5, "epochs": 10, "batch_size": 16}, slices=XCOPA_SLICES,
)  # fmt: skip


# --------------------------------------------------------------------------- MLQA

MLQA_LANGS = ("en", "ar", "de", "es", "hi", "vi", "zh")


def _with_language(rows: Rows, lang: str) -> Rows:
    """MLQA rows carry their language, the one MLQA's language-specific normalisation (the task's
    ``answer_normalisation="mlqa"``) scores them in."""
    return [{**r, "language": lang} for r in rows]


def _mlqa_names(lang: str, split: str) -> tuple[str, ...]:
    if split != "test":
        return (SQUAD_FILES[split],)
    name = f"test-context-{lang}-question-{lang}.json"
    return (f"MLQA_V1/test/{name}", f"test/{name}", name)


def _mlqa_hub(task: Task, lang: str, split: str) -> Rows:
    if split != "test":
        return _with_language(hf_squad_rows(hf_load("rajpurkar/squad", "plain_text", HF_SPLIT[split])), "en")
    return _with_language(hf_squad_rows(hf_load("google/xtreme", f"MLQA.{lang}.{lang}", "test")), lang)


_xtreme(
    "mlqa", "span_qa", MLQA_LANGS, "em_f1",
    "google/xtreme:MLQA.<l>.<l> (test, context = question language) + rajpurkar/squad (en train, dev)",
    make_io(
        lambda lang: ("train", "dev", "test") if lang == "en" else ("test",),
        _one_file(_mlqa_names),
        lambda task, lang, split, files: _with_language(squad_rows(files[0]), "en" if split != "test" else lang),
        _mlqa_hub,
    ),
    defaults=dict(_QA), train_task="squad", answer_normalisation="mlqa",
)  # fmt: skip


# --------------------------------------------------------------------------- TyDiQA-GoldP

# TyDiQA-GoldP's 9 languages -> the language names in its file names and question ids.
TYDIQA_NAMES = {
    "en": "english", "ar": "arabic", "bn": "bengali", "fi": "finnish", "id": "indonesian", "ko": "korean",
    "ru": "russian", "sw": "swahili", "te": "telugu",
}  # fmt: skip


TYDIQA_TRAIN = ("tydiqa-goldp-v1.1-train/tydiqa.en.train.json", "tydiqa-goldp-v1.1-train.json")


def _tydiqa_names(lang: str, split: str) -> tuple[str, ...]:
    # XTREME trains on the English part of GoldP train (3,696 questions) and selects on English GoldP dev.
    if split == "train":
        return TYDIQA_TRAIN  # XTREME's per-language split of the release, then the release itself
    d = "tydiqa-goldp-v1.1-dev"
    # The TyDiQA release's name first, then XTREME's renamings (utils_preprocess.py, train_qa.sh).
    return (f"{d}/tydiqa-goldp-dev-{TYDIQA_NAMES[lang]}.json", f"{d}/tydiqa.{lang}.dev.json",
            f"{d}/tydiqa.goldp.{lang}.dev.json")


def _of_language(rows: Rows, lang: str, path: Path | None = None) -> Rows:
    """GoldP rows of one language: their ids start with its name (``english-…``), in the release and on the Hub."""
    prefix = f"{TYDIQA_NAMES[lang]}-"
    mine = [r for r in rows if r["id"].startswith(prefix)]
    if path is not None and rows and not mine:
        raise XitError(f"{path}: no TyDiQA-GoldP question of language {lang!r} (ids starting {prefix!r})")
    return mine


def _tydiqa_hub(task: Task, lang: str, split: str) -> Rows:
    # google/xtreme "tydiqa": GoldP v1.1, all languages in one train and one validation split. Test (XTREME's
    # evaluation set) is GoldP dev; English dev is English GoldP dev too, as in XTREME's train_qa.sh.
    return _of_language(hf_squad_rows(hf_load("google/xtreme", "tydiqa", "train" if split == "train" else
                                              "validation")), lang)


_xtreme(
    "tydiqa", "span_qa", tuple(TYDIQA_NAMES), "em_f1",
    "google/xtreme:tydiqa (GoldP v1.1; en train = the English part of GoldP train, test = GoldP dev by "
    "language, en dev = English GoldP dev)",
    make_io(
        lambda lang: ("train", "dev", "test") if lang == "en" else ("test",),
        _one_file(_tydiqa_names),
        lambda task, lang, split, files: _of_language(squad_rows(files[0]), lang, files[0]),
        _tydiqa_hub,
    ),
    defaults=dict(_QA),
)  # fmt: skip
