"""Recipes as data: TOML files, command-line overrides, and the recipe stored in a model."""

import json
from dataclasses import asdict
from pathlib import Path

import pytest

from conftest import ROOT, make_affine, phantom, run_cli, save_nifti
from mrsr_cli.training.config import RUN_LOCAL_FIELDS, TrainConfig

RECIPES = ROOT / "share" / "recipes"


def dry_run(*args) -> dict:
    proc = run_cli("train", *args, "--dry-run", "--json", check=0)
    return json.loads(proc.stdout)


def comparable(recipe: dict, keys) -> dict:
    """The recipe on ``keys``, with image paths reduced to file names (models keep names only)."""
    out = {}
    for key in keys:
        value = recipe[key]
        if key in ("inputs", "val") and value:
            value = [Path(p).name for p in value]
        out[key] = value
    return out


@pytest.mark.parametrize("toml, model, differs", [("default-stage3.toml", "default", set()),
                                                  ("guided.toml", "guided", {"init_from"}),
                                                  ("psf-aware.toml", "psf-aware", set())])
def test_shipped_recipes_are_the_recipes_stored_in_the_shipped_models(toml, model, differs):
    from_file = dry_run("--config", RECIPES / toml)
    from_model = dry_run("--config-from", model)
    assert set(from_file) == set(from_model)
    # what a model records: every recipe field except the paths of references and tissue maps
    keys = set(from_file) - set(RUN_LOCAL_FIELDS) - {"references", "tissue_maps"} - differs
    assert comparable(from_file, keys) == comparable(from_model, keys)
    assert from_model["arch_params"] == {"layers": 10, "filters": 32, "kernel": 3, "residual": True}
    if differs:  # the guided model's starting point was `default` when it was trained (see guided.toml)
        assert from_model["init_from"] == "default" and "M24" in from_file["init_from"]


@pytest.mark.slow  # seconds to minutes of training or a subprocess fleet: make test-slow
def test_every_stage_recipe_resolves_and_the_readme_runs_each():
    readme = (ROOT / "share" / "models" / "README.md").read_text()
    for toml in sorted(RECIPES.glob("*.toml")):
        recipe = dry_run("--config", toml)
        assert recipe["inputs"] and recipe["output"].endswith(".safetensors")
        assert f"mrsr train --config share/recipes/{toml.name}" in readme


def test_flags_typed_override_the_file_and_nothing_else(tmp_path):
    base = dry_run("--config", RECIPES / "default-stage3.toml")
    over = dry_run("--config", RECIPES / "default-stage3.toml", "--epochs", "2", "--layers", "4", "--scales", "2;1,1,4",
                   "-o", tmp_path / "x.safetensors")
    assert over["epochs"] == 2 and over["scales"] == [[2.0] * 3, [1.0, 1.0, 4.0]]
    assert over["arch_params"] == {**base["arch_params"], "layers": 4}
    assert over["output"] == str(tmp_path / "x.safetensors")
    changed = {k for k in base if base[k] != over[k]}
    assert changed == {"epochs", "scales", "arch_params", "output"}


def test_option_defaults_are_the_config_defaults():
    """Without a recipe, the typed-or-default options give TrainConfig's own defaults."""
    assert dry_run() == asdict(TrainConfig.from_dict({}, require_paths=False))


@pytest.mark.parametrize("content, message", [("epochz = 3\n", "unknown training setting 'epochz'"),
                                              ("epochs = [\n", "cannot read recipe"),
                                              ("arch_params = { blocks = 3 }\n", "no parameter 'blocks'"),
                                              ("loss = 'l1+nope'\n", "unknown loss term 'nope'")])
def test_bad_recipes_are_one_line_usage_errors(tmp_path, content, message):
    toml = tmp_path / "r.toml"
    toml.write_text(content)
    proc = run_cli("train", "--config", toml, "--dry-run")
    assert proc.returncode == 2 and message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_a_trained_model_gives_back_the_recipe_it_was_trained_with(tmp_path):
    hr = save_nifti(tmp_path / "hr.nii.gz", phantom((28, 28, 28), seed=3), make_affine())
    toml = tmp_path / "tiny.toml"
    toml.write_text(f'inputs = ["{hr}"]\narch_params = {{ layers = 2, filters = 2 }}\npatch = 8\nbatch = 2\n'
                    f'patches_per_epoch = 4\nepochs = 1\nloss = "psnr+0.5*l1"\nseed = 5\nprecision = "fp32"\n')
    out = tmp_path / "tiny.safetensors"
    run_cli("train", "--config", toml, "-o", out, "--device", "cpu", "-q", check=0)
    recipe = dry_run("--config", toml)
    stored = dry_run("--config-from", out)
    keys = set(recipe) - set(RUN_LOCAL_FIELDS) - {"device"}
    assert comparable(stored, keys) == comparable(recipe, keys)
    assert stored["loss"] == "psnr+0.5*l1" and stored["arch_params"]["layers"] == 2
    # every loss term is logged on its own
    records = [json.loads(line) for line in (tmp_path / "tiny.log.jsonl").read_text().splitlines()]
    assert all(set(r["loss_terms"]) == {"psnr", "l1"} for r in records if "loss" in r)
