import pytest

from testbed.project import make_project


@pytest.fixture
def project_factory(tmp_path):
    return lambda archive, **changes: make_project(tmp_path / "project", archive, **changes)
