"""torchrun data parallelism on CPU (gloo): 2 ranks × batch 4 == 1 rank × batch 8; rank 0 writes."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
from safetensors import safe_open

from conftest import make_affine, phantom, run_cli, save_nifti


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(nproc: int, *args):
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}
    # One retry, only for failures outside mrsr: a free port taken between finding it and binding it,
    # or a rank aborted by the C++ runtime (SIGABRT, seen once in 2026-12 CI on a loaded 2-core
    # machine, not reproduced in the reruns; the rank's own message is kept in the assertion below).
    for attempt in range(2):
        # a rank aborted after rank 0 wrote the model leaves it behind: the retry overwrites it
        retry = ["--force"] if attempt else []
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(nproc), "--master-addr", "127.0.0.1",
               "--master-port", str(_free_port()), "-m", "mrsr_cli.app.cli", "train", *map(str, args), *retry]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
        transient = "address already in use" in proc.stderr.lower() or "exitcode: -6" in proc.stderr
        if proc.returncode == 0 or not transient:
            break
    causes = [line for line in proc.stderr.splitlines() if any(k in line for k in ("terminate", "what()", "Error", "mrsr:"))]
    assert proc.returncode == 0, "\n".join(causes[:10]) + "\n" + proc.stderr[-1500:]
    return proc


def _weights(path):
    with safe_open(str(path), framework="np") as fh:
        return {k: fh.get_tensor(k) for k in fh.keys()}, json.loads(fh.metadata()["mrsr"])


@pytest.fixture
def volumes(tmp_path):
    return (save_nifti(tmp_path / "hr.nii.gz", phantom((32, 32, 32), seed=4), make_affine()),
            save_nifti(tmp_path / "val.nii.gz", phantom((32, 32, 32), seed=5), make_affine()))


def _args(tmp_path, hr, val, out, *extra):
    return [hr, "-o", tmp_path / out, "--layers", "2", "--filters", "4", "--patch", "12", "--batch", "8",
            "--patches-per-epoch", "8", "--seed", "3", "--precision", "fp32", "--threads", "1", "--scales", "2,2,2",
            "--val", val, "--val", val, "-q", *extra]


@pytest.mark.slow  # seconds to minutes of training or a subprocess fleet: make test-slow
def test_two_ranks_equal_one_rank_with_the_whole_batch(tmp_path, volumes):
    hr, val = volumes
    torchrun(1, *_args(tmp_path, hr, val, "one.safetensors", "--epochs", "1"))
    torchrun(2, *_args(tmp_path, hr, val, "two.safetensors", "--epochs", "1"))
    one, _ = _weights(tmp_path / "one.safetensors")
    two, meta = _weights(tmp_path / "two.safetensors")
    for k in one:  # the gradient all-reduce of 2 × 4 patches is the gradient of the 8
        np.testing.assert_allclose(two[k], one[k], rtol=1e-5, atol=1e-7)
    assert meta["training"]["world_size"] == 2 and meta["training"]["batch"] == 8
    # rank 0 alone wrote: one model, one checkpoint, one curve, with validation averaged over the ranks' shares
    assert sorted(p.name for p in tmp_path.glob("two*")) == ["two.ckpt.safetensors", "two.log.jsonl", "two.safetensors"]
    curves = [[json.loads(line) for line in (tmp_path / f"{n}.log.jsonl").read_text().splitlines()] for n in ("one", "two")]
    assert curves[0][-1]["val_psnr"] == pytest.approx(curves[1][-1]["val_psnr"], abs=1e-4)


@pytest.mark.slow  # seconds to minutes of training or a subprocess fleet: make test-slow
def test_resume_across_a_changed_world_size(tmp_path, volumes):
    hr, val = volumes
    torchrun(2, *_args(tmp_path, hr, val, "full.safetensors", "--epochs", "2"))
    torchrun(2, *_args(tmp_path, hr, val, "half.safetensors", "--epochs", "1"))
    torchrun(1, *_args(tmp_path, hr, val, "resumed.safetensors", "--epochs", "2", "--resume", tmp_path / "half.ckpt.safetensors"))
    full, _ = _weights(tmp_path / "full.safetensors")
    resumed, meta = _weights(tmp_path / "resumed.safetensors")
    for k in full:
        np.testing.assert_allclose(resumed[k], full[k], rtol=1e-5, atol=1e-7)
    assert meta["training"]["world_size"] == 1


def test_a_batch_that_does_not_split_is_a_usage_error(tmp_path, volumes):
    hr, val = volumes
    proc = run_cli("train", *_args(tmp_path, hr, val, "x.safetensors", "--epochs", "1"),
                   env={"WORLD_SIZE": "3", "RANK": "0", "LOCAL_RANK": "0"})
    assert proc.returncode == 2 and "does not split evenly over 3 processes" in proc.stderr
    assert not (tmp_path / "x.safetensors").exists()


@pytest.mark.slow  # seconds to minutes of training or a subprocess fleet: make test-slow
def test_sigterm_to_torchrun_checkpoints_once_consistently(tmp_path, volumes):
    """SLURM preemption: torchrun forwards SIGTERM; rank 0 saves the checkpoint of its last step
    (every rank holds the same weights after a step), and the checkpoint resumes."""
    import signal
    import time

    hr, val = volumes
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-addr", "127.0.0.1",
           "--master-port", str(_free_port()), "-m", "mrsr_cli.app.cli", "train",
           *map(str, _args(tmp_path, hr, val, "s.safetensors", "--epochs", "50", "--patches-per-epoch", "800"))]
    cmd.remove("-q")
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env=env)
    log = tmp_path / "s.log.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and not (log.exists() and log.read_text().strip()):
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    # rank 0 saves once; another rank caught inside a collective may end with the broken group's error instead
    assert err.count("checkpoint saved") == 1 and "mrsr: error: interrupted" in err
    with safe_open(str(tmp_path / "s.ckpt.safetensors"), framework="np") as fh:
        assert json.loads(fh.metadata()["mrsr-checkpoint"])["iteration"] >= 10
    assert not (tmp_path / "s.safetensors").exists()
    run_cli("train", *_args(tmp_path, hr, val, "s.safetensors", "--epochs", "1", "--patches-per-epoch", "800"),
            "--resume", tmp_path / "s.ckpt.safetensors", "--force", check=0)  # finishes epoch 1 from the checkpoint
    assert (tmp_path / "s.safetensors").exists()
