"""mrsr: brain MRI super-resolution (Pham et al. 2019 ReCNN; DNSP priors and EDSR-3D of Cherukuri et al.) as a command-line toolkit.

The package is a pure library with a thin typer CLI (:mod:`mrsr_cli.cli`) on top; file-level
verbs are in :mod:`verbs`.  Modules, in data-flow order: :mod:`io`, :mod:`geometry`,
:mod:`observation` (the degradation and its adjoint), :mod:`simulate`, :mod:`interpolate`,
:mod:`register`, :mod:`models` (registry of networks), :mod:`losses` (registry of loss terms,
with the DNSP priors of :mod:`priors`),
:mod:`recipes`, :mod:`train`, :mod:`channels`, :mod:`device`, :mod:`tiling`, :mod:`engine`,
:mod:`methods` (registry of ``upscale --method``; :mod:`lrtv`), :mod:`metrics`, :mod:`statistics`,
:mod:`evaluate`, :mod:`zoo`,
:mod:`interfaces`.  docs/extending.md says where a new network, loss term, method or
degradation goes.  torch is imported lazily so that ``mrsr --help`` stays instant.
"""

__version__ = "0.1.0"
