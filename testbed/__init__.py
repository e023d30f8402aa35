"""Test beds for the tests and the benchmark: copies of the pipeline, each in its
own git + DVC repository (project.py), and generated archives in the aclImdb
layout (archives.py).

A top-level package beside pipeline/, tests/ and bench/, imported from the
repository root (pytest and `python -m bench` run there); it is not part of
the installed package.
"""
