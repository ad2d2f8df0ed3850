"""README's "Use" block runs top to bottom (issue 35, item 7), on the bundled sample: each line in order,
each exits 0 and writes what it says."""

import re
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"## Use\n.*?```bash\n(.*?)```", text, re.S).group(1)
    return [line.split("  #")[0].strip() for line in block.splitlines() if line.strip()]


def test_readme_block_is_what_the_test_runs():
    commands = readme_commands()
    assert len(commands) >= 15 and all(c.startswith("mrsr ") for c in commands)
    written = [_output(_split(c)) for c in commands]
    written = [w for w in written if w]
    assert len(written) >= 15 and len(written) == len(set(written)), "an example overwrites another's output"


def _output(argv: list[str]) -> str | None:
    """The file a README command writes: upscale/simulate IN OUT, register MOVING FIXED OUT, train -o OUT."""
    verb = argv[1]
    if verb in ("upscale", "simulate"):
        return argv[3]
    if verb == "register":
        return argv[4]
    if verb == "train" and "-o" in argv:
        return argv[argv.index("-o") + 1]
    return None


@pytest.mark.slow  # about two minutes: 19 commands on the 2 mm sample
def test_readme_use_block_runs_top_to_bottom(tmp_path):
    shutil.copy(ROOT / "share" / "data" / "sample_T1w_2mm.nii.gz", tmp_path / "hr.nii.gz")
    shutil.copy(ROOT / "share" / "data" / "sample_T1w_2mm.nii.gz", tmp_path / "t2.nii.gz")  # a stand-in contrast
    (tmp_path / "share").symlink_to(ROOT / "share")
    for command in readme_commands():
        argv = [sys.executable, "-m", "mrsr_cli", *_split(command)[1:]]
        proc = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True)
        assert proc.returncode == 0, f"{command}\n{proc.stderr}"
    for name in ("sr.nii.gz", "iso.nii.gz", "sr_t2.nii.gz", "mine.safetensors", "sr_mine.nii.gz", "t2_to_t1.tfm"):
        assert (tmp_path / name).is_file(), name


def _split(command: str) -> list[str]:
    import shlex

    return shlex.split(command)
