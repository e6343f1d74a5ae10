"""Per-language metadata for typological analysis: family, script, morphological type, affixation.

Every language of xit's registered tasks has a row; each value names where it comes from:

* family, genus — WALS Online v2020.4 (Dryer & Haspelmath, eds., 2013; cldf-datasets/wals ``cldf/languages.csv``
  columns Family and Genus) for the WALS language code in the row (``wals``); Haitian Creole is WALS's "other"
  family, genus "Creoles and Pidgins".
* script — ISO 15924 code of the language's likely script in Unicode CLDR (``likelySubtags``, read through
  Babel 2.19): the script the benchmark's text is written in.
* WALS values — the row's datapoints of features 20A (Fusion of Selected Inflectional Formatives, Bickel &
  Nichols), 21A (Exponence of Selected Inflectional Formatives, Bickel & Nichols), 22A (Inflectional Synthesis
  of the Verb, Bickel & Nichols) and 26A (Prefixing vs. Suffixing in Inflectional Morphology, Dryer), as WALS
  value codes (``20A-1`` …, cldf ``codes.csv``); a feature WALS has no datapoint for is absent.
* morphological type — derived from those WALS values by `morphological_type` (the rule is in its docstring);
  its ``source`` names the values it used. With none of them it is "unknown" rather than a guess.
* affixation — WALS 26A's value itself (the feature with the widest coverage).

WALS's codings follow its chapters' definitions, not textbook labels: 21A codes Finnish as cumulating case and
number (so fusional here), Spanish, Persian, Hindi and Burmese as monoexponential case (agglutinative here);
20A codes Indonesian as isolating.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# WALS value codes used below, with their names (cldf-datasets/wals cldf/codes.csv, v2020.4).
WALS_VALUES = {
    "20A-1": "Exclusively concatenative", "20A-2": "Exclusively isolating", "20A-3": "Exclusively tonal",
    "20A-4": "Tonal/isolating", "20A-5": "Tonal/concatenative", "20A-6": "Ablaut/concatenative",
    "20A-7": "Isolating/concatenative",
    "21A-1": "Monoexponential case", "21A-2": "Case + number", "21A-3": "Case + referentiality",
    "21A-4": "Case + TAM", "21A-5": "No case",
    "22A-1": "0-1 category per word", "22A-2": "2-3 categories per word", "22A-3": "4-5 categories per word",
    "22A-4": "6-7 categories per word", "22A-5": "8-9 categories per word", "22A-6": "10-11 categories per word",
    "22A-7": "12-13 categories per word",
    "26A-1": "Little affixation", "26A-2": "Strongly suffixing", "26A-3": "Weakly suffixing",
    "26A-4": "Equal prefixing and suffixing", "26A-5": "Weakly prefixing", "26A-6": "Strong prefixing",
}
MORPHOLOGICAL_TYPES = ("agglutinative", "fusional", "isolating", "polysynthetic", "unknown")
ATTRIBUTES = ("family", "script", "morphology", "affixation")  # what the report groups languages by
UNKNOWN = "unknown"

# (language, WALS name, WALS code, family, genus, script, WALS values of 20A/21A/22A/26A)
_ROWS = (
    ('af', 'Afrikaans', 'afr', 'Indo-European', 'Germanic', 'Latn', ()),
    ('ar', 'Arabic (Modern Standard)', 'ams', 'Afro-Asiatic', 'Semitic', 'Arab', ('26A-2',)),
    ('az', 'Azerbaijani', 'aze', 'Altaic', 'Turkic', 'Latn', ('26A-2',)),
    ('bg', 'Bulgarian', 'bul', 'Indo-European', 'Slavic', 'Cyrl', ('26A-2',)),
    ('bn', 'Bengali', 'ben', 'Indo-European', 'Indic', 'Beng', ()),
    ('de', 'German', 'ger', 'Indo-European', 'Germanic', 'Latn', ('20A-1', '21A-2', '22A-2', '26A-2')),
    ('el', 'Greek (Modern)', 'grk', 'Indo-European', 'Greek', 'Grek', ('20A-1', '21A-2', '22A-3', '26A-2')),
    ('en', 'English', 'eng', 'Indo-European', 'Germanic', 'Latn', ('20A-1', '21A-5', '22A-2', '26A-2')),
    ('es', 'Spanish', 'spa', 'Indo-European', 'Romance', 'Latn', ('20A-1', '21A-1', '22A-3', '26A-2')),
    ('et', 'Estonian', 'est', 'Uralic', 'Finnic', 'Latn', ('26A-2',)),
    ('eu', 'Basque', 'bsq', 'Basque', 'Basque', 'Latn', ('20A-1', '21A-1', '22A-3', '26A-4')),
    ('fa', 'Persian', 'prs', 'Indo-European', 'Iranian', 'Arab', ('20A-1', '21A-1', '22A-3', '26A-3')),
    ('fi', 'Finnish', 'fin', 'Uralic', 'Finnic', 'Latn', ('20A-1', '21A-2', '22A-2', '26A-2')),
    ('fr', 'French', 'fre', 'Indo-European', 'Romance', 'Latn', ('20A-1', '21A-5', '22A-3', '26A-2')),
    ('gu', 'Gujarati', 'guj', 'Indo-European', 'Indic', 'Gujr', ()),
    ('he', 'Hebrew (Modern)', 'heb', 'Afro-Asiatic', 'Semitic', 'Hebr', ('20A-6', '21A-5', '22A-3', '26A-3')),
    ('hi', 'Hindi', 'hin', 'Indo-European', 'Indic', 'Deva', ('20A-1', '21A-1', '22A-2', '26A-2')),
    ('ht', 'Haitian Creole', 'hcr', 'other', 'Creoles and Pidgins', 'Latn', ()),
    ('hu', 'Hungarian', 'hun', 'Uralic', 'Ugric', 'Latn', ('20A-1', '21A-1', '22A-3', '26A-2')),
    ('id', 'Indonesian', 'ind', 'Austronesian', 'Malayo-Sumbawan', 'Latn', ('20A-2', '21A-5', '22A-3', '26A-2')),
    ('it', 'Italian', 'ita', 'Indo-European', 'Romance', 'Latn', ('26A-2',)),
    ('ja', 'Japanese', 'jpn', 'Japanese', 'Japanese', 'Jpan', ('20A-1', '21A-1', '22A-3', '26A-2')),
    ('jv', 'Javanese', 'jav', 'Austronesian', 'Javanese', 'Latn', ()),
    ('ka', 'Georgian', 'geo', 'Kartvelian', 'Kartvelian', 'Geor', ('20A-1', '21A-1', '22A-5', '26A-3')),
    ('kk', 'Kazakh', 'kaz', 'Altaic', 'Turkic', 'Cyrl', ()),
    ('ko', 'Korean', 'kor', 'Korean', 'Korean', 'Kore', ('20A-1', '21A-1', '22A-4', '26A-2')),
    ('lt', 'Lithuanian', 'lit', 'Indo-European', 'Baltic', 'Latn', ('26A-2',)),
    ('ml', 'Malayalam', 'mym', 'Dravidian', 'Dravidian', 'Mlym', ()),
    ('mr', 'Marathi', 'mhi', 'Indo-European', 'Indic', 'Deva', ('26A-2',)),
    ('ms', 'Malay', 'mly', 'Austronesian', 'Malayo-Sumbawan', 'Latn', ()),
    ('my', 'Burmese', 'brm', 'Sino-Tibetan', 'Burmese-Lolo', 'Mymr', ('20A-1', '21A-1', '22A-2', '26A-2')),
    ('nl', 'Dutch', 'dut', 'Indo-European', 'Germanic', 'Latn', ('26A-2',)),
    ('pa', 'Panjabi', 'pan', 'Indo-European', 'Indic', 'Guru', ('26A-2',)),
    ('pl', 'Polish', 'pol', 'Indo-European', 'Slavic', 'Latn', ('26A-2',)),
    ('pt', 'Portuguese', 'por', 'Indo-European', 'Romance', 'Latn', ('26A-2',)),
    ('qu', 'Quechua (Cuzco)', 'qcu', 'Quechuan', 'Quechuan', 'Latn', ()),
    ('ro', 'Romanian', 'rom', 'Indo-European', 'Romance', 'Latn', ('26A-2',)),
    ('ru', 'Russian', 'rus', 'Indo-European', 'Slavic', 'Cyrl', ('20A-1', '21A-2', '22A-3', '26A-2')),
    ('sw', 'Swahili', 'swa', 'Niger-Congo', 'Bantu', 'Latn', ('20A-1', '21A-5', '22A-3', '26A-5')),
    ('ta', 'Tamil', 'tml', 'Dravidian', 'Dravidian', 'Taml', ('26A-2',)),
    ('te', 'Telugu', 'tel', 'Dravidian', 'Dravidian', 'Telu', ('26A-2',)),
    ('th', 'Thai', 'tha', 'Tai-Kadai', 'Kam-Tai', 'Thai', ('20A-7', '21A-5', '22A-2', '26A-1')),
    ('tl', 'Tagalog', 'tag', 'Austronesian', 'Greater Central Philippine', 'Latn',
     ('20A-1', '21A-3', '22A-2', '26A-1')),
    ('tr', 'Turkish', 'tur', 'Altaic', 'Turkic', 'Latn', ('20A-1', '21A-1', '22A-4', '26A-2')),
    ('uk', 'Ukrainian', 'ukr', 'Indo-European', 'Slavic', 'Cyrl', ('26A-2',)),
    ('ur', 'Urdu', 'urd', 'Indo-European', 'Indic', 'Arab', ('26A-2',)),
    ('vi', 'Vietnamese', 'vie', 'Austro-Asiatic', 'Vietic', 'Latn', ('20A-2', '21A-5', '22A-1', '26A-1')),
    ('wo', 'Wolof', 'wlf', 'Niger-Congo', 'Wolof', 'Latn', ('26A-1',)),
    ('yo', 'Yoruba', 'yor', 'Niger-Congo', 'Defoid', 'Latn', ('20A-4', '21A-1', '22A-4', '26A-1')),
    ('zh', 'Mandarin', 'mnd', 'Sino-Tibetan', 'Chinese', 'Hans', ('20A-7', '21A-1', '22A-1', '26A-2')),
)


@dataclass(frozen=True)
class Language:
    code: str  # the code xit's tasks use (ISO 639-1)
    name: str  # WALS's name
    wals: str  # WALS language code
    family: str
    genus: str
    script: str  # ISO 15924
    wals_values: tuple[str, ...]  # WALS value codes of 20A, 21A, 22A, 26A (those WALS has)

    def value(self, feature: str) -> str | None:
        """This language's WALS value code of a feature ("20A"), or None."""
        return next((v for v in self.wals_values if v.startswith(feature + "-")), None)

    @property
    def morphology(self) -> str:
        return morphological_type(self.wals_values)[0]

    @property
    def morphology_source(self) -> str:
        return morphological_type(self.wals_values)[1]

    @property
    def affixation(self) -> str:
        v = self.value("26A")
        return WALS_VALUES[v] if v else UNKNOWN

    def attribute(self, name: str) -> str:
        return str(getattr(self, name))

    def source(self, name: str) -> str:
        """Where this language's value of an attribute comes from."""
        if name in ("family", "genus"):
            return f"WALS v2020.4 languages.csv ({self.wals})"
        if name == "script":
            return "Unicode CLDR likelySubtags"
        if name == "affixation":
            v = self.value("26A")
            return f"WALS {v} ({self.wals})" if v else "no WALS 26A datapoint"
        return self.morphology_source


