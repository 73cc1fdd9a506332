"""The package's layout contract ("one method, one module"; see ``hashlib_edu/__init__.py`` and
``hashlib_edu/methods/__init__.py``), checked on the source files themselves:

* every file of the package is at most 750 lines long;
* a method module (``hashlib_edu/methods/<name>.py``) imports only the shared core -- never
  another method module, nor a module built on top of the methods;
* no module imports a ``_private`` name of another module of the package (nor reaches one as
  ``module._name``);
* the method modules hold the names the course promises;
* there is exactly one ``quantization_error`` (in :mod:`hashlib_edu.codes`).
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import hashlib_edu

PACKAGE = Path(hashlib_edu.__file__).resolve().parent
METHODS_DIR = PACKAGE / "methods"
MAX_LINES = 750
#: Modules built on the methods (hashlib_edu/__init__.py: "On top").
ON_TOP = ("experiment", "exercises", "explorer", "report", "reproduce", "course", "fork")
#: Names a module may import from the package although they start with "_".
ALLOWED_UNDERSCORE = {"__version__"}


def _package_files() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*")
                  if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc")


def _modules() -> list[Path]:
    return [p for p in _package_files() if p.suffix == ".py"]


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _resolve(path: Path, node: ast.ImportFrom) -> str:
    """The absolute module name of ``from <node.module> import ...`` written in ``path``."""
    if node.level == 0:
        return node.module or ""
    package = _module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]  # a module's relative imports start from its package
    base = package[: len(package) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports (anywhere in the file), as absolute names; for
    ``from pkg import x`` both ``pkg`` and ``pkg.x`` (``x`` may be a submodule)."""
    found: set[str] = set()
    for node in ast.walk(_parse(path)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = _resolve(path, node)
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def _method_modules() -> list[Path]:
    return sorted(p for p in METHODS_DIR.glob("*.py") if p.name != "__init__.py")


def _within(name: str, module: str) -> bool:
    return name == module or name.startswith(module + ".")


# --------------------------------------------------------------------------- the checks themselves


def test_the_import_resolution_of_these_checks():
    """The helpers above read relative imports the way Python does."""
    dsh = METHODS_DIR / "dsh.py"
    assert _module_name(dsh) == "hashlib_edu.methods.dsh"
    assert _module_name(METHODS_DIR / "__init__.py") == "hashlib_edu.methods"
    one = ast.parse("from .orthohash import maxhd_targets").body[0]
    two = ast.parse("from ..codes import sign").body[0]
    bare = ast.parse("from . import dpah").body[0]
    assert _resolve(dsh, one) == "hashlib_edu.methods.orthohash"
    assert _resolve(dsh, two) == "hashlib_edu.codes"
    assert _resolve(dsh, bare) == "hashlib_edu.methods"
    assert _resolve(PACKAGE / "training.py", ast.parse("from .codes import sign").body[0]) == (
        "hashlib_edu.codes")
    assert _resolve(METHODS_DIR / "__init__.py", one) == "hashlib_edu.methods.orthohash"
    assert _resolve(dsh, ast.parse("from hashlib_edu.methods.dpah import x").body[0]) == (
        "hashlib_edu.methods.dpah")
    assert len(_method_modules()) >= 5


# --------------------------------------------------------------------------- the contract


@pytest.mark.parametrize("path", _package_files(), ids=lambda p: p.relative_to(PACKAGE).as_posix())
def test_files_are_at_most_750_lines(path):
    n_lines = len(path.read_bytes().splitlines())
    assert n_lines <= MAX_LINES, (
        f"{path.relative_to(PACKAGE.parent)} has {n_lines} lines (at most {MAX_LINES}): split it "
        "along the layout of hashlib_edu/__init__.py.")


@pytest.mark.parametrize("path", _method_modules(), ids=lambda p: p.stem)
def test_a_method_module_imports_no_other_method_module(path):
    others = [f"hashlib_edu.methods.{p.stem}" for p in _method_modules() if p != path]
    imported = _imported_modules(path)
    offending = sorted(name for name in imported for other in others if _within(name, other))
    assert not offending, (
        f"hashlib_edu/methods/{path.name} imports {offending}: a method module imports only the "
        "shared core (put what two methods share in a core module).")


@pytest.mark.parametrize("path", _method_modules(), ids=lambda p: p.stem)
def test_a_method_module_imports_nothing_built_on_the_methods(path):
    on_top = [f"hashlib_edu.{name}" for name in ON_TOP]
    offending = sorted(name for name in _imported_modules(path)
                       for top in on_top if _within(name, top))
    assert not offending, f"hashlib_edu/methods/{path.name} imports {offending}."


@pytest.mark.parametrize("path", _modules(), ids=lambda p: p.relative_to(PACKAGE).as_posix())
def test_no_module_imports_a_private_name_of_another(path):
    offending = []
    for node in ast.walk(_parse(path)):
        if not isinstance(node, ast.ImportFrom) or node.module == "__future__":
            continue
        module = _resolve(path, node)
        if not _within(module, "hashlib_edu"):
            continue
        offending += [f"line {node.lineno}: from {'.' * node.level}{node.module or ''} "
                      f"import {alias.name}" for alias in node.names
                      if alias.name.startswith("_") and alias.name not in ALLOWED_UNDERSCORE]
    assert not offending, (
        f"{path.relative_to(PACKAGE.parent)} imports private names of another module: "
        f"{offending}; make the name public (no leading underscore) where it is defined.")


def _is_package_module(name: str) -> bool:
    relative = Path(*name.split("."))
    return ((PACKAGE.parent / relative).with_suffix(".py").is_file()
            or (PACKAGE.parent / relative / "__init__.py").is_file())


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return None if base is None else f"{base}.{node.attr}"
    return None


@pytest.mark.parametrize("path", _modules(), ids=lambda p: p.relative_to(PACKAGE).as_posix())
def test_no_module_reaches_a_private_name_of_another_through_its_module(path):
    tree = _parse(path)
    bound: dict[str, str] = {}  # local name -> the package module it is bound to
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if _within(alias.name, "hashlib_edu"):
                    bound[alias.asname or alias.name.split(".")[0]] = (
                        alias.name if alias.asname else "hashlib_edu")
        elif isinstance(node, ast.ImportFrom) and node.module != "__future__":
            module = _resolve(path, node)
            for alias in node.names:
                if _is_package_module(f"{module}.{alias.name}"):
                    bound[alias.asname or alias.name] = f"{module}.{alias.name}"
    offending = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and node.attr.startswith("_")
                and not node.attr.startswith("__")):
            base = _dotted(node.value)
            if base is None or base.split(".")[0] not in bound:
                continue
            head, *rest = base.split(".")
            offending.append(f"line {node.lineno}: {'.'.join([bound[head], *rest])}.{node.attr}")
    assert not offending, (
        f"{path.relative_to(PACKAGE.parent)} uses private names of another module: {offending}.")


