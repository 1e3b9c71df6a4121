import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def pytest_collection_modifyitems(items):
    # Notebook executions are the slowest tests: start them first so that xdist balances better.
    items.sort(key=lambda item: 0 if item.get_closest_marker("notebooks") else 1)


@pytest.fixture
def repo() -> Path:
    return REPO


# The lab network's tests (tests/lab_support.py): each module that asks gets its own user and folder.
@pytest.fixture(scope="module")
def ordinary_user():
    """The lab's ordinary user (lab_support.AsUser), whether or not it can build a lab here."""
    from lab_support import make_user

    yield from make_user("lab-user-", check_lab=False)


@pytest.fixture(scope="module")
def as_user():
    """The lab's ordinary user, where it can build a lab (skipped otherwise; a failure under CI)."""
    from lab_support import make_user

    yield from make_user("lab-test-", check_lab=True)


@pytest.fixture(scope="module")
def lab_here():
    """This process can build a lab (skipped otherwise; a failure under CI)."""
    from course.netlab import available
    from lab_support import unavailable

    why = available()
    if why is not None:
        unavailable(why)
