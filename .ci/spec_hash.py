"""Print a short hash of the dependency spec: the cached virtualenv's key.

Only what changes the installed packages counts (dependencies, extras, the offline asset
list), so editing tool settings in pyproject.toml does not rebuild the environment.
"""

import hashlib
import json
import tomllib
from pathlib import Path

root = Path(__file__).resolve().parent.parent
project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
spec = json.dumps([project["dependencies"], project.get("optional-dependencies", {})])
assets = (root / "requirements" / "offline-assets.txt").read_bytes()
print(hashlib.sha256(spec.encode() + assets).hexdigest()[:16])
