"""CCG supertagging (CCGbank AUTO files) as an intermediate task: reading the derivations, the sections each split
reads, the label inventory derived from the training sections (categories seen >= 10 times), and the errors for
missing or unusable files, at spec time (bad input) and when a stage reads them (a failure during work).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fakes import gold_score
from original_files import write

from xit.errors import WorkError, XitError
from xit.tasks import DataSource, get_task

# --------------------------------------------------------------------------- CCG supertagging

PIERRE = (
    "(<T S[dcl] 0 2> (<T NP 0 2> (<L N/N NNP NNP Pierre N_73/N_73>) (<L N NNP NNP Vinken N>) ) "
    r"(<T S[dcl]\NP 0 2> (<L (S[dcl]\NP)/(S[b]\NP) MD MD will (S[dcl]\NP_10)/(S[b]_11\NP_10:B)_11>) "
    r"(<L S[b]\NP VB VB retire S[b]\NP_1>) ) (<L . . . . .>) )"
)


def _auto(*derivations: str, doc: str = "wsj_0001") -> str:
    return "".join(f"ID={doc}.{i} PARSER=GOLD NUMPARSE=1\n{d}\n" for i, d in enumerate(derivations, 1))


@pytest.mark.filterwarnings("ignore:.*seems not to be NE tag")
def test_ccg_auto_files_sections_and_label_inventory(tmp_path: Path) -> None:
    from xit.tasks.english import CCG_OTHER, ccg_label_set, make_ccg_task, read_ccg_auto

    auto = tmp_path / "data/AUTO"
    write(auto / "00/wsj_0001.auto", _auto(PIERRE, "(<L NP NNP NNP Hello NP>)"), crlf=True)
    for sec in range(2, 22):
        write(auto / f"{sec:02d}/wsj_{sec:02d}01.auto", _auto("(<L N NN NN dog N>)", doc=f"wsj_{sec:02d}01"))
    sents = read_ccg_auto(auto / "00/wsj_0001.auto")
    assert sents[0] == (["Pierre", "Vinken", "will", "retire", "."],
                        ["N/N", "N", r"(S[dcl]\NP)/(S[b]\NP)", r"S[b]\NP", "."])  # fmt: skip
    assert set(ccg_label_set(sents + sents[:1], min_count=2)) == set(sents[0][1])  # "NP" seen once: out
    assert ccg_label_set([(["a", "b", "c"], ["N/N", "N", "N"])], min_count=1) == ("N", "N/N")
    task = make_ccg_task(("N/N", "N", "."))
    assert task.labels[-1] == CCG_OTHER and task.format == "tagging" and task.metric == "accuracy"
    src = DataSource(data_dir=tmp_path)
    dev = task.load("en", "dev", src)
    assert dev == [
        {"tokens": ["Pierre", "Vinken", "will", "retire", "."], "tags": ["N/N", "N", CCG_OTHER, CCG_OTHER, "."]},
        {"tokens": ["Hello"], "tags": [CCG_OTHER]},
    ]
    train = task.load("en", "train", src)
    assert len(train) == 20 and len(task.local_files("en", "train", src)) == 20
    assert gold_score(task, dev)["accuracy"] == 100.0
    (auto / "13/wsj_1301.auto").unlink()
    with pytest.raises(XitError, match=r"missing local data file .*AUTO/13/wsj_\*\.auto"):
        task.load("en", "train", src)
    with pytest.raises(XitError, match="CCGbank is licensed") as err:
        task.load("en", "dev")
    assert "\n" not in str(err.value)
    bad = write(tmp_path / "bad.auto", "ID=wsj_0002.1 PARSER=GOLD\n(<T S 0 2> nothing here)\n")
    with pytest.raises(XitError, match=r"bad\.auto:2: not a CCGbank AUTO derivation"):
        task.load("en", "test", DataSource(data_files={"test": bad}))


def write_ccgbank(root: Path, frequent: int = 10) -> Path:
    """CCGbank-shaped files: in 02-21 N and N/N occur ``frequent`` times, NP and S[dcl]\\NP 9; dev 00, test 23."""
    auto = root / "data/AUTO"
    for sec in range(2, 22):
        derivs = []
        if sec <= 2 + frequent - 1:
            derivs.append(r"(<T NP 0 2> (<L N/N JJ JJ big N_1/N_1>) (<L N NN NN dog N>) )")
        if sec <= 10:
            derivs.append(r"(<T S[dcl] 1 2> (<L NP PRP PRP it NP>) (<L S[dcl]\NP VBZ VBZ barks S[dcl]\NP_1>) )")
        write(auto / f"{sec:02d}/wsj_{sec:02d}01.auto", _auto(*derivs, doc=f"wsj_{sec:02d}01"))
    write(auto / "00/wsj_0001.auto", _auto(PIERRE, r"(<T NP 0 2> (<L N/N JJ JJ big N_1/N_1>) (<L N NN NN dog N>) )"))
    write(auto / "23/wsj_2301.auto", _auto(r"(<T NP 0 2> (<L N/N JJ JJ old N_1/N_1>) (<L N NN NN cat N>) )",
                                          doc="wsj_2301"))
    return root


def test_ccg_is_registered_with_the_inventory_of_its_training_sections(tmp_path: Path) -> None:
    from xit.tasks.english import CCG_OTHER

    task = get_task("ccg")
    assert (task.format, task.metric, task.languages, task.roles) == ("tagging", "accuracy", ("en",),
                                                                      frozenset({"intermediate"}))
    assert task.labels == () and task.local_only and "425" in task.labels_note
    src = DataSource(data_dir=write_ccgbank(tmp_path))
    # N and N/N occur 10 times in 02-21, NP and S[dcl]\NP 9 times: only the first two make the inventory.
    assert task.for_data(src).labels == ("N", "N/N", CCG_OTHER)
    assert task.for_data(src).for_data(None).labels == ("N", "N/N", CCG_OTHER)  # bound once, kept
    assert task.load("en", "test", src) == [{"tokens": ["old", "cat"], "tags": ["N/N", "N"]}]
    dev = task.load("en", "dev", src)
    assert dev[0]["tags"] == ["N/N", "N", CCG_OTHER, CCG_OTHER, CCG_OTHER]
    assert gold_score(task.for_data(src), dev)["accuracy"] == 100.0
    with pytest.raises(XitError, match="no CCG category occurs 10 times"):
        task.for_data(DataSource(data_dir=write_ccgbank(tmp_path / "small", frequent=9)))
    with pytest.raises(XitError, match="CCGbank is licensed"):
        task.for_data(None)
    # Read by a running stage, files that yield no inventory are a failure during work (exit 1); the spec check
    # that reads them first refuses the spec as bad input (exit 2) before anything runs.
    with pytest.raises(WorkError, match="no CCG category occurs 10 times"):
        task.for_data(DataSource(data_dir=tmp_path / "small"))
    from xit.spec import load_spec

    spec = tmp_path / "spec.yaml"
    spec.write_text(json.dumps({"name": "ccg", "model": "xit-tiny", "intermediate": [["ccg"]], "targets": ["demo-tag"],
                                "data": {"ccg": {"data_dir": str(tmp_path / "small")}}}))
    with pytest.raises(XitError, match=r"field 'data\.ccg': task 'ccg': no CCG category occurs 10 times") as bad:
        load_spec(spec)
    assert not isinstance(bad.value, WorkError)


@pytest.mark.slow  # a whole sweep (or several stages) through the local runner
def test_a_spec_naming_ccg_needs_its_local_files_and_trains_on_them(tmp_path: Path) -> None:
    import yaml

    from xit.runner import run_sweep
    from xit.spec import load_spec
    from xit.stage import read_metrics
    from xit.store import LocalStore

    spec = tmp_path / "spec.yaml"
    body = {"name": "ccg", "model": "xit-tiny", "intermediate": [["ccg"]], "targets": ["demo-tag"],
            "languages": {"demo-tag": ["en"]}, "hparams": {"intermediate": {"epochs": 1}, "target": {"epochs": 1}}}
    spec.write_text(yaml.safe_dump(body))
    with pytest.raises(XitError, match=r"field 'data\.ccg': task 'ccg' has no public source \(CCGbank"):
        load_spec(spec)
    # Training files that yield no inventory are refused with the spec, not when the stage runs.
    body["data"] = {"ccg": {"data_dir": str(write_ccgbank(tmp_path / "small", frequent=9))}}
    spec.write_text(yaml.safe_dump(body))
    with pytest.raises(XitError, match=r"field 'data\.ccg': task 'ccg': no CCG category occurs 10 times"):
        load_spec(spec)
    body["data"] = {"ccg": {"data_dir": str(write_ccgbank(tmp_path / "ccgbank"))}}
    spec.write_text(yaml.safe_dump(body))
    store = LocalStore(tmp_path / "store")
    run_sweep(load_spec(spec), store, tmp_path / "out", show_progress=False)
    from xit.plan import build_plan

    (inter,) = [s for s in build_plan(load_spec(spec)).by_kind("intermediate") if s.params["tasks"]]
    m = read_metrics(store, inter.key)
    assert m["tasks"] == ["ccg"]
    from safetensors.torch import load

    from xit.stage import output_prefix

    heads = load(store.read_bytes(f"{output_prefix(store, inter.key)}/model/heads.safetensors"))
    assert heads["ccg.1.weight"].shape[0] == 3  # N, N/N, <other>: the inventory derived from sections 02-21
