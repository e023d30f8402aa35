"""The DVC stages, one module each, in the order dvc.yaml runs them: download, vocab,
vectorize, train, evaluate, plot. Each reads its inputs and its params section, calls
the shared modules in pipeline/, and writes its outputs (`python -m pipeline.stages.<name>`)."""
