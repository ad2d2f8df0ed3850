"""Training recipes as data: TOML files, command-line overrides, and the recipe inside a model.

A recipe is a TOML file whose keys are the fields of :class:`mrsr_cli.training.config.TrainConfig` in
their resolved form (factor lists, not strings)::

    inputs = [".data/icbm152_2009a_t1.nii.gz"]
    arch = "recnn"
    arch_params = { layers = 10, filters = 32 }
    scales = [[2.0, 2.0, 2.0], [2.0, 2.0, 3.0]]
    lr_decay = [0.5, 6]
    loss = "psnr"

Relative paths in a recipe are relative to the working directory, like the command line's.
``mrsr train --config R.toml [flags]`` starts from the defaults, applies the recipe, then the
flags actually typed (:func:`resolve_train_config`).  ``mrsr train --config-from MODEL``
starts from the recipe stored in a model's metadata (:func:`recipe_from_metadata`), so
``--dry-run --json`` shows how any model was made, in the same form.

Example::

    >>> fields_from_options({"scales": "2,2,2;1,1,4", "lr_decay": "0.5@6", "layers": 4})
    {'scales': [[2.0, 2.0, 2.0], [1.0, 1.0, 4.0]], 'lr_decay': [0.5, 6], 'arch_params': {'layers': 4}}
"""

from __future__ import annotations

import json
from pathlib import Path

from mrsr_cli.errors import MrsrError, UsageError

# Command-line options that are shortcuts for architecture parameters.
ARCH_SHORTCUTS = ("layers", "filters", "kernel")
# Renamed since the first models were written: old metadata keys → TrainConfig fields.
LEGACY_ARCH_KEYS = ("layers", "filters", "kernel", "residual")


def load_recipe(path) -> dict:
    """The settings of a TOML recipe file (a one-line error for a missing or malformed file)."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib

    path = Path(path)
    if not path.is_file():
        raise MrsrError(f"recipe file not found: {path}")
    try:
        return tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read recipe {path}: {exc}") from None


def _factor_list(text: str, what: str) -> list:
    from mrsr_cli.data.geometry import parse_factor

    return [list(parse_factor(s, what)) for s in str(text).split(";") if s.strip()]


def _literal(text: str):
    """``4`` → 4, ``0.1`` → 0.1, ``true`` → True, anything else the string itself."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _lo_hi(value, message: str) -> list:
    """``"1.5:4"`` → ``[1.5, 4.0]``; a :class:`UsageError` ``message, got 'value'`` otherwise."""
    try:
        pair = [float(v) for v in str(value).split(":")]
    except ValueError:
        pair = []
    if len(pair) != 2:
        raise UsageError(f"{message}, got {value!r}")
    return pair


def fields_from_options(options: dict) -> dict:
    """Recipe fields from command-line option values (only the options given)."""
    out: dict = {}
    arch_params: dict = {}
    for key, value in options.items():
        if key == "in_files":
            if value:  # an empty argument list leaves a recipe's inputs alone
                out["inputs"] = [str(p) for p in value]
        elif key in ("reference", "tissue_maps", "val"):
            out[{"reference": "references"}.get(key, key)] = [str(p) for p in value] if value else None
        elif key in ("pairs", "val_pairs"):
            from mrsr_cli.training.pairs import read_pairs

            out[key] = read_pairs(value) if value else None
        elif key == "scales":
            out["scales"] = _factor_list(value, "--scales")
        elif key == "val_factor":
            out["val_factors"] = _factor_list(value, "--val-factor") or [[2.0, 2.0, 2.0]]
        elif key == "scale_range":
            out["scale_range"] = _lo_hi(value, "--scale-range must be LO:HI")
        elif key == "voxel_size_range":
            out["voxel_size_range"] = _lo_hi(value, "--voxel-size-range must be LO:HI in mm")
        elif key == "lr_decay":
            try:
                gamma, every = str(value).split("@")
                out["lr_decay"] = [float(gamma), int(every)]
            except ValueError:
                raise UsageError(f"--lr-decay must be GAMMA@EPOCHS, e.g. 0.5@4, got {value!r}") from None
        elif key == "augment":
            out["augment"] = [a for a in str(value).split(",") if a]
        elif key in ARCH_SHORTCUTS:
            arch_params[key] = value
        elif key == "no_residual":
            arch_params["residual"] = not value
        elif key == "arch_param":
            for item in value or []:
                name, sep, raw = str(item).partition("=")
                if not sep or not name:
                    raise UsageError(f"--arch-param must be KEY=VALUE, got {item!r}")
                arch_params[name.strip().replace("-", "_")] = _literal(raw.strip())
        elif key in ("output", "checkpoint", "resume", "log_file"):
            out[key] = str(value) if value is not None else None
        else:
            out[key] = value
    if arch_params:
        out["arch_params"] = arch_params
    return out


def recipe_from_metadata(meta: dict) -> dict:
    """The recipe stored in a model's metadata (``training``), in :class:`TrainConfig` form.

    Models keep the names of their training and validation images (``data``,
    ``validation``), not their paths; those names become ``inputs`` and ``val``.  Models written
    before ``arch_params`` existed stored ``layers``/``filters``/``kernel``/``residual`` at the top.
    """
    from dataclasses import fields as dc_fields

    from mrsr_cli.training.config import RUN_LOCAL_FIELDS, TrainConfig

    training = dict(meta.get("training") or {})
    if not training:
        raise MrsrError(f"model {meta.get('name', '?')} has no training record in its metadata")
    arch_params = dict(training.pop("arch_params", {}) or {})
    for key in LEGACY_ARCH_KEYS:
        if key in training:
            arch_params[key] = training.pop(key)
    known = {f.name for f in dc_fields(TrainConfig)} - set(RUN_LOCAL_FIELDS)
    recipe = {k: v for k, v in training.items() if k in known}
    recipe["arch"] = meta.get("architecture", recipe.get("arch", "recnn"))
    recipe["arch_params"] = arch_params
    recipe["inputs"] = [d["file"] for d in training.get("data", [])]
    recipe["val"] = list(training.get("validation", [])) or None
    return recipe


def resolve_train_config(*, given: dict, config: Path | None = None, config_from: str | None = None, dry_run: bool = False):
    """Defaults ← recipe (``config`` file or the model ``config_from``) ← ``given`` options.

    ``given``: the command-line options actually typed (name → value).  Returns a validated
    :class:`~mrsr_cli.training.config.TrainConfig` (``dry_run``: images and output may be missing).
    """
    from mrsr_cli.training.config import TrainConfig

    if config is not None and config_from is not None:
        raise UsageError("give --config or --config-from, not both")
    values: dict = {}
    if config is not None:
        values.update(load_recipe(config))
    elif config_from is not None:
        from mrsr_cli.models.store import read_header
        from mrsr_cli.models.zoo import resolve_model

        path, _ = resolve_model(config_from)
        values.update(recipe_from_metadata(read_header(path)[0]))
    overrides = fields_from_options(given)
    if "arch_params" in overrides:
        same_arch = overrides.get("arch", values.get("arch")) == values.get("arch")
        overrides["arch_params"] = {**(values.get("arch_params", {}) if same_arch else {}), **overrides["arch_params"]}
    values.update(overrides)
    return TrainConfig.from_dict(values, require_paths=not dry_run)
