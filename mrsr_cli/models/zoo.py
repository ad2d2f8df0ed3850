"""Model registry: name resolution, the shared cache, checksummed downloads.

Resolution order for ``--model X`` (upscale, train --init-from, Nipype):

1. ``X`` is a path to an existing file (or contains a path separator / ends in .safetensors);
2. ``<dir>/X.safetensors`` for each read-only dir in ``MRSR_MODEL_PATH`` (``:``-separated);
3. ``$MRSR_HOME/models/X.safetensors`` (``MRSR_HOME`` defaults to the platform user cache,
   e.g. ``~/.cache/mrsr``);
4. the builtin models shipped in the package (``default``, ``guided``, ``psf-aware``);
5. otherwise an error telling which ``mrsr fetch-model`` command to run — nothing but
   ``fetch-model`` ever downloads.
"""

from __future__ import annotations

import os
import re
from importlib import resources
from pathlib import Path

from mrsr_cli.errors import MrsrError, UsageError

BUILTIN = {
    "default": "mrsr-recnn-t1w.safetensors",
    "guided": "mrsr-recnn-guided.safetensors",
    "psf-aware": "mrsr-recnn-t1w-psf.safetensors",  # reads upscale --input-fwhm/--input-psf
    "thick-slice": "mrsr-recnn-t1w-thick.safetensors",  # clinical thick slices, (1,1,3)-(1,1,6)
    "low-field": "mrsr-recnn-t1w-lowfield.safetensors",  # a 1.5 T scan to 3 T contrast at x2
}
# What `fetch-model --list` says of each builtin model beyond its metadata: what it expects, what it learned
# from, and the terms its weights come with (they are derived from the templates they were trained on).
_MNI_NOTICE = ("weights derived from MNI ICBM152 2009a (Copyright 1993-2009 Louis Collins, McConnell Brain Imaging "
               "Centre, MNI, McGill University: use, copy, modify and distribute with that notice) and MNI152NLin6Asym "
               "(as FSL and TemplateFlow distribute it, under their terms); mrsr's code is MIT")
BUILTIN_CARDS = {
    "default": {"expects": "T1w; PSF of mrsr simulate (Gaussian, FWHM = input voxel); factors 1-5 per axis",
                "training_data": "MNI ICBM152 2009a T1 + left half of MNI152NLin6Asym T1 (1 mm)",
                "license": _MNI_NOTICE},
    "guided": {"expects": "T1w + a registered HR reference of any contrast; mrsr simulate's PSF; factors 1-4",
               "training_data": "MNI ICBM152 2009a T1 + MNI152NLin6Asym T1 with synthetic references",
               "license": _MNI_NOTICE},
    "thick-slice": {"expects": "T1w with thick slices along one axis: factors (1,1,3)-(1,1,6), slice profile "
                                "Gaussian of FWHM = spacing (mrsr simulate's)",
                    "training_data": "MNI ICBM152 2009a T1 + left half of MNI152NLin6Asym T1 (1 mm)",
                    "license": _MNI_NOTICE},
    "low-field": {"expects": "T1w from a 1.5 T scan (low-field contrast and SNR), factor 2; writes 3 T-like contrast",
                  "training_data": "the central quarter of MNI ICBM152 2009a and of the left half of MNI152NLin6Asym, "
                                   "with ICBM152 2009a GM/WM maps for the contrast change",
                  "license": _MNI_NOTICE},
    "psf-aware": {"expects": "T1w; the PSF told by --input-fwhm/--input-psf (Gaussian, box, sinc, or kspace: a scanner's "
                             "acquisition; upscale picks this model when told one); factors 1-5",
                  "training_data": "ICBM152 2009a, MNI152NLin6Asym (left half), deepmriprep 0.5 mm template (left half), "
                                   "ROBEX atlas",
                  "license": _MNI_NOTICE + "; also the deepmriprep template's and the ROBEX atlas's terms"},
}
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def validate_name(name: str) -> str:
    """Model names are plain file-name stems: no '/', no '..', nothing absolute."""
    if not NAME_RE.match(name or "") or ".." in name:
        raise UsageError(f"invalid model name {name!r} (letters, digits, '.', '_', '-'; no paths)")
    return name


