"""Container definitions: sections checked statically; the shared install script really run."""

import os
import re
import shutil
import subprocess

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from conftest import ROOT

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

DIGEST_PINNED_BASE = r"python:3\.11-slim-bookworm@sha256:[0-9a-f]{64}"
LOCKS = {"cpu": "2.13.0+cpu", "cuda": "2.13.0"}  # flavour -> torch version in its lock


def _sections(text: str) -> dict:
    parts = re.split(r"^%(\w+)\s*$", text, flags=re.M)
    return {name: body for name, body in zip(parts[1::2], parts[2::2])}


def test_apptainer_definition_sections():
    text = (ROOT / "containers" / "mrsr.def").read_text()
    assert re.search(r"^Bootstrap: docker$", text, re.M) and re.search(rf"^From: {DIGEST_PINNED_BASE}$", text, re.M)
    sec = _sections(text)
    assert {"arguments", "files", "post", "environment", "runscript", "test", "labels", "help"} <= set(sec)
    assert "MRSR_LOCK=/opt/mrsr/src/containers/requirements-{{ TORCH }}.lock bash /opt/mrsr/src/containers/install.sh /opt/mrsr/venv" in sec["post"]
    assert sec["arguments"].split() == ["TORCH=cpu"]
    assert "cp /opt/mrsr/src/share/models/*.safetensors /opt/mrsr/models/" in sec["post"] and "a-w" in sec["post"]
    assert "MRSR_MODEL_PATH=/opt/mrsr/models" in sec["environment"] and "MRSR_HOME" in sec["environment"]
    assert sec["runscript"].strip() == 'exec mrsr "$@"'
    assert "selftest.sh" in sec["test"]
    # %files names what the install needs, never the whole checkout (Apptainer ignores .dockerignore)
    sources = [line.split()[0] for line in sec["files"].splitlines() if line.strip() and not line.strip().startswith("#")]
    assert "." not in sources and {"pyproject.toml", "mrsr_cli", "containers", "share/models"} <= set(sources)
    assert all((ROOT / s).exists() for s in sources)
    assert re.search(r"Apptainer >= 1\.2 or SingularityCE >= 4\.0", text)


def test_dockerfile_uses_the_same_install_script():
    text = (ROOT / "containers" / "Dockerfile").read_text()
    assert "MRSR_LOCK=/opt/mrsr/src/containers/requirements-$TORCH.lock bash /opt/mrsr/src/containers/install.sh /opt/mrsr/venv" in text
    assert "selftest.sh" in text and re.search(r"^ARG TORCH=cpu$", text, re.M)
    # the same base, by digest, as the Apptainer definition
    (base,) = re.findall(r"^FROM (\S+)$", text, re.M)
    assert re.fullmatch(DIGEST_PINNED_BASE, base)
    assert f"From: {base}" in (ROOT / "containers" / "mrsr.def").read_text()
    assert "MRSR_MODEL_PATH=/opt/mrsr/models" in text and 'ENTRYPOINT ["mrsr"]' in text
    assert re.search(r"^USER mrsr$", text, re.M)  # not root at run time
    makefile = (ROOT / "Makefile").read_text()
    assert "containers/install.sh" in makefile


def _read_lock(flavour: str) -> tuple[dict[str, tuple[str, list[str]]], list[str]]:
    """{name: (version, sha256 hashes)} and the option lines of one lock file."""
    text = (ROOT / "containers" / f"requirements-{flavour}.lock").read_text()
    pins, options = {}, []
    for entry in re.split(r"\n(?=\S)", text):
        head = entry.split("\\")[0].strip()
        if not head or head.startswith("#"):
            continue
        if head.startswith("--"):
            options.append(head)
            continue
        name, version = re.fullmatch(r"([A-Za-z0-9_.\-]+)==(\S+)", head).groups()
        pins[canonicalize_name(name)] = (version, re.findall(r"--hash=sha256:([0-9a-f]{64})\b", entry))
    return pins, options


