"""The benchmark: the chapter's dense code path against the DVC pipeline (`python -m bench`)."""