def mrsr_home() -> Path:
    """The writable user cache (``MRSR_HOME`` or the platform user cache dir)."""
    env = os.environ.get("MRSR_HOME")
    if env:
        return Path(env)
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("mrsr", appauthor=False))


def search_dirs() -> list[Path]:
    return [Path(p) for p in os.environ.get("MRSR_MODEL_PATH", "").split(os.pathsep) if p]


def builtin_path(name: str) -> Path | None:
    if name not in BUILTIN:
        return None
    path = Path(str(resources.files("mrsr_cli") / "assets" / "models" / BUILTIN[name]))
    return path if path.exists() else None


def resolve_model(model: str | None, guided: bool = False) -> tuple[Path, str]:
    """``(path, display name)`` for a model name or path, following the resolution order."""
    if model is None:
        model = "guided" if guided else "default"
    candidate = Path(model).expanduser()
    if candidate.is_file():
        return candidate, candidate.name
    if os.sep in model or "/" in model or model.endswith(".safetensors"):
        raise MrsrError(f"model file not found: {model}")
    name = validate_name(model)
    for folder in search_dirs() + [mrsr_home() / "models"]:
        path = folder / f"{name}.safetensors"
        if path.is_file():
            return check_cached(path), name
    path = builtin_path(name)
    if path is not None:
        return path, name
    raise MrsrError(f"model {name!r} is not available locally; download it with: mrsr fetch-model {name}")


# ----------------------------------------------------------------------------- the index
DEFAULT_INDEX = "assets/index.json"
HEX64 = re.compile(r"^[0-9a-f]{64}$")
OFFLINE_HELP = ("network access is disabled (MRSR_OFFLINE=1). On a machine with internet run "
                "'mrsr fetch-model --all --dest DIR', copy DIR here and set MRSR_MODEL_PATH=DIR")


def offline() -> bool:
    return os.environ.get("MRSR_OFFLINE", "").lower() not in ("", "0", "false", "no")


def validate_entry(entry: dict, where: str) -> dict:
    """Check one index entry (name, version, url, sha256, size, optional text fields)."""
    if not isinstance(entry, dict):
        raise MrsrError(f"{where}: each model entry must be an object")
    for key, kind in (("name", str), ("version", str), ("url", str), ("sha256", str), ("size", int)):
        if not isinstance(entry.get(key), kind) or isinstance(entry.get(key), bool):
            raise MrsrError(f"{where}: model entry {entry.get('name', '?')!r} needs {key} ({kind.__name__})")
    validate_name(entry["name"])
    if not HEX64.match(entry["sha256"]):
        raise MrsrError(f"{where}: model {entry['name']!r} has an invalid sha256 (64 lowercase hex digits)")
    if entry["size"] <= 0 or entry["size"] > 20 * 1024**3:
        raise MrsrError(f"{where}: model {entry['name']!r} has an invalid size {entry['size']}")
    scheme = entry["url"].split(":", 1)[0].lower()
    if scheme not in ("http", "https", "file", "builtin"):
        raise MrsrError(f"{where}: model {entry['name']!r} has an unsupported url scheme {scheme!r}")
    contrasts = entry.get("contrasts", [])
    if not isinstance(contrasts, list) or not all(isinstance(c, str) for c in contrasts):
        raise MrsrError(f"{where}: model {entry['name']!r}: contrasts must be a list of strings")
    return entry


def architecture_summary(meta: dict) -> str:
    """``recnn 10×32, 3³, receptive field 21³`` from a model's metadata."""
    p = meta.get("params", {})
    size = f" {p['layers']}×{p['filters']}" if "layers" in p else (f" {p['blocks']} blocks×{p['filters']}" if "blocks" in p else "")
    field = f", receptive field {meta['receptive_field']}³" if "receptive_field" in meta else ""
    return f"{meta.get('architecture', '?')}{size}{field}"


