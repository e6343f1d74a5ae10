"""Custom tasks from YAML descriptors: loading per format, validation errors, registration."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from fakes import gold_score
from original_files import write

from xit.errors import XitError
from xit.tasks.custom import (
    descriptor_dict,
    load_descriptor,
    load_task_dir,
    load_task_file,
    register_descriptor_dict,
)
from xit.tasks.registry import DataSource, get_task

pytestmark = pytest.mark.usefixtures("restore_registry")


def uniq(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def descriptor(tmp: Path, body: str, fname: str = "task.yaml") -> Path:
    return write(tmp / fname, body)


def check_schema(fmt: str, rows: list[dict[str, Any]]) -> None:
    keys = {
        "classification": {"text_a", "text_b", "label"},
        "span_qa": {"id", "context", "question", "answers"},
        "multiple_choice": {"context", "question", "choices", "label"},
        "tagging": {"tokens", "tags"},
    }[fmt]
    assert rows
    for r in rows:
        assert set(r) == keys
        if fmt == "span_qa":
            assert set(r["answers"]) == {"text", "answer_start"}


def predict_gold(task: Any, rows: list[dict[str, Any]]) -> None:
    assert gold_score(task, rows)[task.metric] == pytest.approx(100.0)


def test_classification_tsv(tmp_path: Path) -> None:
    name = uniq("nli")
    for lang in ("en", "de"):
        write(tmp_path / lang / "test.tsv",
              "premise\thypothesis\tlabel\nA man sleeps.\tA person rests.\tentailment\n"
              "A dog runs.\tA cat sleeps.\tcontradiction\nIt rains.\tIt is Monday.\t1\n")
    write(tmp_path / "en" / "train.tsv", "premise\thypothesis\tlabel\nx\ty\tneutral\n")
    p = descriptor(tmp_path, f"""
name: {name}
format: classification
languages: [en, de]
metric: accuracy
labels: [entailment, neutral, contradiction]
files: "{{lang}}/{{split}}.tsv"
file_format: tsv
columns: {{text_a: premise, text_b: hypothesis, label: label}}
defaults: {{lr: 2e-5, epochs: 3}}
""")
    task = load_task_file(p)
    assert get_task(name) is task
    assert task.family == "custom" and task.source == f"custom task {p.resolve()}"
    assert task.roles == frozenset({"intermediate", "target"}) and task.labels == ("entailment", "neutral",
                                                                                 "contradiction")
    assert task.defaults == {"lr": 2e-5, "epochs": 3}
    rows = task.load("de", "test")
    check_schema("classification", rows)
    assert rows == [
        {"text_a": "A man sleeps.", "text_b": "A person rests.", "label": 0},
        {"text_a": "A dog runs.", "text_b": "A cat sleeps.", "label": 2},
        {"text_a": "It rains.", "text_b": "It is Monday.", "label": 1},
    ]
    predict_gold(task, rows)
    assert task.load("en", "train") == [{"text_a": "x", "text_b": "y", "label": 1}]
    # A spec's DataSource overrides the descriptor's directory.
    other = write(tmp_path / "elsewhere" / "de.tsv", "premise\thypothesis\tlabel\np\th\tneutral\n")
    src = DataSource(data_files={"de.test": other})
    assert task.local_files("de", "test", src) == [other]
    assert task.load("de", "test", src) == [{"text_a": "p", "text_b": "h", "label": 1}]
    src_dir = DataSource(data_dir=tmp_path)
    assert task.local_files("en", "test", src_dir) == [tmp_path / "en" / "test.tsv"]
    # Missing files name the file; unknown languages name the task.
    with pytest.raises(XitError, match=r"missing local data file .*de/train\.tsv"):
        task.load("de", "train")
    with pytest.raises(XitError, match="no language 'fr'"):
        task.load("fr", "test")
    assert task.data_fingerprint([("de", "test")], src) != task.data_fingerprint([("de", "test")], src_dir)


def test_classification_single_sentence_jsonl_int_labels(tmp_path: Path) -> None:
    name = uniq("sent")
    write(tmp_path / "data" / "test.jsonl", '{"sentence": "good", "y": 1}\n{"sentence": "bad", "y": 0}\n')
    p = descriptor(tmp_path, f"""
