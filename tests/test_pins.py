"""Where versions are pinned: pyproject.toml states compatible ranges, constraints.txt the exact versions that
`make` and both images install; the images check the torch build they got; the GPU image's driver floor
reaches the chart's node selection."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from xit.argo import GPU_POD_KINDS as GPU_KINDS  # evaluate stages run in target pods

ROOT = Path(__file__).resolve().parents[1]


def constraints() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split("==")
            pins[canonicalize_name(name)] = version
    return pins


def requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra]
    return [Requirement(r) for r in reqs]


def test_pyproject_states_ranges_and_constraints_pin_each_within_them() -> None:
    pins = constraints()
    for req in requirements():
        assert not any(s.operator in ("==", "===") for s in req.specifier), f"exact pin in pyproject.toml: {req}"
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} has no exact version in constraints.txt"
        assert req.specifier.contains(pins[name], prereleases=True), (req, pins[name])
    assert pins["torch"] == "2.13.0"  # no local label: the CPU (+cpu) and CUDA builds both satisfy it


def test_make_and_images_install_from_the_constraints() -> None:
    makefile = (ROOT / "Makefile").read_text()
    installs = [ln for ln in makefile.splitlines() if "pip install" in ln]
    assert installs and all("-c constraints.txt" in ln for ln in installs), installs
    assert "torch==" not in makefile
    assert "!constraints.txt" in (ROOT / ".dockerignore").read_text().splitlines()
    for image in ("cpu", "gpu"):
        text = (ROOT / "images" / f"{image}.Dockerfile").read_text()
        pip = [m.group(0) for m in re.finditer(r"pip install[^\n]*(?:\\\n[^\n]*)*", text)]
        deps = [p for p in pip if "--root /staging" not in p and "build-requirements" not in p]
        assert len(deps) == 2 and all("-c /build/constraints.txt" in p for p in deps), (image, deps)
        assert "torch==" not in text, image


def test_cpu_image_refuses_a_cuda_torch_and_gpu_image_states_its_driver_floor() -> None:
    import yaml
    from chart_tools import render

    cpu = (ROOT / "images" / "cpu.Dockerfile").read_text()
    assert "torch.version.cuda is None" in cpu and 'ARG TORCH_INDEX_URL=""' in cpu
    assert '${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"}' in cpu
    gpu = (ROOT / "images" / "gpu.Dockerfile").read_text()
    assert 'startswith("13.")' in gpu
    (floor,) = re.findall(r'dev\.xit\.nvidia-driver-min="(\d+)"', gpu)
    values = yaml.safe_load((ROOT / "helm" / "xit" / "values.yaml").read_text())
    docs = render(sets=(f"gpuDriverFloor.minDriverMajor={floor}",))
    (wt,) = [d for d in docs if d["kind"] == "WorkflowTemplate"]
    ts = {t["name"]: t for t in wt["spec"]["templates"]}
    want = {"key": values["gpuDriverFloor"]["label"], "operator": "Gt", "values": [str(int(floor) - 1)]}
    for kind in GPU_KINDS:
        (term,) = ts[kind]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
            "nodeSelectorTerms"]
        assert want in term["matchExpressions"], kind
    assert "affinity" not in ts["report"] and "affinity" not in ts["plan"]
    assert "affinity" not in {t["name"]: t for t in next(d for d in render() if d["kind"] == "WorkflowTemplate")[
        "spec"]["templates"]}["target"]
