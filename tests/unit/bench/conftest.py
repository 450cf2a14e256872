"""Make the repo's `bench/` importable however pytest is started.

`python -m pytest` from the repo root already can; the `pytest` script cannot. The root is
appended, not prepended: its `operator/` folder must never shadow the stdlib module.
"""

import sys
from pathlib import Path

REPO_ROOT = str(Path(__file__).resolve().parents[3])
if REPO_ROOT not in sys.path:
    sys.path.append(REPO_ROOT)