name: {name}
format: classification
languages: [en]
labels: [neg, pos]
data_dir: data
files: {{test: test.jsonl}}
file_format: jsonl
columns: {{text_a: sentence, label: y}}
""")
    task = load_task_file(p)
    rows = task.load("en", "test")
    check_schema("classification", rows)
    assert rows == [{"text_a": "good", "text_b": None, "label": 1}, {"text_a": "bad", "text_b": None, "label": 0}]
    predict_gold(task, rows)
    with pytest.raises(XitError, match="no split 'train'"):
        task.load("en", "train")
    write(tmp_path / "data" / "test.jsonl", '{"sentence": "good", "y": 7}\n')
    with pytest.raises(XitError, match=r"test\.jsonl:record 1: label 7 out of range"):
        task.load("en", "test")


def test_span_qa_squad_json(tmp_path: Path) -> None:
    name = uniq("qa")
    ctx = "Ana lives in Porto. Ben works in Oslo."
    squad = {"version": "1.1", "data": [{"title": "t", "paragraphs": [{"context": ctx, "qas": [
        {"id": "q1", "question": "Where does Ana live?", "answers": [{"text": "Porto", "answer_start": 13}]},
        {"id": "q2", "question": "Where does Ben work?", "answers": [{"text": "Oslo", "answer_start": 33},
                                                                     {"text": "in Oslo", "answer_start": 30}]},
    ]}]}]}
    write(tmp_path / "squad.en.json", json.dumps(squad))
    p = descriptor(tmp_path, f"""
name: {name}
format: span_qa
languages: [en]
metric: em_f1
files: "squad.{{lang}}.json"
file_format: json
""")
    task = load_task_file(p)
    rows = task.load("en", "dev")
    check_schema("span_qa", rows)
    assert rows[1] == {"id": "q2", "context": ctx, "question": "Where does Ben work?",
                       "answers": {"text": ["Oslo", "in Oslo"], "answer_start": [33, 30]}}
    predict_gold(task, rows)


def test_span_qa_jsonl(tmp_path: Path) -> None:
    name = uniq("qaj")
    write(tmp_path / "test.jsonl", json.dumps({"c": "Ana lives in Porto.", "q": "Where?",
                                               "a": {"text": ["Porto"], "answer_start": [13]}}) + "\n")
    p = descriptor(tmp_path, f"""
name: {name}
format: span_qa
languages: [en]
files: "{{split}}.jsonl"
file_format: jsonl
columns: {{context: c, question: q, answers: a}}
""")
    task = load_task_file(p)
    rows = task.load("en", "test")
    check_schema("span_qa", rows)
    assert rows[0]["id"] == "test-0" and rows[0]["answers"] == {"text": ["Porto"], "answer_start": [13]}
    predict_gold(task, rows)


def test_multiple_choice_jsonl_and_tsv(tmp_path: Path) -> None:
    name = uniq("mc")
    write(tmp_path / "en.test.jsonl",
          json.dumps({"ctx": "The glass fell.", "q": "What happened?", "endings": ["It broke.", "It sang."],
                      "label": 0}) + "\n"
          + json.dumps({"ctx": "It rained.", "endings": ["We got wet.", "We got dry.", "Nothing."], "label": "1"})
          + "\n")
    p = descriptor(tmp_path, f"""
name: {name}
format: multiple_choice
languages: [en]
num_choices: 3
files: "{{lang}}.{{split}}.jsonl"
columns: {{context: ctx, question: q, choices: endings, label: label}}
""")
    task = load_task_file(p)
    assert task.num_choices == 3
    rows = task.load("en", "test")
    check_schema("multiple_choice", rows)
    assert rows == [
        {"context": "The glass fell.", "question": "What happened?", "choices": ["It broke.", "It sang."],
         "label": 0},
        {"context": "It rained.", "question": "", "choices": ["We got wet.", "We got dry.", "Nothing."], "label": 1},
    ]
    predict_gold(task, rows)

    name2 = uniq("mct")
    write(tmp_path / "tsv" / "test.tsv", "ctx\tending0\tending1\tlabel\nHe ran.\tHe was late.\tHe slept.\t0\n")
    p2 = descriptor(tmp_path / "tsv", f"""
