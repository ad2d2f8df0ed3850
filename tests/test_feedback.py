"""What a user sees (issue 35, items 1-2): results on stdout, messages on stderr, and the written
path at the default verbosity."""

import json

from conftest import make_affine, phantom, run_cli, save_nifti


def test_listings_and_tables_go_to_stdout_unwrapped(tmp_path):
    proc = run_cli("fetch-model", "--list", check=0)
    assert "default" in proc.stdout and "default" not in proc.stderr  # `mrsr fetch-model --list 2>/dev/null` shows it
    deep = tmp_path / ("a-folder-with-a-long-name-" * 4)
    deep.mkdir()
    ref = save_nifti(deep / "reference_image_with_a_long_name.nii.gz", phantom((16, 16, 16)), make_affine())
    test = save_nifti(deep / "test_image_with_a_long_name.nii.gz", phantom((16, 16, 16), seed=1), make_affine())
    proc = run_cli("evaluate", ref, test, check=0)
    assert len(str(test)) > 120 and str(test) in proc.stdout  # one piece, not wrapped at 80 columns
    assert "PSNR" in proc.stdout and "PSNR" not in proc.stderr


def test_the_written_path_is_said_at_the_default_verbosity(tmp_path):
    lr = save_nifti(tmp_path / "lr.nii.gz", phantom((12, 12, 12)), make_affine((2, 2, 2)))
    out = tmp_path / "out.nii.gz"
    proc = run_cli("upscale", lr, out, "--factor", "2", "--method", "spline", check=0)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"mrsr: wrote {out}") and proc.stdout == ""
    proc = run_cli("upscale", lr, out, "--factor", "2", "--method", "spline", "--force", "-q", check=0)
    assert proc.stderr == ""
    proc = run_cli("upscale", lr, out, "--factor", "2", "--method", "spline", "--force", "--json", check=0)
    assert json.loads(proc.stdout)["out_file"] == str(out) and "wrote" in proc.stderr


def test_progress_by_plane_on_a_terminal_and_one_line_per_stage_on_a_log(tmp_path):
    """Under a pseudo-terminal the bar counts planes (it moves inside a volume that is one tile) with a time
    left; with stderr a file (a SLURM log) each stage says once, plainly, what it did and how long it took."""
    import os
    import pty
    import subprocess
    import sys

    lr = save_nifti(tmp_path / "lr.nii.gz", phantom((14, 14, 14)), make_affine((2, 2, 2)))
    args = [sys.executable, "-m", "mrsr_cli", "upscale", str(lr), str(tmp_path / "out.nii.gz"), "--factor", "2",
            "--ensemble", "2", "--force"]
    log = run_cli(*args[3:], check=0).stderr.splitlines()
    stages = [line for line in log if "super-resolving" in line]
    assert stages == [line for line in log if line.startswith("mrsr: super-resolving, pass ")] and len(stages) == 2
    assert all(" 28/28 in " in line and line.endswith(" s") for line in stages), log
    assert log[-1].startswith("mrsr: wrote ")

    leader, follower = pty.openpty()
    proc = subprocess.Popen(args, stdin=follower, stdout=follower, stderr=follower, env={**os.environ, "COLUMNS": "120"})
    os.close(follower)
    seen = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    assert proc.wait() == 0
    text = seen.decode(errors="replace")
    assert "planes" in text and "super-resolving, pass 1/2" in text, text
    assert " 28/28 in " not in text  # on a terminal the bar, not the log's line
