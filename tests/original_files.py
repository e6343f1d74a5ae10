"""Tiny data files in the benchmarks' original distribution formats, written for the loader tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def write(path: Path, text: str, crlf: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes((text.replace("\n", "\r\n") if crlf else text).encode("utf-8"))
    return path


def jsonl(*records: dict[str, Any]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


def tsv(*rows: tuple[str, ...]) -> str:
    return "".join("\t".join(r) + "\n" for r in rows)


# GLUE's MNLI TSV (MNLI/{train,dev_matched}.tsv): its header, and one row of it.
GLUE_MNLI_HEADER = (
    "index", "promptID", "pairID", "genre", "sentence1_binary_parse", "sentence2_binary_parse",
    "sentence1_parse", "sentence2_parse", "sentence1", "sentence2", "label1", "gold_label",
)  # fmt: skip


def glue_mnli_row(i: int, s1: str, s2: str, gold: str) -> tuple[str, ...]:
    return (str(i), "1", f"{i}n", "fiction", "(x)", "(y)", "(ROOT x)", "(ROOT y)", s1, s2, gold, gold)


def squad_json(*qas: tuple[str, str, list[tuple[str, int]]], context: str) -> str:
    """SQuAD v1.1 JSON (also XQuAD, MLQA, TyDiQA-GoldP): one paragraph, questions (id, question, answers)."""
    return json.dumps({"version": "1.1", "data": [{"title": "T", "paragraphs": [{
        "context": context,
        "qas": [{"id": i, "question": q, "answers": [{"text": t, "answer_start": s} for t, s in ans]}
                for i, q, ans in qas],
    }]}]}, ensure_ascii=False)  # fmt: skip