name: {name2}
format: multiple_choice
languages: [en]
num_choices: 2
files: "{{split}}.tsv"
file_format: tsv
columns: {{context: ctx, label: label}}
choice_columns: [ending0, ending1]
""")
    rows2 = load_task_file(p2).load("en", "test")
    assert rows2 == [{"context": "He ran.", "question": "", "choices": ["He was late.", "He slept."], "label": 0}]


def test_tagging_conll(tmp_path: Path) -> None:
    name = uniq("ner")
    write(tmp_path / "de" / "test.conll",
          "-DOCSTART-\tO\n\nAna\tB-PER\nlebt\tO\nin\tO\nPorto\tB-LOC\n\r\nBen\tB-PER\nSilva\tI-PER\n")
    p = descriptor(tmp_path, f"""
name: {name}
format: tagging
languages: [en, de]
metric: f1
labels: [O, B-PER, I-PER, B-LOC, I-LOC]
files: "{{lang}}/{{split}}.conll"
file_format: conll
""")
    task = load_task_file(p)
    rows = task.load("de", "test")
    check_schema("tagging", rows)
    assert rows == [{"tokens": ["Ana", "lebt", "in", "Porto"], "tags": ["B-PER", "O", "O", "B-LOC"]},
                    {"tokens": ["Ben", "Silva"], "tags": ["B-PER", "I-PER"]}]
    predict_gold(task, rows)
    write(tmp_path / "de" / "test.conll", "Ana\tB-ORG\n")
    with pytest.raises(XitError, match=r"test\.conll:1: tag 'B-ORG' is not in the descriptor's labels"):
        task.load("de", "test")


def test_retrieval_tatoeba_text_pair(tmp_path: Path) -> None:
    name = uniq("tat")
    write(tmp_path / "tatoeba.deu-eng.deu", "Hallo.\nDanke.\n")
    write(tmp_path / "tatoeba.deu-eng.eng", "Hello.\nThanks.\n")
    p = descriptor(tmp_path, f"""
name: {name}
format: retrieval
retrieval: tatoeba
languages: [deu]
files: {{source: "tatoeba.{{lang}}-eng.{{lang}}", target: "tatoeba.{{lang}}-eng.eng"}}
file_format: text_pair
""")
    task = load_task_file(p)
    assert task.roles == frozenset({"target"}) and task.metric == "accuracy" and task.retrieval == "tatoeba"
    assert task.load("deu", "test") == [{"source": ["Hallo.", "Danke."], "target": ["Hello.", "Thanks."]}]
    assert [f.name for f in task.local_files("deu", "test", DataSource(data_dir=tmp_path))] == [
        "tatoeba.deu-eng.deu", "tatoeba.deu-eng.eng"]
    write(tmp_path / "tatoeba.deu-eng.eng", "Hello.\n")
    with pytest.raises(XitError, match="not aligned"):
        task.load("deu", "test")
    (tmp_path / "tatoeba.deu-eng.eng").unlink()
    with pytest.raises(XitError, match=r"missing local data file .*tatoeba\.deu-eng\.eng"):
        task.load("deu", "test")


def test_retrieval_bucc(tmp_path: Path) -> None:
    name = uniq("bucc")
    for split in ("dev", "test"):
        write(tmp_path / f"de-en.{split}.de", "de-1\tHallo\nde-2\tDanke\n")
        write(tmp_path / f"de-en.{split}.en", "en-1\tThanks\nen-2\tHello\n")
        write(tmp_path / f"de-en.{split}.gold", "de-1\ten-2\n")
    p = descriptor(tmp_path, f"""