def builtin_entries() -> list[dict]:
    """Index entries for the models shipped in the package (no download)."""
    from mrsr_cli.models.store import read_header, sha256_file

    entries = []
    for name in BUILTIN:
        path = builtin_path(name)
        if path is None:
            continue
        meta, _ = read_header(path)
        entries.append({"name": name, "version": str(meta.get("version", "")), "url": f"builtin:{path.name}",
                        "sha256": sha256_file(path), "size": path.stat().st_size,
                        "description": meta.get("description", f"builtin {meta['architecture']} model"),
                        "architecture": architecture_summary(meta), "scales": meta.get("scales", ""),
                        "contrasts": meta.get("contrasts", []), **BUILTIN_CARDS.get(name, {})})
    return entries


def load_index(source: str | None = None, timeout: float = 30.0) -> tuple[list[dict], str]:
    """``(entries, where)``: builtin models plus the index at ``source`` / MRSR_MODEL_INDEX / default."""
    import json

    source = source or os.environ.get("MRSR_MODEL_INDEX")
    if source is None:
        text = (resources.files("mrsr_cli") / DEFAULT_INDEX).read_text()
        where = "builtin index"
    elif re.match(r"^(https?|file)://", source):
        text = _read_url(source, timeout=timeout).decode("utf-8", "replace")
        where = source
    else:
        path = Path(source)
        if not path.is_file():
            raise MrsrError(f"model index not found: {source}")
        from mrsr_cli.data.io import read_text

        text, where = read_text(path, "model index"), str(path)
    try:
        index = json.loads(text)
    except ValueError:
        raise MrsrError(f"{where} is not valid JSON") from None
    if not isinstance(index, dict) or index.get("schema") != 1 or not isinstance(index.get("models"), list):
        raise MrsrError(f'{where}: expected {{"schema": 1, "models": [...]}}')
    entries = {e["name"]: e for e in builtin_entries()}
    for entry in index["models"]:
        entries[validate_entry(entry, where)["name"]] = entry
    return list(entries.values()), where


# ----------------------------------------------------------------------------- downloads
def _check_url_allowed(url: str, allow_insecure: bool) -> None:
    from urllib.parse import urlparse

    parsed = urlparse(url)
    if parsed.scheme == "http" and not allow_insecure:
        host = (parsed.hostname or "").lower()
        if not (host == "localhost" or host.startswith("127.") or host == "::1"):
            raise MrsrError(f"refusing plain http to {host}: use https, or --allow-insecure if you trust the network")


def _read_url(url: str, timeout: float) -> bytes:
    """Small reads (index files); same offline and scheme rules as model downloads."""
    import urllib.request

    if url.startswith("file://"):
        from urllib.parse import unquote, urlparse

        return Path(unquote(urlparse(url).path)).read_bytes()
    if offline():
        raise MrsrError(OFFLINE_HELP)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.read()
    except Exception as exc:
        raise MrsrError(f"cannot read {url}: {exc}") from None


