"""The option table (mrsr_cli/app/options.py) drives the CLI, the Nipype traits and docs/cli.md,
and agrees with the library's own constants and defaults."""

import dataclasses

import pytest
import typer
from typer.testing import CliRunner

from conftest import ROOT
from mrsr_cli.app import options as table


def test_docs_cli_md_blocks_are_generated_from_the_table():
    text = (ROOT / "docs" / "cli.md").read_text()
    for command in table.COMMANDS:
        assert f"<!-- options: {command} " in text, f"docs/cli.md has no generated option block for {command}"
    assert table.rewrite_docs(text) == text, "docs/cli.md is stale: run python -m mrsr_cli.app.options docs/cli.md"


def test_a_changed_help_text_reaches_the_cli_nipype_and_the_docs():
    new_help = "Zebra-striped help text that exists nowhere else."
    rows = [dataclasses.replace(row, help=new_help) if row.name == "order" else row for row in table.COMMANDS["upscale"]]
    # the CLI, built from the changed rows
    from mrsr_cli.app.cli import command

    scratch = typer.Typer(rich_markup_mode=None, pretty_exceptions_enable=False)

    @command("upscale", "Scratch copy.", rows=rows, target=scratch)
    def upscale_copy(ctx, **options):
        pass

    @scratch.command("other")  # two commands, so that typer keeps the subcommand name
    def other():
        pass

    result = CliRunner().invoke(scratch, ["upscale", "--help"])
    assert new_help in " ".join(result.output.split())
    # the Nipype trait's description
    assert table.input_traits("upscale", rows)["order"].desc == new_help
    # the docs' line
    assert f"| {new_help} |" in table.docs_block("upscale", rows)
    # and the real command has the real text
    assert new_help not in table.docs_block("upscale")


def test_a_new_upscale_option_reaches_the_method_without_a_second_list():
    assert table.method_options({"order": 3, "model": None, "device": "auto"}) == ["order", "model"]
    assert {o.name for o in table.UPSCALE if o.to_method} == {
        "order", "model", "reference", "register", "guidance", "input_fwhm", "input_psf", "consistency", "ensemble",
        "mask", "safety_net", "adapt", "seed", "lrtv_iterations", "lrtv_lambda_tv", "lrtv_lambda_rank"}


def test_choices_and_ranges_are_the_library_s():
    from mrsr_cli.degrade.observation import PSFS
    from mrsr_cli.infer.device import PRECISIONS
    from mrsr_cli.infer.tiling import ENSEMBLE_SIZES
    from mrsr_cli.methods import METHODS
    from mrsr_cli.methods.guidance import GUIDANCE_MODES
    from mrsr_cli.methods.lrtv import MAX_LAMBDA, MAX_LRTV_ITERATIONS
    from mrsr_cli.models import ARCHITECTURES
    from mrsr_cli.models.channels import REFERENCE_ENCODINGS
    from mrsr_cli.training import config

    assert table.PSF_SHAPES == tuple(PSFS)
    assert table.option("upscale", "method").choices == tuple(METHODS)
    assert table.option("upscale", "precision").choices == PRECISIONS
    assert table.option("upscale", "ensemble").choices == ENSEMBLE_SIZES
    assert set(table.option("upscale", "guidance").choices) == set(GUIDANCE_MODES)
    assert table.option("upscale", "lrtv_iterations").range == (1, MAX_LRTV_ITERATIONS)
    assert table.option("upscale", "lrtv_lambda_tv").range == table.option("upscale", "lrtv_lambda_rank").range == (0.0, MAX_LAMBDA)
    assert table.option("train", "arch").choices == tuple(ARCHITECTURES)
    assert table.option("train", "precision").choices == config.PRECISIONS
    assert table.option("train", "reference_encoding").choices == REFERENCE_ENCODINGS
    assert table.option("train", "degradation").choices == config.DEGRADATIONS
    from mrsr_cli.degrade.kspace import WINDOWS
    from mrsr_cli.degrade.simulate import ACQUISITIONS

    assert table.option("simulate", "acquisition").choices == tuple(ACQUISITIONS)
    assert table.option("simulate", "window").choices == tuple(WINDOWS)


def test_the_spline_order_range_is_the_method_s():
    from mrsr_cli.errors import UsageError
    from mrsr_cli.methods.spline import spline

    lo, hi = table.option("upscale", "order").range
    for bad in (lo - 1, hi + 1):
        with pytest.raises(UsageError, match="--order"):
            spline(None, None, order=bad)


def test_train_defaults_are_train_config_s():
    """The CLI's defaults are TrainConfig's, in the CLI's form (a recipe and the flags must agree)."""
    from mrsr_cli.training.config import TrainConfig
    from mrsr_cli.training.recipes import fields_from_options

    defaults = {f.name: (f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default)
                for f in dataclasses.fields(TrainConfig)}
    typed = {row.name: row.default for row in table.TRAIN if row.default is not None and row.name not in table.PROCESS
             and row.name not in ("dry_run", "no_residual")}
    as_fields = fields_from_options(typed)
    for key, value in as_fields.items():
        assert key in defaults, key
        assert value == defaults[key], (key, value, defaults[key])
    assert "arch_params" not in as_fields  # no architecture default is set by the CLI


def test_every_row_is_well_formed():
    for command, rows in table.COMMANDS.items():
        names = [r.name for r in rows]
        assert len(names) == len(set(names)), command
        for row in rows:
            assert row.help.endswith((".", ")")), (command, row.name)
            if row.choices is not None and row.default is not None:
                assert row.default in row.choices, (command, row.name)
