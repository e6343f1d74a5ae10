"""Configuration labels: how a configuration is named in plans, scores and reports.

A label is the spec's task list (`xit.spec.label`: ``[mnli, squad]``), plus `` n=<size>`` in sweeps over
`intermediate_sizes` and `` model=<id>`` in sweeps over `models` (`xit.plan.build_plan` writes them; the report,
its research sections and the typology section read them back here).
"""

from __future__ import annotations

MODEL_SEP = " model="  # a configuration label's base model, in sweeps over `models`


def config_model(config: str) -> str:
    """The base model a configuration label names ("[mnli] model=<id>"); "" when it names none."""
    _, sep, model = config.partition(MODEL_SEP)
    return model if sep else ""


def without_model(config: str) -> str:
    """A configuration label without its base model ("[mnli] model=<id>" -> "[mnli]"), for tables and plots
    that name the model beside it."""
    return config.partition(MODEL_SEP)[0]


# The baseline in prose: what the configuration labelled "[]" (per model: "[] model=<id>") is.
BASELINE_WORDS = "the base encoder without intermediate training"
