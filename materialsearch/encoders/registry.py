"""The open list of encoder backends, by name (the values MS_BACKEND takes besides ``auto``).

A backend module registers itself when it is imported (``register_backend(name, factory)``): the local torch
and ONNX backends do, and an encoder on another host is just another entry. The factory builds the encoder, not
yet loaded, from the settings and the ``BackendChoice`` that ``choose.make_encoder`` made for it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING

from materialsearch.encoders.base import AUTO, Backend, BackendChoice, Encoder, ModelError

if TYPE_CHECKING:
    from config import Settings

EncoderFactory = Callable[["Settings", BackendChoice], Encoder]

_FACTORIES: dict[str, EncoderFactory] = {}  # in registration order: the order errors list them in


def register_backend(name: str, factory: EncoderFactory) -> None:
    """Make ``name`` a backend that ``factory`` builds; a name is registered once (``unregister_backend`` first to
    replace it)."""
    name = str(name)
    if name == AUTO:
        raise ValueError(f"{AUTO!r} lets the machine choose: it cannot name a backend")
    if name in _FACTORIES and _FACTORIES[name] is not factory:
        raise ValueError(f"an encoder backend named {name!r} is already registered")
    _FACTORIES[name] = factory


def unregister_backend(name: str) -> None:
    """Forget backend ``name`` (a no-op where it is not registered)."""
    _FACTORIES.pop(str(name), None)


def registered_backends() -> Mapping[str, EncoderFactory]:
    """The registered backends' factories by name, read-only, in registration order."""
    return MappingProxyType(_FACTORIES)


def backend_factory(name: str) -> EncoderFactory:
    """The factory of backend ``name``; ModelError naming the values MS_BACKEND accepts where there is none."""
    try:
        return _FACTORIES[name]
    except KeyError:
        raise ModelError(f"MS_BACKEND={name!r}: use one of {', '.join(accepted_settings())}") from None


def accepted_settings() -> list[str]:
    """The values MS_BACKEND accepts: ``auto``, the product's own backends, then the others as registered."""
    local = [str(backend) for backend in Backend if backend in _FACTORIES]
    return [AUTO, *local, *(name for name in _FACTORIES if name not in local)]
