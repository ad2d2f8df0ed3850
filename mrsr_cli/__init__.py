"""mrsr: brain MRI super-resolution (Pham et al. 2019 ReCNN, DNSP priors) as a command-line toolkit.

The package is a pure library with a thin typer CLI (:mod:`mrsr_cli.cli`) on top.
Modules, in data-flow order: :mod:`io`, :mod:`geometry`, :mod:`simulate`, :mod:`interpolate`,
:mod:`register`, :mod:`models`, :mod:`train`, :mod:`engine`, :mod:`metrics`, :mod:`zoo`,
:mod:`interfaces`.  torch is imported lazily so that ``mrsr --help`` stays instant.
"""

__version__ = "0.1.0"