@pytest.mark.parametrize("flavour", sorted(LOCKS))
def test_lock_pins_every_dependency_by_version_and_hash(flavour):
    pins, options = _read_lock(flavour)
    assert all(hashes for _, hashes in pins.values()), [n for n, (_, h) in pins.items() if not h]
    assert pins["torch"][0] == LOCKS[flavour]
    assert options == (["--extra-index-url https://download.pytorch.org/whl/cpu"] if flavour == "cpu" else [])
    assert ("nvidia-cudnn-cu13" in pins) == (flavour == "cuda")  # PyPI's Linux torch is the CUDA build
    assert "setuptools" in pins  # the build backend for installing mrsr itself without isolation
    # every dependency pyproject names for CPython 3.11 on Linux is pinned at a version it allows
    with open(ROOT / "pyproject.toml", "rb") as f:
        dependencies = tomllib.load(f)["project"]["dependencies"]
    target = {"python_version": "3.11", "python_full_version": "3.11.0", "sys_platform": "linux", "platform_machine": "x86_64"}
    for line in dependencies:
        req = Requirement(line)
        if req.marker and not Marker(str(req.marker)).evaluate(target):
            continue
        version = pins[canonicalize_name(req.name)][0]
        assert req.specifier.contains(version, prereleases=True), (req, version)
    # the plain install's default torch is the same release the locks pin
    assert "torch==" + LOCKS["cuda"] in (ROOT / "containers" / "install.sh").read_text()


def test_pin_base_rewrites_both_definitions(tmp_path):
    """containers/pin-base.sh with a stand-in `docker` that answers as buildx imagetools does."""
    for name in ("Dockerfile", "mrsr.def", "pin-base.sh"):
        shutil.copy(ROOT / "containers" / name, tmp_path)
    digest = "sha256:" + "ab" * 32
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text(f"#!/bin/sh\nprintf 'Name: docker.io/library/x\\nMediaType: index\\nDigest:    {digest}\\n'\n")
    (bin_dir / "docker").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    proc = subprocess.run(["bash", str(tmp_path / "pin-base.sh")], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert f"FROM python:3.11-slim-bookworm@{digest}\n" in (tmp_path / "Dockerfile").read_text()
    assert f"From: python:3.11-slim-bookworm@{digest}\n" in (tmp_path / "mrsr.def").read_text()
    # a registry that answers nothing leaves both files as they were
    (bin_dir / "docker").write_text("#!/bin/sh\nexit 0\n")
    before = (tmp_path / "Dockerfile").read_text()
    proc = subprocess.run(["bash", str(tmp_path / "pin-base.sh")], env=env, capture_output=True, text=True)
    assert proc.returncode == 1 and "no digest" in proc.stderr and (tmp_path / "Dockerfile").read_text() == before


@pytest.mark.slow
@pytest.mark.installs
@pytest.mark.parametrize("lock", [None, "cpu"])
def test_install_script_in_fresh_venv_then_selftest(tmp_path, lock):
    """What %post and %test do, minus the container runtime (none exists on these machines).
    With the CPU lock, every file pip installs is checked against the lock's sha256."""
    venv = tmp_path / "venv"
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    if lock:  # one try per index: where download.pytorch.org cannot be reached, pip's find-links has the wheel
        env.update(MRSR_LOCK=str(ROOT / "containers" / f"requirements-{lock}.lock"), PIP_RETRIES="0")
    subprocess.run(["bash", str(ROOT / "containers" / "install.sh"), str(venv)], check=True, env=env, cwd=tmp_path)
    models = tmp_path / "opt-models"
    models.mkdir()
    for f in (ROOT / "share" / "models").glob("*.safetensors"):
        shutil.copy(f, models)
    env.update(PATH=f"{venv / 'bin'}:{env['PATH']}", MRSR_MODEL_PATH=str(models), MRSR_HOME=str(tmp_path / "home"))
    proc = subprocess.run(["bash", str(ROOT / "containers" / "selftest.sh")], env=env, cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert "mrsr selftest: ok" in proc.stdout
    # the non-editable install carries the builtin models as package data
    code = "from mrsr_cli.models.zoo import builtin_path; print(builtin_path('default'))"
    out = subprocess.run([str(venv / "bin" / "python"), "-c", code], env=env, capture_output=True, text=True, cwd=tmp_path).stdout
    assert str(venv) in out
