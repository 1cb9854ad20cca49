"""PBUF data preparation: raw cosmology survey files -> standardized, validated datasets."""

__version__ = "0.1.0"

from .dataset import Dataset, load_dataset, read_dataset  # noqa: E402
from .errors import PbufDataError  # noqa: E402

__all__ = ["Dataset", "PbufDataError", "load_dataset", "read_dataset", "__version__"]