def download(entry: dict, dest: Path, *, timeout: float = 30.0, retries: int = 3, allow_insecure: bool = False,
             progress: bool = True, force: bool = False) -> Path:
    """Fetch one model into ``dest`` (checksummed, resumable, locked against concurrent fetches)."""
    from filelock import FileLock

    from mrsr_cli.models.store import read_header, sha256_file

    name = validate_name(entry["name"])
    dest.mkdir(parents=True, exist_ok=True)
    final = dest / f"{name}.safetensors"
    with FileLock(str(dest / f".{name}.lock")):
        if final.exists() and not force and sha256_file(final) == entry["sha256"]:
            return final  # already here (perhaps fetched by a concurrent job)
        part = dest / f".{name}.safetensors.part"
        url = entry["url"]
        if url.startswith("builtin:"):
            import shutil

            shutil.copyfile(resolve_model(name)[0], part)
        else:
            _download(url, part, entry["size"], timeout=timeout, retries=retries, allow_insecure=allow_insecure,
                      progress=progress, label=name)
        digest = sha256_file(part)
        if digest != entry["sha256"]:
            part.unlink(missing_ok=True)
            raise MrsrError(f"checksum mismatch for {name}: expected {entry['sha256'][:12]}..., got {digest[:12]}...; file deleted")
        try:
            read_header(part)
        except MrsrError as exc:
            part.unlink(missing_ok=True)
            raise MrsrError(f"{name}: downloaded file is not a valid mrsr model ({exc})") from None
        os.chmod(part, 0o644)
        os.replace(part, final)
        digest_file(final).write_text(digest + "\n")  # checked each time the cached model is used
    return final


def digest_file(model: Path) -> Path:
    """The file beside a fetched model that records its sha256 as verified at download."""
    return model.with_name(f".{model.stem}.sha256")


def check_cached(path: Path) -> Path:
    """``path`` unchanged if no digest was recorded for it or its bytes still match it (1 MB: cheap),
    else :class:`MrsrError`: a cached model corrupted after its download is never used."""
    from mrsr_cli.models.store import sha256_file

    record = digest_file(path)
    if record.is_file() and sha256_file(path) != record.read_text().strip():
        raise MrsrError(f"cached model {path} no longer matches the sha256 recorded when it was fetched (corrupt or "
                        f"modified); delete it and run mrsr fetch-model again")
    return path


def _download(url: str, part: Path, size: int, *, timeout: float, retries: int, allow_insecure: bool,
              progress: bool, label: str) -> None:
    """Stream ``url`` into ``part``, resuming with HTTP Range after a dropped connection."""
    import http.client
    import time
    import urllib.error
    import urllib.request
    from urllib.parse import unquote, urlparse

    if url.startswith("file://"):
        import shutil

        src = Path(unquote(urlparse(url).path))
        if not src.is_file():
            raise MrsrError(f"download failed: {src} does not exist")
        shutil.copyfile(src, part)
        return
    if offline():
        raise MrsrError(OFFLINE_HELP)
    _check_url_allowed(url, allow_insecure)
    from rich.progress import DownloadColumn, TransferSpeedColumn

    from mrsr_cli.console import ProgressBar

    bar = ProgressBar(label, size, DownloadColumn(), TransferSpeedColumn(), enabled=progress)
    last_error = "unknown error"
    try:
        for attempt in range(max(1, retries)):
            have = part.stat().st_size if part.exists() else 0
            if have >= size:
                part.unlink()
                have = 0
            request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
            try:
                with urllib.request.urlopen(request, timeout=timeout) as resp:
                    if have and resp.status != 206:  # server ignored Range: start over
                        have = 0
                    with open(part, "ab" if have else "wb") as fh:
                        bar.update(completed=have)
                        while True:
                            chunk = resp.read(1 << 16)
                            if not chunk:
                                break
                            if have + len(chunk) > size:  # a server that sends more than declared is cut off
                                fh.close()
                                part.unlink(missing_ok=True)
                                raise MrsrError(f"download failed: {url} sends more than the {size} bytes the index "
                                                f"declares; file deleted")
                            fh.write(chunk)
                            have += len(chunk)
                            bar.update(completed=have)
                if have == size:
                    return
                last_error = f"connection closed after {have} of {size} bytes"
            except urllib.error.HTTPError as exc:
                if 400 <= exc.code < 500 and exc.code not in (408, 429):
                    part.unlink(missing_ok=True)
                    raise MrsrError(f"download failed: HTTP {exc.code} {exc.reason} for {url}") from None
                last_error = f"HTTP {exc.code} {exc.reason}"
            except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
                reason = getattr(exc, "reason", exc)
                last_error = "timed out" if "timed out" in str(reason) else str(reason)
            if attempt + 1 < retries:
                time.sleep(min(0.5 * 2**attempt, 8.0))
        part.unlink(missing_ok=True)
        raise MrsrError(f"download failed after {retries} attempts: {last_error} ({url})")
    finally:
        bar.close()


