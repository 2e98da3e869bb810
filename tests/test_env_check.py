"""`bmclip env-check` against replayed nvidia-smi outputs, on the base install (no torch) and in the full venv.

A fake `nvidia-smi` (tests/machines.py) is the only program on PATH, replaying one recorded machine.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from machines import REPO, machine, run_base_install

from biomedclip_cli.envinfo.compat import CPU_BUILD, build_cuda, covers, packaged_table, parse_version
from biomedclip_cli.envinfo.machine_checks import Status, disk_status, nccl_check
from biomedclip_cli.envinfo.nvidia_smi import DriverReport, Gpu, SmiStatus, parse_banner
from biomedclip_cli.envinfo.policy import advise
from biomedclip_cli.envinfo.stack_checks import explain_torchvision_error, webdataset_check

SEED_COMMAND = "pip install torch==2.0.1 torchvision==0.15.2 --index-url https://download.pytorch.org/whl/cu117"
SECRET = "hf_NotARealTokenButSecret0123456789"

# case -> (torch, build, minor-version compatibility, alternative (torch, build) or None)
EXPECTED = {
    "515-cuda11.7": ("2.0.1", "cu117", False, ("2.7.1", "cu118")),
    "470-rejects-compute-cap": ("2.7.1", "cu118", True, None),
    "535-cuda12.2": ("2.5.1", "cu121", False, ("2.14.1", "cu126")),
    "550-cuda12.4": ("2.6.0", "cu124", False, ("2.14.1", "cu126")),
    "570-cuda12.8-sm120": ("2.11.0", "cu128", False, None),
    "580-cuda13.0-sm61": ("2.14.1", "cu126", False, None),
    "610-umd13.3": ("2.14.1", "cu132", False, None),
    "8-gpus-550-cuda12.4": ("2.6.0", "cu124", False, ("2.14.1", "cu126")),
    "garbage": ("2.14.1", CPU_BUILD, False, None),
    "driver-not-loaded": ("2.14.1", CPU_BUILD, False, None),
    None: ("2.14.1", CPU_BUILD, False, None),
}


def env_check_json(result: subprocess.CompletedProcess[str]) -> dict:
    assert not result.stderr, result.stderr
    return json.loads(result.stdout)


def full_venv(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run `bmclip ARGS` in this venv (torch, torchvision, open_clip installed)."""
    return subprocess.run([sys.executable, "-m", "biomedclip_cli", *args], env={**env, "PYTHONPATH": str(REPO)}, cwd=cwd,
                          capture_output=True, text=True, timeout=300, check=False)


def check(report: dict, name: str) -> dict:
    return next(item for item in report["checks"] if item["name"] == name)


def in_table(torch: str, torchvision: str, build: str) -> bool:
    release = packaged_table().release(torch)
    return release is not None and release.torchvision == torchvision and (build == CPU_BUILD or build in release.builds)


