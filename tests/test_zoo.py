"""fetch-model against a real HTTP server on 127.0.0.1 (no other network)."""

import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import torch

from conftest import make_affine, phantom, run_cli, save_nifti
from mrsr_cli.models import ReCNN
from mrsr_cli.models.store import save_model


class Handler(BaseHTTPRequestHandler):
    payload = b""
    dropped: set = set()

    def log_message(self, *args):
        pass

    def do_GET(self):
        kind = self.path.strip("/").split("/")[0]
        if kind == "missing":
            self.send_error(404)
            return
        if kind == "slow":
            time.sleep(3)
        data = self.payload
        if kind == "wrong":
            data = data[:-1] + bytes([data[-1] ^ 1])
        if kind == "endless":  # more than the index declares: a server that never stops
            data = data + bytes(4 << 20)
        start = 0
        rng = self.headers.get("Range")
        if rng and kind != "norange":
            start = int(rng.split("=")[1].split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        body = data[start:]
        if kind == "drop" and self.path not in Handler.dropped:
            Handler.dropped.add(self.path)
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.connection.shutdown(2)
            return
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("models")
    path = save_model(folder / "tiny.safetensors", ReCNN(layers=2, filters=2),
                      {"name": "tiny", "version": "1.0", "architecture": "recnn", "normalization": {}})
    Handler.payload = path.read_bytes()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", hashlib.sha256(Handler.payload).hexdigest(), len(Handler.payload)
    httpd.shutdown()


def _index(tmp_path, server, kind="ok", name="tiny", sha=None):
    base, digest, size = server
    entry = {"name": name, "version": "1.0", "url": f"{base}/{kind}/tiny.safetensors", "sha256": sha or digest,
             "size": size, "description": "test", "license": "MIT", "scales": "2", "contrasts": ["T1w"]}
    path = tmp_path / f"index-{kind}.json"
    path.write_text(json.dumps({"schema": 1, "models": [entry]}))
    return path


def _env(tmp_path, **extra):
    return {"MRSR_HOME": str(tmp_path / "home"), "MRSR_MODEL_PATH": "", "MRSR_OFFLINE": "", **extra}


def test_success_and_list_and_verify(tmp_path, server):
    idx = _index(tmp_path, server)
    run_cli("fetch-model", "tiny", "--index", idx, env=_env(tmp_path), check=0)
    cached = tmp_path / "home" / "models" / "tiny.safetensors"
    assert hashlib.sha256(cached.read_bytes()).hexdigest() == server[1]
    rows = json.loads(run_cli("fetch-model", "--list", "--json", "--index", idx, env=_env(tmp_path), check=0).stdout)["models"]
    assert {"name": "tiny", "cached": True} .items() <= next(r for r in rows if r["name"] == "tiny").items()
    run_cli("fetch-model", "--verify", "--index", idx, env=_env(tmp_path), check=0)
    raw = bytearray(cached.read_bytes())
    raw[-1] ^= 0xFF
    cached.write_bytes(bytes(raw))
    proc = run_cli("fetch-model", "--verify", "--index", idx, env=_env(tmp_path))
    assert proc.returncode == 1 and "tampered" in proc.stderr and "tiny.safetensors" in proc.stderr


def test_checksum_mismatch_leaves_nothing(tmp_path, server):
    proc = run_cli("fetch-model", "tiny", "--index", _index(tmp_path, server, "wrong"), env=_env(tmp_path))
    assert proc.returncode == 1 and "checksum mismatch" in proc.stderr
    assert not list((tmp_path / "home" / "models").glob("*.safetensors*"))


def test_404_is_clear(tmp_path, server):
    proc = run_cli("fetch-model", "tiny", "--index", _index(tmp_path, server, "missing"), env=_env(tmp_path))
    assert proc.returncode == 1 and "HTTP 404" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_dropped_connection_resumes(tmp_path, server):
    run_cli("fetch-model", "tiny", "--index", _index(tmp_path, server, "drop"), env=_env(tmp_path), check=0)
    cached = tmp_path / "home" / "models" / "tiny.safetensors"
    assert hashlib.sha256(cached.read_bytes()).hexdigest() == server[1]


def test_slow_server_times_out(tmp_path, server):
    t0 = time.time()
    proc = run_cli("fetch-model", "tiny", "--index", _index(tmp_path, server, "slow"), "--timeout", "0.5", "--retries", "2",
                   env=_env(tmp_path))
    assert proc.returncode == 1 and "timed out" in proc.stderr and time.time() - t0 < 10
    assert not list((tmp_path / "home" / "models").glob("*.safetensors*"))


def test_four_processes_at_once(tmp_path, server):
    idx = _index(tmp_path, server)
    env = dict(os.environ, **_env(tmp_path))
    procs = [subprocess.Popen([sys.executable, "-m", "mrsr_cli.app.cli", "fetch-model", "tiny", "--index", str(idx)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(4)]
    codes = [p.wait(timeout=120) for p in procs]
    assert codes == [0, 0, 0, 0]
    files = list((tmp_path / "home" / "models").glob("*safetensors*"))
    assert [f.name for f in files] == ["tiny.safetensors"]
    assert hashlib.sha256(files[0].read_bytes()).hexdigest() == server[1]


def test_offline_fails_fast(tmp_path, server):
    t0 = time.time()
    proc = run_cli("fetch-model", "tiny", "--index", _index(tmp_path, server), env=_env(tmp_path, MRSR_OFFLINE="1"))
    assert proc.returncode == 1 and "MRSR_OFFLINE" in proc.stderr and "--dest" in proc.stderr
    assert time.time() - t0 < 5


def test_preseeded_dest_used_offline_by_upscale(tmp_path, server):
    seed_dir = tmp_path / "seed"
    run_cli("fetch-model", "--all", "--dest", seed_dir, "--index", _index(tmp_path, server), env=_env(tmp_path), check=0)
    assert (seed_dir / "tiny.safetensors").is_file()
    vol = save_nifti(tmp_path / "lr.nii.gz", phantom((12, 12, 12)), make_affine((2, 2, 2)))
    env = _env(tmp_path, MRSR_OFFLINE="1", MRSR_MODEL_PATH=str(seed_dir))
    env["MRSR_HOME"] = str(tmp_path / "empty-home")
    run_cli("upscale", vol, tmp_path / "sr.nii.gz", "--factor", "2", "--model", "tiny", env=env, check=0)
    side = json.loads((tmp_path / "sr.json").read_text())
    assert side["Model"] == "tiny" and side["ModelSha256"] == server[1]
    proc = run_cli("upscale", vol, tmp_path / "sr2.nii.gz", "--factor", "2", "--model", "absent", env=env)
    assert proc.returncode == 1 and "mrsr fetch-model absent" in proc.stderr


@pytest.mark.parametrize("name", ["../evil", "/etc/passwd", "a/b", "..", ".hidden"])
def test_path_traversal_names_refused(tmp_path, server, name):
    proc = run_cli("fetch-model", name, "--index", _index(tmp_path, server), env=_env(tmp_path))
    assert proc.returncode != 0
    idx = _index(tmp_path, server, name=name)
    proc = run_cli("fetch-model", "--all", "--index", idx, env=_env(tmp_path))
    assert proc.returncode != 0 and "invalid model name" in proc.stderr
    assert not (tmp_path / "evil.safetensors").exists()


def test_bad_index_entries(tmp_path, server):
    bad = _index(tmp_path, server, sha="xyz")
    proc = run_cli("fetch-model", "--list", "--index", bad, env=_env(tmp_path))
    assert proc.returncode == 1 and "invalid sha256" in proc.stderr
    (tmp_path / "v.json").write_text(json.dumps({"schema": 2, "models": []}))
    proc = run_cli("fetch-model", "--list", "--index", tmp_path / "v.json", env=_env(tmp_path))
    assert proc.returncode == 1 and "schema" in proc.stderr


def test_plain_http_refused_for_remote_hosts(tmp_path, server):
    base, digest, size = server
    (tmp_path / "r.json").write_text(json.dumps({"schema": 1, "models": [
        {"name": "far", "version": "1", "url": "http://example.invalid/x.safetensors", "sha256": digest, "size": size}]}))
    proc = run_cli("fetch-model", "far", "--index", tmp_path / "r.json", env=_env(tmp_path))
    assert proc.returncode == 1 and "refusing plain http" in proc.stderr


def test_a_download_longer_than_declared_is_cut_off(tmp_path, server):
    proc = run_cli("fetch-model", "tiny", "--index", _index(tmp_path, server, "endless"), env=_env(tmp_path))
    assert proc.returncode == 1 and "more than the" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not [p for p in (tmp_path / "home" / "models").iterdir() if "tiny" in p.name and p.suffix != ".lock"]


def test_a_cached_model_corrupted_after_download_is_refused(tmp_path, server):
    run_cli("fetch-model", "tiny", "--index", _index(tmp_path, server), env=_env(tmp_path), check=0)
    lr = save_nifti(tmp_path / "lr.nii.gz", phantom((12, 12, 12)), make_affine((2, 2, 2)))
    run_cli("upscale", lr, tmp_path / "ok.nii.gz", "--factor", "2", "--model", "tiny", env=_env(tmp_path), check=0)
    cached = tmp_path / "home" / "models" / "tiny.safetensors"
    raw = bytearray(cached.read_bytes())
    raw[-1] ^= 0x01  # one bit of one weight: the file still parses
    cached.write_bytes(bytes(raw))
    proc = run_cli("upscale", lr, tmp_path / "bad.nii.gz", "--factor", "2", "--model", "tiny", env=_env(tmp_path))
    assert proc.returncode == 1 and "no longer matches" in proc.stderr and not (tmp_path / "bad.nii.gz").exists()



def test_list_says_what_each_builtin_model_expects_and_its_licence():
    proc = run_cli("fetch-model", "--list", "--json", check=0)
    models = {m["name"]: m for m in json.loads(proc.stdout)["models"]}
    assert {"default", "guided", "psf-aware", "thick-slice", "low-field"} <= set(models)
    for name in ("default", "guided", "psf-aware", "thick-slice", "low-field"):
        card = models[name]
        assert card["architecture"].startswith("recnn 10×32") and "T1w" in card["expects"]
        assert "ICBM152 2009a" in card["training_data"] and "Louis Collins" in card["license"]
        assert "MIT" != card["license"]  # not the code's licence passed off as the weights'
    assert "--input-fwhm" in models["psf-aware"]["expects"] and "reference" in models["guided"]["expects"]
    text = run_cli("fetch-model", "--list", check=0).stdout
    assert "(1,1,6)" in models["thick-slice"]["expects"] and "1.5 T" in models["low-field"]["expects"]
    assert text.count("licence: ") >= 5 and text.count("expects: ") >= 5
