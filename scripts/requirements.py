"""Print the requirements tripcomms runs with, from pyproject.toml: its dependencies and the
extras a deployment installs (postgres, redis, deploy), one a line, for `pip-audit -r`.

    python scripts/requirements.py > requirements-audit.txt
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

RUNTIME_EXTRAS = ("postgres", "redis", "deploy")


def requirements(pyproject: Path) -> list[str]:
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    found = list(project["dependencies"])
    for extra in RUNTIME_EXTRAS:
        found += project["optional-dependencies"][extra]
    return list(dict.fromkeys(found))


if __name__ == "__main__":
    root = Path(__file__).resolve().parent.parent
    sys.stdout.write("".join(f"{line}\n" for line in requirements(root / "pyproject.toml")))
