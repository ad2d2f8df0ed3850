"""Container definitions: sections checked statically; the shared install script really run."""

import os
import re
import shutil
import subprocess

import pytest

from conftest import ROOT


def _sections(text: str) -> dict:
    parts = re.split(r"^%(\w+)\s*$", text, flags=re.M)
    return {name: body for name, body in zip(parts[1::2], parts[2::2])}


def test_apptainer_definition_sections():
    text = (ROOT / "containers" / "mrsr.def").read_text()
    assert re.search(r"^Bootstrap: docker$", text, re.M) and re.search(r"^From: python:3\.11", text, re.M)
    sec = _sections(text)
    assert {"arguments", "files", "post", "environment", "runscript", "test", "labels", "help"} <= set(sec)
    assert "containers/install.sh /opt/mrsr/venv" in sec["post"]
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
    assert "containers/install.sh /opt/mrsr/venv" in text and "selftest.sh" in text
    assert "MRSR_MODEL_PATH=/opt/mrsr/models" in text and 'ENTRYPOINT ["mrsr"]' in text
    assert re.search(r"^USER mrsr$", text, re.M)  # not root at run time
    makefile = (ROOT / "Makefile").read_text()
    assert "containers/install.sh" in makefile


@pytest.mark.slow
@pytest.mark.installs
def test_install_script_in_fresh_venv_then_selftest(tmp_path):
    """What %post and %test do, minus the container runtime (none exists on these machines)."""
    venv = tmp_path / "venv"
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
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
