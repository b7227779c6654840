"""cluster.yaml, checked offline: Ray's own schema and defaults, plus the placement rule."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from engine.execution.placement import FIT_RESOURCE, TRIAL_RESOURCE

CLUSTER_YAML = Path(__file__).resolve().parents[1] / "cluster.yaml"
GPU_FAMILY = re.compile(r"^(g\d|p\d)")  # EC2 families with NVIDIA GPUs: g4dn, g5, g6, p4d, p5...


@pytest.fixture(scope="module")
def cfg() -> dict[str, Any]:
    return yaml.safe_load(CLUSTER_YAML.read_text())


def _workers(cfg: dict[str, Any]) -> dict[str, dict[str, Any]]:
    types = cfg["available_node_types"]
    return {k: v for k, v in types.items() if k != cfg["head_node_type"]}


def _has_gpus(node_type: dict[str, Any]) -> bool:
    """A node type has GPUs if it declares some or its instance family carries them."""
    declared = node_type.get("resources", {}).get("GPU", 0) > 0
    return declared or bool(GPU_FAMILY.match(node_type["node_config"]["InstanceType"]))


def _image(cfg: dict[str, Any], name: str) -> str:
    """The docker image a node type runs (a per-type override first, as Ray resolves it)."""
    docker = cfg["docker"]
    if name == cfg["head_node_type"]:
        return docker.get("head_image") or docker["image"]
    own = cfg["available_node_types"][name].get("docker", {})
    return own.get("worker_image") or docker.get("worker_image") or docker["image"]


def _tag(image: str) -> tuple[str, tuple[int, int], str]:
    """(ray version, python version, platform) from a rayproject/ray:<ray>-py3XX-<platform> tag."""
    m = re.fullmatch(r"rayproject/ray:(\d+\.\d+\.\d+)-py(\d)(\d+)-(\w+)", image)
    assert m, f"{image!r} is not a pinned rayproject/ray:<version>-py3XX-<platform> image"
    return m[1], (int(m[2]), int(m[3])), m[4]


def test_ray_accepts_the_config(cfg):
    """What `ray up` does before it talks to AWS: defaults, docker checks, JSON schema."""
    from ray.autoscaler._private.util import prepare_config, validate_config

    validate_config(prepare_config(copy.deepcopy(cfg)))


def test_head_runs_no_tasks(cfg):
    head = cfg["available_node_types"][cfg["head_node_type"]]
    assert head["resources"].get("CPU") == 0
    assert FIT_RESOURCE not in head["resources"] and TRIAL_RESOURCE not in head["resources"]


def test_gpu_types_take_trials_cpu_types_take_fits(cfg):
    workers = _workers(cfg)
    gpu = {k for k, v in workers.items() if _has_gpus(v)}
    assert gpu and set(workers) - gpu, "need both a GPU pool and a CPU-only pool"
    for name, node_type in workers.items():
        res = node_type["resources"]
        if name in gpu:
            assert res.get("GPU", 0) > 0, f"{name}: declare its GPUs"
            assert res.get(TRIAL_RESOURCE, 0) > 0 and FIT_RESOURCE not in res, name
        else:
            assert res.get(FIT_RESOURCE, 0) > 0 and TRIAL_RESOURCE not in res, name
        # the engine asks for these resources only if a live node declares them at sweep start
        assert node_type.get("min_workers", 0) >= 1, f"{name}: keep one node up"


def test_images_have_python_311_and_one_ray(cfg):
    tags = {name: _tag(_image(cfg, name)) for name in cfg["available_node_types"]}
    for name, (_, py, platform) in tags.items():
        assert py >= (3, 11), f"{name}: Python {py} < 3.11"
        if _has_gpus(cfg["available_node_types"][name]):
            assert platform == "gpu" or platform.startswith("cu"), f"{name}: needs a CUDA image"
    assert len({(ray, py) for ray, py, _ in tags.values()}) == 1, "one Ray and Python everywhere"
    ray_version = next(iter(tags.values()))[0]
    setup = " ".join(cfg["setup_commands"])
    assert re.search(rf"ray\[[\w,]+\]=={re.escape(ray_version)}\b", setup), "pin ray to the image"


def test_every_node_type_names_its_ami(cfg):
    # Ray's fallback AMI is an old Ubuntu 18.04 DLAMI; GPU nodes need a current NVIDIA driver
    for name, node_type in cfg["available_node_types"].items():
        assert node_type["node_config"].get("ImageId"), name


def test_project_is_synced_and_installed(cfg):
    assert "." in cfg["file_mounts"].values()
    target = next(k for k, v in cfg["file_mounts"].items() if v == ".")
    assert any(f"cd {target}" in c and "pip install" in c and " -e " in c
               for c in cfg["setup_commands"])
    for pattern in (".venv", "results", ".git"):
        assert pattern in cfg["rsync_exclude"], pattern


def test_documented_storage_is_shared(cfg):
    """The run command in the comments stores under a folder bind-mounted on every node."""
    runs = [ln for ln in CLUSTER_YAML.read_text().splitlines() if "causalmix run" in ln]
    storage = [m for ln in runs for m in re.findall(r"--storage\s+(\S+)", ln)]
    assert storage, "document the run command with its --storage"
    mounts = [opt.split()[1].split(":")[1] for opt in cfg["docker"]["run_options"]
              if opt.startswith("-v ")]
    for path in storage:
        assert any(path == m or path.startswith(m.rstrip("/") + "/") for m in mounts), path
