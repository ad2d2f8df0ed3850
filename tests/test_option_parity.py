"""One option surface: every CLI option has a Nipype trait and a line in docs/cli.md, and back.

Documented exclusions (they shape the process, not the work a Nipype node does, and docs/cli.md
lists them once for all subcommands): --help, -v, -q, --debug, --json, --force.
"""

import re

import pytest
import typer

from conftest import ROOT
from mrsr_cli.app import interfaces as ifaces
from mrsr_cli.app.cli import app

EXCLUDED = {"--help", "--verbose", "--quiet", "--debug", "--json", "--force"}
INTERFACES = {"simulate": ifaces.Simulate, "upscale": ifaces.Upscale, "register": ifaces.Register,
              "train": ifaces.Train, "evaluate": ifaces.Evaluate, "fetch-model": ifaces.FetchModel}


def cli_options(name: str) -> set:
    """Long flags of a subcommand (both sides of a --x/--no-x switch), exclusions removed."""
    command = typer.main.get_command(app).commands[name]
    flags = set()
    for param in command.params:
        if param.param_type_name == "option":
            flags |= {o for o in [*param.opts, *param.secondary_opts] if o.startswith("--")}
    return flags - EXCLUDED


def trait_flags(interface) -> set:
    """The flags the interface's traits put on the command line (the first word of each argstr)."""
    flags = set()
    for trait in interface.input_spec().traits().values():
        argstr = trait.argstr or ""
        if argstr.startswith("--"):
            flags.add(argstr.split()[0])
    return flags - EXCLUDED


def test_every_subcommand_has_an_interface():
    assert set(typer.main.get_command(app).commands) == set(INTERFACES)


@pytest.mark.parametrize("name", sorted(INTERFACES))
def test_every_cli_option_has_a_nipype_trait_and_back(name):
    cli, traits = cli_options(name), trait_flags(INTERFACES[name])
    assert not cli - traits, f"mrsr {name}: options without a Nipype trait: {sorted(cli - traits)}"
    assert not traits - cli, f"{INTERFACES[name].__name__}: traits for no CLI option: {sorted(traits - cli)}"


def _section(text: str, name: str) -> str:
    match = re.search(rf"^## `mrsr {re.escape(name)}\b.*?(?=^## |\Z)", text, re.S | re.M)
    assert match, f"docs/cli.md has no section for mrsr {name}"
    return match.group(0)


@pytest.mark.parametrize("name", sorted(INTERFACES))
def test_docs_cli_md_names_every_option_in_its_section(name):
    section = _section((ROOT / "docs" / "cli.md").read_text(), name)
    documented = set(re.findall(r"`(--[a-z0-9-]+)", section))
    missing = cli_options(name) - documented
    assert not missing, f"docs/cli.md, mrsr {name}: undocumented {sorted(missing)}"
    stale = documented - cli_options(name) - EXCLUDED
    assert not stale, f"docs/cli.md, mrsr {name}: documents options that do not exist: {sorted(stale)}"


def test_exclusions_are_documented_once_for_all():
    head = (ROOT / "docs" / "cli.md").read_text().split("\n## ")[0]
    for flag in ("--force", "--json", "--debug", "-v", "-q"):
        assert f"`{flag}" in head