def test_the_base_install_really_has_no_torch(base_site: Path, tmp_path: Path):
    probe = "import importlib.util as u; print([m for m in ('torch', 'torchvision', 'open_clip', 'typer') if u.find_spec(m)])"
    result = subprocess.run([sys.executable, "-I", "-S", "-c", f"import sys; sys.path[:0] = [{str(base_site)!r}]; {probe}"],
                            capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "['typer']"


def test_seed_machine_gets_the_seed_install_without_torch(base_site: Path, tmp_path: Path):
    result = run_base_install(base_site, "env-check", env=machine(tmp_path, "515-cuda11.7"))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert f"  {SEED_COMMAND}" in lines
    assert "NVIDIA GeForce RTX 3090" in result.stdout
    assert "Python versions with wheels of torch 2.0.1: 3.8-3.11" in result.stdout
    assert "Newer option, relying on CUDA minor-version compatibility:" in result.stdout
    assert "compatibility table of 2026-11-28" in result.stdout


@pytest.mark.parametrize("case", list(EXPECTED), ids=lambda case: case or "no-nvidia-smi")
def test_recommendation_without_torch(base_site: Path, tmp_path: Path, case: str | None):
    result = run_base_install(base_site, "env-check", "--json", env=machine(tmp_path, case))
    assert result.returncode == 0
    report = env_check_json(result)
    torch, build, minor, alternative = EXPECTED[case]
    pick = report["recommended"]
    assert (pick["torch"], pick["build"], pick["minor_version_compatibility"]) == (torch, build, minor)
    assert in_table(pick["torch"], pick["torchvision"], pick["build"])
    assert pick["command"] == f"pip install torch=={torch} torchvision=={pick['torchvision']} --index-url https://download.pytorch.org/whl/{build}"
    if alternative is None:
        assert report["alternative"] is None
    else:
        second = report["alternative"]
        assert (second["torch"], second["build"], second["minor_version_compatibility"]) == (*alternative, True)
        assert in_table(second["torch"], second["torchvision"], second["build"])
    installed = check(report, "pytorch")
    assert (installed["status"], installed["fix"]) == ("warn", pick["command"])
    assert "checks" in report and not report["failed"]


def test_seed_case_names_pythons_and_minor_version_option(base_site: Path, tmp_path: Path):
    report = env_check_json(run_base_install(base_site, "env-check", "--json", env=machine(tmp_path, "515-cuda11.7")))
    assert report["recommended"]["command"] == SEED_COMMAND
    assert report["recommended"]["python"] == "3.8-3.11"
    assert report["driver"] == {"nvidia_smi": "ok", "message": None, "driver_version": "515.65.01", "cuda_version": "11.7",
                                "gpus": [{"index": 0, "name": "NVIDIA GeForce RTX 3090", "arch": "sm_86", "compute_capability": "8.6",
                                          "memory_mib": 24576}]}
    python = check(report, "python")
    running = parse_version(report["python"])
    assert python["status"] == ("pass" if (3, 8) <= running[:2] <= (3, 11) else "warn")
    assert "minor-version compatibility" in report["alternative"]["reason"]


def test_r470_driver_is_asked_again_without_compute_cap(base_site: Path, tmp_path: Path):
    report = env_check_json(run_base_install(base_site, "env-check", "--json", env=machine(tmp_path, "470-rejects-compute-cap")))
    assert report["driver"]["gpus"] == [{"index": 0, "name": "Tesla T4", "arch": None, "compute_capability": None, "memory_mib": 15109}]
    assert report["driver"]["cuda_version"] == "11.4"
    assert "minor-version compatibility" in report["recommended"]["reason"]
    assert any("compute capabilit" in note for note in report["notes"])
    assert check(report, "pytorch build")["status"] == "warn"


def test_pascal_gpu_on_cuda13_driver_gets_a_build_with_its_architecture(base_site: Path, tmp_path: Path):
    report = env_check_json(run_base_install(base_site, "env-check", "--json", env=machine(tmp_path, "580-cuda13.0-sm61")))
    pick = report["recommended"]
    archs = packaged_table().release(pick["torch"]).builds[pick["build"]]
    assert {"sm_60", "sm_61"} & set(archs)
    assert covers(archs, (6, 1))


def test_r610_banner_and_eight_gpus_are_read(base_site: Path, tmp_path: Path):
    r610 = env_check_json(run_base_install(base_site, "env-check", "--json", env=machine(tmp_path, "610-umd13.3")))
    assert (r610["driver"]["driver_version"], r610["driver"]["cuda_version"]) == ("610.57.04", "13.3")
    eight = env_check_json(run_base_install(base_site, "env-check", "--json", env=machine(tmp_path, "8-gpus-550-cuda12.4")))
    assert [gpu["index"] for gpu in eight["driver"]["gpus"]] == list(range(8))
    assert {gpu["arch"] for gpu in eight["driver"]["gpus"]} == {"sm_90"}


@pytest.mark.parametrize(("case", "status", "says"), [
    ("garbage", "unreadable", "no GPU could be read"),
    ("driver-not-loaded", "failed", "exited with status 9: NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver"),
    (None, "missing", "not on PATH"),
])
def test_unusable_nvidia_smi_means_the_cpu_build_and_a_warning(base_site: Path, tmp_path: Path, case: str | None, status: str, says: str):
    report = env_check_json(run_base_install(base_site, "env-check", "--json", env=machine(tmp_path, case)))
    assert report["driver"]["nvidia_smi"] == status
    assert says in report["driver"]["message"]
    assert report["recommended"]["build"] == CPU_BUILD
    assert check(report, "nvidia driver")["status"] == "warn"


def test_hf_token_is_reported_but_never_printed(base_site: Path, tmp_path: Path):
    env = {**machine(tmp_path, None), "HF_TOKEN": SECRET}
    as_json = run_base_install(base_site, "env-check", "--json", env=env)
    as_table = run_base_install(base_site, "env-check", env=env)
    assert check(env_check_json(as_json), "hugging face token") == {
        "name": "hugging face token", "status": "pass", "detail": "found in the HF_TOKEN environment variable (value not shown)",
        "fix": None}
    for output in (as_json.stdout, as_json.stderr, as_table.stdout, as_table.stderr):
        assert SECRET not in output


def test_hf_login_file_counts_as_a_token(base_site: Path, tmp_path: Path):
    env = machine(tmp_path, None)
    (Path(env["HF_HOME"]) / "token").write_text(SECRET + "\n")
    result = run_base_install(base_site, "env-check", "--json", env=env)
    token = check(env_check_json(result), "hugging face token")
    assert token["status"] == "pass" and "hf auth login" in token["detail"]
    assert SECRET not in result.stdout
    (Path(env["HF_HOME"]) / "token").unlink()
    assert check(env_check_json(run_base_install(base_site, "env-check", "--json", env=env)), "hugging face token")["status"] == "warn"


def test_two_nccl_packages_fail_the_check_without_torch(base_site: Path, tmp_path: Path):
    extra = tmp_path / "more-site"
    for name, version in (("nvidia_nccl_cu12", "2.21.5"), ("nvidia_nccl_cu13", "2.30.7")):
        installed_metadata(extra, name, version)
    result = run_base_install(base_site, "env-check", "--json", env=machine(tmp_path, None), more_paths=(extra,))
    assert result.returncode == 1
    nccl = check(env_check_json(result), "nccl packages")
    assert nccl["status"] == "fail" and "ncclCommRegister" in nccl["detail"]


def test_logs_that_is_a_file_is_bad_usage(base_site: Path, tmp_path: Path):
    (tmp_path / "logs.txt").write_text("")
    result = run_base_install(base_site, "env-check", "--logs", str(tmp_path / "logs.txt"), env=machine(tmp_path, None))
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [f"bmclip: error: --logs: '{tmp_path / 'logs.txt'}' is a file, not a folder; "
                                                  "give the folder that will hold the run folders"]


def test_help_documents_the_policy(base_site: Path, tmp_path: Path):
    result = run_base_install(base_site, "env-check", "--help", env=machine(tmp_path, None))
    text = " ".join(result.stdout.split())
    for phrase in ("highest CUDA build not newer than the CUDA version the driver reports", "newest PyTorch release published for it",
                   "minor-version compatibility", "the CPU build", "1 when a check fails"):
        assert phrase in text


# --- the full venv: torch 2.14.1 (a CUDA 13.0 build) is installed, the GPU the fake nvidia-smi lists is not there ---

def test_full_venv_without_gpu_passes(tmp_path: Path):
    result = full_venv("env-check", "--json", env=machine(tmp_path, None), cwd=tmp_path)
    report = env_check_json(result)
    assert result.returncode == 0, report["checks"]
    statuses = {item["name"]: item["status"] for item in report["checks"]}
    assert statuses["torchvision"] == statuses["open_clip"] == statuses["webdataset"] == statuses["nccl packages"] == "pass"
    assert statuses["pytorch"] == "pass"


def test_full_venv_torch_newer_than_the_seed_driver_fails_with_the_seed_fix(tmp_path: Path):
    import torch

    result = full_venv("env-check", "--json", env=machine(tmp_path, "515-cuda11.7"), cwd=tmp_path)
    report = env_check_json(result)
    installed = check(report, "pytorch")
    if parse_version(torch.version.cuda or "0") <= (11, 7):
        pytest.skip("needs a torch built for a CUDA newer than 11.7")
    assert result.returncode == 1
    assert installed["status"] == "fail" and "too old" in installed["detail"]
    assert installed["fix"] == SEED_COMMAND


def test_full_venv_gpu_missing_from_the_build_fails(tmp_path: Path):
    import torch

    result = full_venv("env-check", "--json", env=machine(tmp_path, "580-cuda13.0-sm61"), cwd=tmp_path)
    report = env_check_json(result)
    gpus = check(report, "gpus")
    if not torch.cuda.get_arch_list() or covers(tuple(torch.cuda.get_arch_list()), (6, 1)):
        pytest.skip("needs a CUDA build of torch without sm_60/sm_61 code")
    assert result.returncode == 1
    assert gpus["status"] == "fail" and "sm_61" in gpus["detail"] and "no kernel image" in gpus["detail"]
    assert gpus["fix"] == report["recommended"]["command"]


def test_full_venv_hidden_gpus_are_a_warning(tmp_path: Path):
    import torch

    result = full_venv("env-check", env=machine(tmp_path, "610-umd13.3"), cwd=tmp_path)
    assert "pip install torch==2.14.1 torchvision==0.29.1 --index-url https://download.pytorch.org/whl/cu132" in result.stdout
    if not torch.version.cuda or parse_version(torch.version.cuda) > (13, 3):
        pytest.skip("needs a torch built for CUDA 13.3 or older")
    assert result.returncode == 0, result.stdout
    assert "CUDA_VISIBLE_DEVICES='' hides every GPU from torch" in " ".join(result.stdout.split())


# --- the policy and the checks, called directly ---

def every_machine() -> list[DriverReport]:
    """Drivers at each CUDA version's floor and just below it, each with one GPU of every architecture the table knows."""
    table = packaged_table()
    archs = {arch for release in table.releases for build_archs in release.builds.values() for arch in build_archs}
    capabilities = [(int(arch[3:-1]), int(arch[-1])) for arch in archs] + [(8, 9), (12, 1), None]
    reports = []
    for cuda, floor in table.toolkit_driver_floor.items():
        for driver in (floor, f"{parse_version(floor)[0] - 1}.99"):
            for capability in capabilities:
                reports.append(DriverReport(SmiStatus.OK, driver, cuda, (Gpu(0, "GPU", capability, 1024),)))
    return reports


def test_every_recommended_triple_exists_in_the_table_and_runs_the_gpu():
    table = packaged_table()
    for report in every_machine():
        advice = advise(table, report)
        for pick in filter(None, (advice.pick, advice.alternative)):
            assert in_table(pick.release.torch, pick.release.torchvision, pick.build), (report, pick)
            if pick.build == CPU_BUILD:
                continue
            capability = report.gpus[0].compute_capability
            assert capability is None or covers(pick.release.builds[pick.build], capability), (report, pick)
            if not pick.minor_version_compatibility:
                assert build_cuda(pick.build) <= report.cuda_version, (report, pick)
            else:
                assert build_cuda(pick.build)[0] == report.cuda_version[0], (report, pick)


def test_gpu_newer_than_every_build_fails_with_a_fix():
    advice = advise(packaged_table(), DriverReport(SmiStatus.OK, "700.1", (14, 0), (Gpu(0, "Future GPU", (15, 0), 1),)))
    assert advice.pick.build == CPU_BUILD
    assert advice.problem == "no PyTorch build in the table of 2026-11-28 has code for sm_150"
    assert advice.fix


def test_driver_older_than_every_build_names_the_driver_to_install():
    advice = advise(packaged_table(), DriverReport(SmiStatus.OK, "450.36.06", (11, 0), (Gpu(0, "A100", (8, 0), 40960),)))
    assert advice.pick.build == CPU_BUILD
    assert advice.fix == "update the NVIDIA driver to 450.80.02 or newer, then run bmclip env-check again"


def test_both_banner_forms_are_read():
    assert parse_banner("| NVIDIA-SMI 515.65.01    Driver Version: 515.65.01    CUDA Version: 11.7     |") == ("515.65.01", (11, 7))
    assert parse_banner("| NVIDIA-SMI 610.57.04   KMD Version: 610.57.04   CUDA UMD Version: 13.3 |") == ("610.57.04", (13, 3))
    assert parse_banner("nothing here") == (None, None)


def test_torchvision_built_for_another_torch_is_explained():
    explained = explain_torchvision_error("operator torchvision::nms does not exist")
    assert "torchvision was built for a different torch" in explained
    assert "different CUDA versions" in explain_torchvision_error(
        "Detected that PyTorch and torchvision were compiled with different CUDA major versions.")


def installed_metadata(site: Path, name: str, version: str) -> None:
    """Install the metadata of a distribution (no code) into `site`, as pip leaves it."""
    info = site / f"{name}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name.replace('_', '-')}\nVersion: {version}\n")