CONTRACT = {
    "hashlib_edu.methods.dsh": ("DSHLoss", "DSHSigmoidLoss"),
    "hashlib_edu.methods.dpah": ("DPAHLoss",),
    "hashlib_edu.methods.orthohash": ("OrthoHashLoss",),
    "hashlib_edu.methods.baselines": ("LSH", "PCAITQ", "CCAITQ", "KSH"),
}


@pytest.mark.parametrize("module", list(CONTRACT))
def test_the_method_modules_hold_their_contract_names(module):
    mod = importlib.import_module(module)
    missing = [name for name in CONTRACT[module] if not hasattr(mod, name)]
    assert not missing, f"{module} lacks {missing}"
    for name in CONTRACT[module]:
        # defined there, not merely imported from elsewhere
        assert getattr(mod, name).__module__ == module, (name, getattr(mod, name).__module__)


def test_there_is_one_quantization_error():
    definitions = [(path.relative_to(PACKAGE.parent).as_posix(), node.lineno)
                   for path in _modules() for node in ast.walk(_parse(path))
                   if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
                   and node.name == "quantization_error"]
    assert [where for where, _ in definitions] == ["hashlib_edu/codes.py"], definitions
    from hashlib_edu import codes
    from hashlib_edu.methods import baselines

    assert baselines.quantization_error is codes.quantization_error
