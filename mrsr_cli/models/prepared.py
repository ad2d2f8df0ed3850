"""A model resolved, read and hashed once per command: what the engine runs.

>>> model = prepare_model("default")
>>> model.name, model.guided, len(model.sha256)
('default', False, 64)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mrsr_cli.models.channels import model_channels


@dataclass(frozen=True)
class PreparedModel:
    """A network with its metadata (:func:`mrsr_cli.models.store.read_header`), display name and file digest."""

    net: Any
    meta: dict
    name: str
    sha256: str

    @property
    def factor_channels(self) -> int:
        return model_channels(self.meta)[0]

    @property
    def reference_channels(self) -> int:
        return model_channels(self.meta)[1]

    @property
    def guided(self) -> bool:
        return self.reference_channels > 0


def prepare_model(model: str | None = None, *, guided: bool = False) -> PreparedModel:
    """The model named or at the path ``model`` (``None``: the builtin ``guided`` model when
    ``guided``, else ``default``; :func:`mrsr_cli.models.zoo.resolve_model`), read once."""
    from mrsr_cli.models.store import load_model, sha256_file
    from mrsr_cli.models.zoo import resolve_model

    path, name = resolve_model(model, guided=guided)
    net, meta = load_model(path)
    return PreparedModel(net, meta, name, sha256_file(path))
