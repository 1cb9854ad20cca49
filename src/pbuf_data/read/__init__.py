"""Reading raw releases: the registry and its schema, text and block parsers, one layout module per registry
format (formats/), the derivation of a standard dataset from raw files (derive/), raw-file pins and downloads,
and the generated mock releases of the embedded default. Imports the model and the base."""
