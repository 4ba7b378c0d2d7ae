"""Throwaway plugin packages for the tests: installed into a folder (a site directory for sys.path or PYTHONPATH)
with the dist-info that `importlib.metadata` reads entry points from."""
from __future__ import annotations

import textwrap
from pathlib import Path


def install_package(site: Path, package: str, source: str, group: str, entry: str) -> Path:
    """Write package `package` (its __init__.py is `source`, dedented) into `site`, with an entry point `entry`
    ("name = module:attr") in entry point group `group`. Returns `site`."""
    (site / package).mkdir(parents=True)
    (site / package / "__init__.py").write_text(textwrap.dedent(source))
    dist = site / f"{package}-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {package.replace('_', '-')}\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[{group}]\n{entry}\n")
    return site