# ----------------------------------------------------------------------------- the command
_CARD_LINES = (("architecture", "architecture"), ("expects", "expects"), ("training_data", "trained on"),
               ("license", "licence"))

def cached_location(name: str) -> Path | None:
    for folder in search_dirs() + [mrsr_home() / "models"]:
        path = folder / f"{name}.safetensors"
        if path.is_file():
            return path
    return builtin_path(name)


def fetch_command(names, *, index=None, list_models=False, all_models=False, dest=None, verify=False,
                  allow_insecure=False, timeout=30.0, retries=3, force=False, progress=True) -> dict:
    """Behind ``mrsr fetch-model``: list, verify, fetch names or all; returns a report dict."""
    from mrsr_cli.models.store import sha256_file
    from mrsr_cli.values import check_number

    check_number(timeout, "--timeout", lo=0, lo_open=True, unit="s")
    check_number(retries, "--retries", lo=1, integer=True)
    modes = sum([bool(list_models), bool(verify), bool(all_models or names)])
    if modes != 1:
        raise UsageError("give model NAME(s), --all, --list or --verify (one of them)")
    if all_models and names:
        raise UsageError("give model names or --all, not both")
    entries, where = load_index(index, timeout=timeout)
    by_name = {e["name"]: e for e in entries}
    if list_models:
        rows = []
        for e in entries:
            loc = cached_location(e["name"])
            rows.append({"name": e["name"], "version": e["version"], "size": e["size"], "cached": loc is not None,
                         "where": str(loc) if loc else None, "description": e.get("description", ""),
                         **{k: e[k] for k in ("architecture", "expects", "training_data", "license") if k in e}})
        text = "\n".join(f"{r['name']:<24} {r['version']:<10} {r['size'] / 1e6:8.2f} MB  "
                         f"{'cached: ' + r['where'] if r['cached'] else 'not cached'}"
                         + "".join(f"\n    {label}: {r[key]}" for key, label in _CARD_LINES if r.get(key)) for r in rows)
        return {"index": where, "models": rows, "text": text or "no models in the index"}
    if verify:
        folder = Path(dest) if dest else mrsr_home() / "models"
        results, bad = [], []
        for e in entries:
            path = folder / f"{e['name']}.safetensors"
            if not path.is_file():
                continue
            ok = sha256_file(path) == e["sha256"]
            results.append({"name": e["name"], "path": str(path), "ok": ok})
            if not ok:
                bad.append(str(path))
        if bad:
            raise MrsrError(f"checksum mismatch (tampered or corrupt): {', '.join(bad)}; delete and fetch again")
        return {"verified": results, "text": f"{len(results)} cached model(s) verified in {folder}"}
    if all_models:
        wanted = [e for e in entries]
    else:
        missing = [n for n in names if validate_name(n) not in by_name]
        if missing:
            raise MrsrError(f"not in {where}: {', '.join(missing)} (see mrsr fetch-model --list)")
        wanted = [by_name[n] for n in names]
    folder = Path(dest) if dest else mrsr_home() / "models"
    fetched = []
    for e in wanted:
        if e["url"].startswith("builtin:") and dest is None:
            fetched.append({"name": e["name"], "path": str(builtin_path(e["name"])), "builtin": True})
            continue
        path = download(e, folder, timeout=timeout, retries=retries, allow_insecure=allow_insecure,
                        progress=progress, force=force)
        fetched.append({"name": e["name"], "path": str(path), "sha256": e["sha256"]})
    return {"fetched": fetched, "text": "\n".join(f"{f['name']}: {f['path']}" for f in fetched)}