def morphological_type(values: tuple[str, ...] | list[str]) -> tuple[str, str]:
    """(type, source) from WALS value codes; the first rule that applies:

    1. isolating — 20A-2 (exclusively isolating) or 20A-4 (tonal/isolating); or 22A-1 (0-1 inflectional
       category per verb); or 26A-1 (little affixation) unless 20A-1 (exclusively concatenative);
    2. fusional — 20A-6 (ablaut/concatenative), or 21A-2/3/4 (case cumulated with number, referentiality or
       TAM: cumulative exponence);
    3. polysynthetic — 22A-6/7 (10 or more inflectional categories per verb);
    4. agglutinative — 21A-1 (monoexponential case: one formative per category);
    5. unknown — none of these datapoints.

    The source lists the WALS values the deciding rule read.
    """
    have = set(values)

    def src(*codes: str) -> str:
        used = [c for c in codes if c in have]
        return "WALS " + ", ".join(f"{c} {WALS_VALUES[c]}" for c in used)

    if have & {"20A-2", "20A-4"}:
        return "isolating", src("20A-2", "20A-4")
    if "22A-1" in have:
        return "isolating", src("22A-1")
    if "26A-1" in have and "20A-1" not in have:
        return "isolating", src("26A-1", "20A-7")
    if "20A-6" in have:
        return "fusional", src("20A-6")
    if have & {"21A-2", "21A-3", "21A-4"}:
        return "fusional", src("21A-2", "21A-3", "21A-4")
    if have & {"22A-6", "22A-7"}:
        return "polysynthetic", src("22A-6", "22A-7")
    if "21A-1" in have:
        return "agglutinative", src("21A-1")
    return UNKNOWN, "no WALS 20A/21A/22A/26A datapoint that decides it"


