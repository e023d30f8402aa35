import pytest
from hypothesis import settings

from testbed.project import make_project

# No time limit per example: on a shared machine a first call that imports a module
# can take a few hundred milliseconds, and a limit would fail a correct test
settings.register_profile("project", deadline=None)
settings.load_profile("project")


@pytest.fixture
def project_factory(tmp_path):
    return lambda archive, **changes: make_project(tmp_path / "project", archive, **changes)
