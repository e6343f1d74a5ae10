"""Strict, offline checks of Kubernetes and Argo objects (no API server can run here).

* `kubernetes_errors` — core objects against Kubernetes' own schemas (`kubernetes-validate --strict`).
* `hera_errors` — Argo objects against Hera's generated models: every key must be a field of the
  model at that place (the models alone silently drop unknown keys, so this walks them), and the
  object must then validate with pydantic (types, required fields).
* `crd_errors` — Argo objects against Argo's full structural CRDs (../shared/schemas, when present):
  unknown keys (outside ``x-kubernetes-preserve-unknown-fields``), required fields, types and enums,
  as ``kubectl --validate=strict`` would.

Each returns a list of human-readable errors: ``path: problem``; empty means valid.
"""

from __future__ import annotations

import functools
import types
import typing
from pathlib import Path
from typing import Any

import yaml

ARGO_KINDS = {"Workflow", "WorkflowTemplate", "CronWorkflow", "ClusterWorkflowTemplate"}
CRD_DIR = Path(__file__).resolve().parents[2] / "shared" / "schemas" / "argo-workflows-v4.1"
CRD_FILES = {"Workflow": "argoproj.io_workflows.yaml", "WorkflowTemplate": "argoproj.io_workflowtemplates.yaml",
             "CronWorkflow": "argoproj.io_cronworkflows.yaml"}
KUBERNETES_VERSION = "1.33.0"


def is_argo(obj: dict[str, Any]) -> bool:
    return str(obj.get("apiVersion", "")).startswith("argoproj.io/") and obj.get("kind") in ARGO_KINDS


# ---------------------------------------------------------------------------------------- kubernetes


def kubernetes_errors(obj: dict[str, Any], version: str = KUBERNETES_VERSION) -> list[str]:
    import kubernetes_validate

    try:
        kubernetes_validate.validate(obj, version, strict=True)
    except kubernetes_validate.ValidationError as e:
        where = "/".join(str(p) for p in e.path)
        return [f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}: {where}: {e.message}"]
    except kubernetes_validate.SchemaNotFoundError as e:
        return [f"{obj.get('kind')}: no Kubernetes {version} schema ({e})"]
    return []


# ---------------------------------------------------------------------------------------------- hera


def _hera_model(kind: str) -> type:
    from hera.workflows import models

    return {"Workflow": models.Workflow, "WorkflowTemplate": models.WorkflowTemplate,
            "CronWorkflow": models.CronWorkflow, "ClusterWorkflowTemplate": models.ClusterWorkflowTemplate}[kind]


@functools.cache
def _fields(model: type) -> dict[str, Any]:
    return {(f.alias or name): f.annotation for name, f in model.model_fields.items()}


def _unwrap(annotation: Any) -> list[Any]:
    """The concrete types an annotation allows (Optional/Union/Annotated removed)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        out = []
        for a in typing.get_args(annotation):
            if a is not type(None):
                out.extend(_unwrap(a))
        return out
    return [annotation]


def _walk_model(value: Any, annotation: Any, path: str, errors: list[str]) -> None:
    from pydantic import BaseModel, RootModel

    for t in _unwrap(annotation):
        origin = typing.get_origin(t)
        if origin in (list, tuple, typing.List) and isinstance(value, list):  # noqa: UP006
            (item,) = typing.get_args(t)[:1] or (Any,)
            for i, v in enumerate(value):
                _walk_model(v, item, f"{path}[{i}]", errors)
            return
        if origin in (dict, typing.Dict) and isinstance(value, dict):  # noqa: UP006
            args = typing.get_args(t)
            for k, v in value.items():
                _walk_model(v, args[1] if len(args) == 2 else Any, f"{path}.{k}", errors)
            return
        if isinstance(t, type) and issubclass(t, RootModel):
            _walk_model(value, t.model_fields["root"].annotation, path, errors)
            return
        if isinstance(t, type) and issubclass(t, BaseModel) and isinstance(value, dict):
            fields = _fields(t)
            for k, v in value.items():
                if k not in fields:
                    errors.append(f"{path}.{k}: unknown field of {t.__name__} (known: {', '.join(sorted(fields))})")
                else:
                    _walk_model(v, fields[k], f"{path}.{k}", errors)
            return


def hera_errors(obj: dict[str, Any]) -> list[str]:
    from pydantic import ValidationError

    model = _hera_model(obj["kind"])
    errors: list[str] = []
    _walk_model(obj, model, obj["kind"], errors)
    try:
        model.model_validate(obj)
    except ValidationError as e:
        for err in e.errors():
            errors.append(f"{obj['kind']}.{'.'.join(str(p) for p in err['loc'])}: {err['msg']}")
    return errors


# ----------------------------------------------------------------------------------------------- CRD


def crds_available() -> bool:
    return all((CRD_DIR / f).is_file() for f in CRD_FILES.values())


def require_crds() -> None:
    """Skip the test without Argo's CRDs (../shared/schemas), or fail it under CI=true."""
    from servers import unavailable

    if not crds_available():
        unavailable(f"Argo's CRDs are not at {CRD_DIR} (../shared/schemas)")


@functools.cache
def _crd_schema(kind: str) -> dict[str, Any]:
    crd = yaml.safe_load((CRD_DIR / CRD_FILES[kind]).read_text())
    return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def _type_ok(value: Any, schema: dict[str, Any]) -> bool:
    if schema.get("x-kubernetes-int-or-string"):
        return isinstance(value, (int, str)) and not isinstance(value, bool)
    t = schema.get("type")
    if t is None:
        return True
    return {
        "object": lambda v: isinstance(v, dict),
        "array": lambda v: isinstance(v, list),
        "string": lambda v: isinstance(v, str),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        "boolean": lambda v: isinstance(v, bool),
    }[t](value)


def _walk_crd(value: Any, schema: dict[str, Any], path: str, errors: list[str]) -> None:
    if not _type_ok(value, schema):
        errors.append(f"{path}: expected {schema.get('type')}, got {type(value).__name__} ({value!r:.60})")
        return
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path}: {value!r} is not one of {schema['enum']}")
    if isinstance(value, list) and "items" in schema:
        for i, v in enumerate(value):
            _walk_crd(v, schema["items"], f"{path}[{i}]", errors)
    if not isinstance(value, dict):
        return
    for req in schema.get("required", []):
        if req not in value:
            errors.append(f"{path}: missing required field {req!r}")
    props = schema.get("properties")
    extra = schema.get("additionalProperties")
    for k, v in value.items():
        if props is not None and k in props:
            _walk_crd(v, props[k], f"{path}.{k}", errors)
        elif isinstance(extra, dict):
            _walk_crd(v, extra, f"{path}.{k}", errors)
        elif props is not None and not schema.get("x-kubernetes-preserve-unknown-fields") and extra is not True:
            errors.append(f"{path}.{k}: unknown field (known: {', '.join(sorted(props))})")


def crd_errors(obj: dict[str, Any]) -> list[str]:
    errors: list[str] = []
    schema = _crd_schema(obj["kind"])
    meta = obj.get("metadata", {})
    if not (meta.get("name") or meta.get("generateName")):
        errors.append(f"{obj['kind']}.metadata: needs name or generateName")
    _walk_crd(obj, schema, obj["kind"], errors)
    return errors
