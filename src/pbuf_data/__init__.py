"""PBUF data preparation: raw cosmology survey files -> standardized, validated datasets.

The public names are resolved on first use (PEP 562), so that a workflow job importing one
submodule (``pbuf_data.operate.steps``, ``pbuf_data.read.mock``) pays only for what that submodule imports.
"""

__version__ = "0.1.0"

# public name -> (submodule, attribute)
_LAZY = {
    "Dataset": ("model.dataset", "Dataset"),
    "load_dataset": ("model.dataset", "load_dataset"),
    "read_dataset": ("model.dataset", "read_dataset"),
    "PbufDataError": ("core.errors", "PbufDataError"),
    "prepare_dataset": ("operate.api", "prepare_dataset"),
    "prepare_datasets": ("operate.api", "prepare_datasets"),
}

__all__ = [*_LAZY, "__version__"]


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module 'pbuf_data' has no attribute {name!r}")
    from importlib import import_module

    module, attribute = _LAZY[name]
    value = getattr(import_module(f".{module}", __name__), attribute)
    globals()[name] = value
    return value


def __dir__():
    return sorted([*globals(), *_LAZY])