LANGUAGES: dict[str, Language] = {r[0]: Language(*r) for r in _ROWS}


def language(code: str) -> Language | None:
    """The metadata of a task language code (``pt``; a variant such as ``zh-CN`` falls back to ``zh``)."""
    return LANGUAGES.get(code) or LANGUAGES.get(code.split("-")[0].split("_")[0].lower())


# ---------------------------------------------------------------------------------------- the report section

NO_METADATA = "no metadata"
TYPOLOGY_HEADER = ["model", "target", "attribute", "group", "languages", "intermediate", "score", "baseline_score",
                   "delta"]


@dataclass(frozen=True)
class TypologyRow:
    """One intermediate configuration on the languages of one typological group of a target."""

    model: str
    target: str
    attribute: str  # one of ATTRIBUTES
    group: str  # the attribute's value, e.g. "agglutinative", "Latn", "Uralic"
    languages: tuple[str, ...]
    intermediate: str
    score: float  # mean over the group's languages of the configuration's per-language score (seed means)
    baseline_score: float  # the same for the baseline
    delta: float  # score minus baseline_score: the effect of intermediate training on this group


def group_languages(languages: list[str], attribute: str) -> dict[str, list[str]]:
    """The languages by their value of an attribute, groups in order of first appearance."""
    out: dict[str, list[str]] = {}
    for code in languages:
        meta = language(code)
        out.setdefault(meta.attribute(attribute) if meta is not None else NO_METADATA, []).append(code)
    return out