name: {name}
format: retrieval
retrieval: bucc
languages: [de]
files: {{source: "de-en.{{split}}.de", target: "de-en.{{split}}.en", gold: "de-en.{{split}}.gold"}}
""")
    task = load_task_file(p)
    assert task.metric == "f1"
    assert task.load("de", "dev") == [{"source_ids": ["de-1", "de-2"], "source": ["Hallo", "Danke"],
                                       "target_ids": ["en-1", "en-2"], "target": ["Thanks", "Hello"],
                                       "gold": [["de-1", "en-2"]]}]


BASE = """
name: {name}
format: classification
languages: [en]
labels: [a, b]
files: "{{split}}.tsv"
"""


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ("name: {name}\nformat: regression\nlanguages: [en]\nfiles: x", "format", "unknown format 'regression'"),
        ("name: {name}\nformat: dual_encoder\nlanguages: [en]\nfiles: x", "format", "unknown format 'dual_encoder'"),
        (BASE + "metric: f1\n", "metric", "'f1' is not reported by format classification"),
        ("name: {name}\nformat: classification\nlanguages: [en]\nfiles: x\n", "labels", "required for format"),
        ("name: {name}\nformat: tagging\nlanguages: [en]\nfiles: x\nfile_format: conll\n", "labels", "required"),
        ("name: {name}\nformat: multiple_choice\nlanguages: [en]\nfiles: x\n", "num_choices", "required"),
        ("name: {name}\nformat: retrieval\nlanguages: [en]\nfiles: {{source: a, target: b}}\n", "retrieval",
         "required for format retrieval"),
        ("name: {name}\nformat: retrieval\nretrieval: bucc\nlanguages: [en]\nmetric: accuracy\n"
         "files: {{source: a, target: b, gold: c}}\n", "metric", "not reported by format bucc"),
        ("name: {name}\nformat: retrieval\nretrieval: tatoeba\nlanguages: [en]\nfiles: a\n", "files",
         "needs a mapping with keys source, target"),
        ("name: {name}\nformat: retrieval\nretrieval: tatoeba\nlanguages: [en]\nroles: [intermediate]\n"
         "files: {{source: a, target: b}}\n", "roles", "only be a target"),
        (BASE + "file_format: conll\n", "file_format", "does not fit format classification"),
        (BASE + "columns: {{question: q}}\n", "columns", "unknown row field 'question'"),
        (BASE + "colour: red\n", "colour", "Extra inputs are not permitted"),
        ("name: Bad_Name\nformat: classification\nlanguages: [en]\nlabels: [a]\nfiles: x\n", "name",
         "lowercase letters"),
        (BASE.replace("files: \"{{split}}.tsv\"", "files: {{fr.test: x.tsv}}"), "files", "key 'fr.test'"),
        ("format: classification\nlanguages: [en]\nlabels: [a]\nfiles: x\n", "name", "Field required"),
        # names that become paths (predictions/<lang>.jsonl) or keys must be safe
        (BASE.replace("[en]", "[en, ../../escape]"), "languages", "'../../escape' is not a language code"),
        (BASE.replace("[en]", "[en, de/x]"), "languages", "'de/x' is not a language code"),
        (BASE.replace("[en]", "[en, '..']"), "languages", "'..' is not a language code"),
        (BASE.replace("[en]", "['/tmp/x']"), "languages", "is not a language code"),
        (BASE.replace("[en]", "[en, 'de.x']"), "languages", "'de.x' is not a language code"),
        (BASE.replace("[en]", "[en, en]"), "languages", "lists a language twice"),
        (BASE + "train_language: ../en\n", "train_language", "is not a language code"),
        ("name: \"ok\\n\"\nformat: classification\nlanguages: [en]\nlabels: [a]\nfiles: x\n", "name",
         "lowercase letters"),
    ],
)
def test_validation_errors(tmp_path: Path, body: str, field: str, message: str) -> None:
    p = descriptor(tmp_path, body.format(name=uniq("bad")), "bad.yaml")
    with pytest.raises(XitError) as e:
        load_task_file(p)
    msg = str(e.value)
    assert "\n" not in msg
    assert str(p) in msg and f"'{field}'" in msg and message in msg


def test_an_embedded_descriptor_with_an_unsafe_language_is_refused(tmp_path: Path) -> None:
    """A plan carries descriptors to cluster pods: the same check applies to what it carries."""
    from xit.tasks.custom import register_descriptor_dict

    d = {"name": uniq("emb"), "format": "classification", "languages": ["en", "../../../etc/x"], "labels": ["a"],
         "files": "{split}.tsv", "base_dir": str(tmp_path)}
    with pytest.raises(XitError, match=r"'\.\./\.\./\.\./etc/x' is not a language code") as e:
        register_descriptor_dict(d)
    assert "\n" not in str(e.value)


def test_registered_tasks_have_safe_names() -> None:
    from xit.tasks.registry import Task, all_tasks, register

    for t in all_tasks():  # every built-in passes the check register() makes
        assert t.name and "/" not in t.name and all("/" not in lang and ".." not in lang for lang in t.languages)
    bad = Task(name="x-unsafe", format="classification", languages=("en", "a/b"), metric="accuracy", source="t",
               family="custom", load_fn=lambda *a: [])
    with pytest.raises(XitError, match="'a/b' is not a language code"):
        register(bad)


def test_invalid_yaml_and_non_mapping(tmp_path: Path) -> None:
    p = descriptor(tmp_path, "name: [unclosed\nformat: x\n", "broken.yaml")
    with pytest.raises(XitError) as e:
        load_descriptor(p)
    assert "\n" not in str(e.value) and str(p) in str(e.value) and "invalid YAML" in str(e.value)
    q = descriptor(tmp_path, "- a\n- b\n", "list.yaml")
    with pytest.raises(XitError, match=r"list\.yaml: a task descriptor must be a YAML mapping"):
        load_descriptor(q)
    with pytest.raises(XitError, match="absent.yaml: no such task descriptor file"):
        load_descriptor(tmp_path / "absent.yaml")


def test_registration_idempotent_and_conflicts(tmp_path: Path) -> None:
    name = uniq("dup")
    p = descriptor(tmp_path / "a", BASE.format(name=name))
    t1 = load_task_file(p)
    assert load_task_file(p) is t1
    # Same descriptor in the same directory under another file name: still identical.
    assert load_task_file(descriptor(tmp_path / "a", BASE.format(name=name), "copy.yml")) is t1
    q = descriptor(tmp_path / "b", BASE.format(name=name) + "eval_split: dev\n", "other.yaml")
    with pytest.raises(XitError) as e:
        load_task_file(q)
    assert str(q) in str(e.value) and str(p.resolve()) in str(e.value) and "\n" not in str(e.value)
    builtin = descriptor(tmp_path / "c", BASE.format(name="xnli"))
    with pytest.raises(XitError, match=r"clashes with the built-in xtreme task 'xnli'") as e2:
        load_task_file(builtin)
    assert str(builtin) in str(e2.value)
    assert descriptor_dict("xnli") is None


def test_load_task_dir(tmp_path: Path) -> None:
    n1, n2 = uniq("dir-a"), uniq("dir-b")
    descriptor(tmp_path, BASE.format(name=n1), "a.yaml")
    descriptor(tmp_path, BASE.format(name=n2), "b.yml")
    write(tmp_path / "notes.txt", "not a descriptor")
    assert [t.name for t in load_task_dir(tmp_path)] == [n1, n2]
    with pytest.raises(XitError, match="not a directory"):
        load_task_dir(tmp_path / "nope")


def test_descriptor_dict_round_trip(tmp_path: Path) -> None:
    name = uniq("rt")
    write(tmp_path / "test.tsv", "text_a\tlabel\nhi\tb\n")
    task = load_task_file(descriptor(tmp_path, BASE.format(name=name) + "defaults: {lr: 1.0e-5}\n"))
    d = descriptor_dict(name)
    assert d is not None
    assert json.loads(json.dumps(d)) == d and d["base_dir"] == str(tmp_path.resolve())
    assert d["name"] == name and d["metric"] == "accuracy" and d["defaults"] == {"lr": 1e-5}
    assert register_descriptor_dict(d) is task
    assert register_descriptor_dict(json.loads(json.dumps(d))) is task
    changed = {**d, "labels": ["a", "b", "c"]}
    with pytest.raises(XitError, match="differs from the one already registered"):
        register_descriptor_dict(changed)
    # A fresh name registers (as on a cluster pod that has never seen the task) and loads the same rows.
    fresh = {**d, "name": uniq("rt-pod")}
    fresh.pop("descriptor_file")
    t2 = register_descriptor_dict(fresh)
    assert t2.load("en", "test") == task.load("en", "test") == [{"text_a": "hi", "text_b": None, "label": 1}]
    with pytest.raises(XitError, match="'base_dir' is missing"):
        register_descriptor_dict({k: v for k, v in fresh.items() if k != "base_dir"})
    with pytest.raises(XitError, match="field 'metric'"):
        register_descriptor_dict({**fresh, "name": uniq("rt-bad"), "metric": "bleu"})
