"""One JSON schema file per stream, named after it."""
