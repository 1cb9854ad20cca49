"""PBUF data preparation: raw cosmology survey files -> standardized, validated datasets."""

__version__ = "0.1.0"

from .dataset import Dataset, load_dataset, read_dataset  # noqa: E402
from .errors import PbufDataError  # noqa: E402


def prepare_dataset(*args, **kwargs):
    """See :func:`pbuf_data.api.prepare_dataset` (imported lazily: Snakemake is heavy)."""
    from .api import prepare_dataset as prepare

    return prepare(*args, **kwargs)


def prepare_datasets(*args, **kwargs):
    """See :func:`pbuf_data.api.prepare_datasets`."""
    from .api import prepare_datasets as prepare

    return prepare(*args, **kwargs)


__all__ = ["Dataset", "PbufDataError", "load_dataset", "prepare_dataset", "prepare_datasets", "read_dataset", "__version__"]
