"""Rules about how the modules of `backends/`, `demo/` and `app.py` talk to each other, read from the source with
`ast` (nothing is imported). Tests and benchmarks are outside these rules.

1. private_imports: a module uses no `_underscored` name of another project module: not `from x import _y`, and
   not `x._y` where `x` was bound by importing a project module (`from . import media` /
   `import backends.inputs.media as m`). What two modules share is public where it lives. Dunder names (`__version__`) are public.
2. demo_priors: nothing in `demo/` imports `backends.priors` or any module under it (`from backends import priors`
   included): the UI talks to backends and the runner, never to a prior.
3. capability_probes: outside the contract modules (CONTRACT), no `getattr(x, ...)` / `hasattr(x, ...)` where `x`
   is a backend class, a prior or a backend's settings: a first argument whose name (`x`, or the last part of
   `a.b.x`) is one of PROBED_NAMES or ends in `prior`. What a backend or a prior offers is declared where the
   contract is, and read there (a `BackendSpec` field, a settings field, a prior protocol); everyone else reads the
   declared field. The one exception is forwarding: a `__getattr__` that hands every attribute to a wrapped object
   probes nothing.

Each rule has a self-test on a snippet that breaks it, so each can fail.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("backends", "demo")

# Where a backend's and a prior's capabilities are declared and read: the registry builds `BackendSpec` from a
# backend's class attributes (with their defaults), `types` holds BackendSpec, `settings` reads settings fields
# generically for every backend, and `priors/base` is the prior protocol.
CONTRACT = {"backends/core/registry.py", "backends/core/types.py", "backends/core/settings.py",
            "backends/priors/base.py"}
# names this project gives a backend class, a prior, or a backend's settings (any name ending in "prior" too)
PROBED_NAMES = {"cls", "backend", "backend_cls", "spec", "settings", "s", "prior_obj"}


def sources() -> dict[str, str]:
    """{path relative to the root: source} of every module under the rules."""
    paths = [p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))] + [ROOT / "app.py"]
    return {p.relative_to(ROOT).as_posix(): p.read_text(encoding="utf-8") for p in paths}


def module_name(path: str) -> str:
    parts = Path(path).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def absolute(path: str, node: ast.ImportFrom) -> str:
    """The absolute module an ImportFrom reads from (relative imports resolved against `path`'s package)."""
    if not node.level:
        return node.module or ""
    package = module_name(path).split(".")
    if not path.endswith("__init__.py"):
        package = package[:-1]
    base = package[:len(package) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def is_project(module: str) -> bool:
    return module.split(".")[0] in PACKAGES


def private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def private_imports(path: str, source: str) -> list[str]:
    tree = ast.parse(source)
    found, modules = [], set()  # modules: local names bound to a project module
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            source_module = absolute(path, node)
            if not is_project(source_module):
                continue
            for alias in node.names:
                if private(alias.name):
                    found.append(f"{path}:{node.lineno}: from {source_module} import {alias.name}")
                elif alias.name != "*":
                    # `from . import media`: a submodule (or a public object; its private attributes are off limits
                    # all the same)
                    modules.add(alias.asname or alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if is_project(alias.name):
                    modules.add(alias.asname or alias.name.split(".")[0])
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and private(node.attr):
            root = node.value
            while isinstance(root, ast.Attribute):
                root = root.value
            if isinstance(root, ast.Name) and root.id in modules:
                found.append(f"{path}:{node.lineno}: {ast.unparse(node)}")
    return found


def demo_priors(path: str, source: str) -> list[str]:
    if not path.startswith("demo/"):
        return []
    found = []
    for node in ast.walk(ast.parse(source)):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = absolute(path, node)
            names = [module] + [f"{module}.{a.name}" for a in node.names]
        elif (isinstance(node, ast.Call) and ast.unparse(node.func) in ("importlib.import_module", "import_module")
              and node.args and isinstance(node.args[0], ast.Constant)):
            names = [str(node.args[0].value)]
        if any(n == "backends.priors" or n.startswith("backends.priors.") for n in names):
            found.append(f"{path}:{node.lineno}: {ast.unparse(node)}")
    return found


def probed(node: ast.expr) -> bool:
    name = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else None
    return name is not None and (name in PROBED_NAMES or name.endswith("prior"))


def capability_probes(path: str, source: str) -> list[str]:
    if path in CONTRACT:
        return []
    tree = ast.parse(source)
    forwarding = {id(n) for f in ast.walk(tree) if isinstance(f, ast.FunctionDef) and f.name == "__getattr__"
                  for n in ast.walk(f)}
    found = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("getattr", "hasattr")
                and node.args and probed(node.args[0]) and id(node) not in forwarding):
            found.append(f"{path}:{node.lineno}: {ast.unparse(node)}")
    return found


RULES = {"private_imports": private_imports, "demo_priors": demo_priors, "capability_probes": capability_probes}


@pytest.mark.parametrize("rule", sorted(RULES))
def test_the_tree_keeps_the_rule(rule):
    found = [hit for path, source in sources().items() for hit in RULES[rule](path, source)]
    assert not found, f"{rule}:\n" + "\n".join(found)


# ---- each rule fails on a snippet that breaks it, and passes the forms it allows

@pytest.mark.parametrize("path, snippet", [
    ("backends/inputs/media/view_sets.py", "from ..validate import MB, _fail\n"),
    ("backends/inputs/media/view_sets.py", "from .image_files import _Limits\n"),  # within one package too
    ("backends/mesh/io.py", "from ..media import _central_directory\n"),
    ("demo/tab.py", "from backends.inputs.validate import _size\n"),
    ("backends/core/budget.py", "def f():\n    from .validate import _open_regular as open_regular\n"),
    ("backends/core/runner.py", "from . import validate\nvalidate._fail('x')\n"),
    ("demo/tab.py", "import backends.inputs.media as media\nmedia._central_directory(b'')\n"),
    ("demo/tab.py", "import backends.inputs.media\nbackends.inputs.media._read(0)\n"),
])
def test_private_imports_finds_an_underscored_name_taken_from_another_module(path, snippet):
    assert private_imports(path, snippet)


@pytest.mark.parametrize("snippet", [
    "from . import interrupts as _interrupts\n",  # a public module under a private local name
    "from .validate import MB, fail\n",
    "import numpy as np\nnp._NoValue\n",  # not a project module
    "from .types import __doc__\n",
    "class A:\n    def f(self):\n        return self._own\n",
])
def test_private_imports_allows_public_names_and_other_packages(snippet):
    assert not private_imports("backends/core/budget.py", snippet)


@pytest.mark.parametrize("snippet", [
    "from backends.priors.machine import truthy\n",
    "from backends.priors import catalog\n",
    "import backends.priors\n",
    "from backends import priors\n",
    "def f():\n    import backends.priors.catalog as c\n",
    "import importlib\nimportlib.import_module('backends.priors.tiny')\n",
])
def test_demo_priors_finds_an_import_of_the_priors_in_the_ui(snippet):
    assert demo_priors("demo/launch.py", snippet)


def test_demo_priors_allows_the_backends_and_other_folders():
    assert not demo_priors("demo/launch.py", "from backends import runner, settings\nfrom backends.priors_x import a\n")
    assert not demo_priors("backends/core/runner.py", "from .priors import catalog\n")


@pytest.mark.parametrize("snippet", [
    "def f(cls):\n    return getattr(cls, 'scorer', None)\n",
    "def f(cls):\n    return hasattr(cls, 'total_steps')\n",
    "def f(s):\n    return getattr(s, 'encoder', 'kl')\n",
    "def f(prior):\n    return hasattr(prior, 'with_fast_encoder')\n",
    "def f(self):\n    return getattr(self._prior, 'unet')\n",
    "def f(job):\n    return getattr(job.spec, 'estimate', None)\n",
])
def test_capability_probes_finds_getattr_on_a_backend_a_prior_or_settings(snippet):
    assert capability_probes("backends/svg/distill.py", snippet)


@pytest.mark.parametrize("snippet", [
    "def f(err):\n    return getattr(err, 'suggestions', ())\n",  # an error, not a backend
    "import os\nx = getattr(os, 'O_BINARY', 0)\n",
    "class W:\n    def __getattr__(self, name):\n        return getattr(self._prior, name)\n",  # forwarding
])
def test_capability_probes_allows_other_objects_and_forwarding(snippet):
    assert not capability_probes("backends/svg/distill.py", snippet)


def test_capability_probes_allows_the_contract_modules():
    snippet = "def f(cls):\n    return hasattr(cls, 'estimate')\n"
    assert all(not capability_probes(path, snippet) for path in CONTRACT)
    assert all((ROOT / path).is_file() for path in CONTRACT)