def typology_rows(tables: object, model: str) -> list[TypologyRow]:
    """Per target with a language other than English that xit has metadata for, per base model (each compared
    with its own baseline, `ReportTables.baseline_of`), per attribute and group (languages without metadata
    form the group "no metadata"), each non-baseline configuration's mean score and the baseline's on the
    group's languages, and the delta. ``model`` names the base model of a sweep over one."""
    import numpy as np

    from xit.labels import config_model

    rows = []
    t: Any = tables  # ReportTables (typed loosely: xit.report imports this module)
    baselines = [c for c in t.configs if t.is_baseline(c)]
    for target in t.targets:
        for base_config in baselines:
            langs = [lang for lang in t.languages[target] if t.language_row(base_config, target, lang) is not None]
            if not any(language(lang) is not None for lang in langs if lang != "en"):  # English: the source
                continue
            configs = [c for c in t.configs if c != base_config and t.baseline_of(c) == base_config]
            for attribute in ATTRIBUTES:
                for group, members in group_languages(langs, attribute).items():
                    base = float(np.mean([t.language_row(base_config, target, x).score for x in members]))
                    for config in configs:
                        cells = [t.language_row(config, target, x) for x in members]
                        if any(c is None for c in cells):
                            continue
                        score = float(np.mean([c.score for c in cells]))
                        rows.append(TypologyRow(config_model(config) or model, target, attribute, group,
                                                tuple(members), config, score, base, score - base))
    return rows
