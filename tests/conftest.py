import os
from pathlib import Path

import pytest
import torch

# Tests (and CI) find the shared data sets beside the checkout; library code only ever reads
# the folder from an argument or METARL_DATA.
os.environ.setdefault("METARL_DATA", str(Path(__file__).resolve().parents[2] / "shared" / "data"))

# The tests use small tensors: one thread is faster than two and avoids oversubscribing the
# machine when something else runs beside the tests.
torch.set_num_threads(1)


@pytest.fixture
def float64():
    """Run a test in double precision, restoring the default dtype afterwards."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)
