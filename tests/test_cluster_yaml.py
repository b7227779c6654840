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


def _tree(root: Path) -> None:
    """A checkout with the folders the launcher must never hash or sync."""
    for rel in (".git/HEAD", ".venv/bin/python", "results/s/results.parquet", "engine/a.py",
                "dist/causalmix_sweep-0.1.0-py3-none-any.whl"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(rel)


def test_file_mounts_hash_only_the_wheel(cfg, tmp_path, monkeypatch):
    """Ray's own file-mount hash (what decides whether `ray up` re-runs node setup) sees the
    wheel folder only: changing .git, .venv or results changes nothing, a new wheel does."""
    from ray.autoscaler._private.util import hash_runtime_conf

    _tree(tmp_path)
    monkeypatch.chdir(tmp_path)
    mounts = cfg["file_mounts"]
    assert not any(Path(local).resolve() == tmp_path for local in mounts.values())

    def contents_hash() -> str:
        return hash_runtime_conf(mounts, None, {}, generate_file_mounts_contents_hash=True)[1]

    before = contents_hash()
    for rel in (".git/HEAD", ".venv/bin/python", "results/s/results.parquet", "engine/a.py"):
        (tmp_path / rel).write_text("changed")
    assert contents_hash() == before
    (tmp_path / "dist/causalmix_sweep-0.1.0-py3-none-any.whl").write_text("new build")
    assert contents_hash() != before


def _stubs(tmp_path: Path) -> tuple[Path, Path]:
    """Executables that record their calls instead of touching the machine."""
    bin_dir, log = tmp_path / "bin", tmp_path / "calls.log"
    bin_dir.mkdir()
    for name, code in (("sudo", 0), ("mount", 0), ("mountpoint", 1), ("dpkg", 0),
                       ("apt-get", 0), ("pip", 0), ("nvidia-smi", 1), ("chown", 0)):
        stub = bin_dir / name
        stub.write_text(f'#!/bin/bash\necho "{name} $*" >> {log}\nexit {code}\n')
        stub.chmod(0o755)
    return bin_dir, log


def _run_node_setup(cfg: dict[str, Any], tmp_path: Path, efs_id: str) -> str:
    import subprocess

    bin_dir, log = _stubs(tmp_path)
    home = tmp_path / "home"
    (home / "causalmix-dist").mkdir(parents=True)
    (home / "causalmix-dist" / "causalmix_sweep-0.1.0-py3-none-any.whl").write_text("")
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(home)}
    for command in cfg["initialization_commands"] + cfg["setup_commands"]:
        command = command.replace("EFS_ID=;", f"EFS_ID={efs_id};")
        proc = subprocess.run(["bash", "-c", command], env=env, capture_output=True, text=True,
                              timeout=60)
        assert proc.returncode == 0, (command, proc.stderr)
    return log.read_text() if log.exists() else ""


def test_node_setup_without_efs_mounts_nothing(cfg, tmp_path):
    assert any("EFS_ID=;" in c for c in cfg["initialization_commands"]), "EFS_ID empty by default"
    calls = _run_node_setup(cfg, tmp_path, "")
    assert "mount " not in calls and "apt-get" not in calls
    assert "pip install -q " + str(tmp_path / "home/causalmix-dist") in calls  # the wheel


def test_node_setup_with_efs_mounts_it(cfg, tmp_path):
    calls = _run_node_setup(cfg, tmp_path, "fs-0123")
    assert "fs-0123.efs.us-east-1.amazonaws.com:/ /mnt/efs" in calls


def test_documented_storage_is_shared(cfg):
    """The run command in the comments stores on S3 or under a folder bind-mounted on every
    node."""
    runs = [ln for ln in CLUSTER_YAML.read_text().splitlines() if "causalmix run" in ln]
    storage = [m for ln in runs for m in re.findall(r"--storage\s+(\S+)", ln)]
    assert storage, "document the run command with its --storage"
    mounts = [opt.split()[1].split(":")[1] for opt in cfg["docker"]["run_options"]
              if opt.startswith("-v ")]
    for path in storage:
        shared = any(path == m or path.startswith(m.rstrip("/") + "/") for m in mounts)
        assert shared or path.startswith("s3://"), path
