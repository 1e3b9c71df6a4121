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