def test_second_nccl_package_is_named_for_removal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    installed_metadata(tmp_path, "nvidia_nccl_cu12", "2.21.5")
    monkeypatch.syspath_prepend(str(tmp_path))
    result = nccl_check()
    if "nvidia-nccl-cu13" not in result.detail:
        pytest.skip("needs torch's nvidia-nccl-cu13 installed")
    assert result.status is Status.FAIL
    assert result.fix.startswith("pip uninstall -y nvidia-nccl-cu12  (keeps nvidia-nccl-cu13, the one torch requires)")


def test_webdataset_outside_open_clip_range_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    installed_metadata(tmp_path, "webdataset", "1.0.2")
    monkeypatch.syspath_prepend(str(tmp_path))
    result = webdataset_check()
    assert result.status is Status.FAIL
    assert result.detail.startswith("webdataset 1.0.2 is outside")
    assert result.fix.startswith("pip install 'webdataset")


def test_disk_thresholds():
    gib = 1024**3
    assert [disk_status(free) for free in (gib, 5 * gib, 100 * gib)] == [Status.FAIL, Status.WARN, Status.PASS]


def test_the_table_is_well_formed():
    table = packaged_table()
    assert table.releases == tuple(sorted(table.releases, key=lambda release: release.version))
    for release in table.releases:
        assert release.builds and release.python[0] <= release.python[1]
        for build, archs in release.builds.items():
            assert build_cuda(build)[0] in table.minor_version_driver_floor
            assert all(arch.startswith("sm_") for arch in archs)
    assert '"envinfo/*.json"' in (REPO / "pyproject.toml").read_text()
