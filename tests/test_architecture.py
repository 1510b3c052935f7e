"""The package's shape: one-way imports (import-linter), no private API of a dependency
outside ``tf_metatasnet.compat``, imports inside functions only where they must be, and a
repository that needs nothing beside it."""

import ast
import importlib
import inspect
import pkgutil
import re
import shutil
import subprocess
import sys

from locations import REPO, TESTS

import tf_metatasnet
from tf_metatasnet import compat

PACKAGE = REPO / "tf_metatasnet"
#: The dependencies whose internals only ``compat`` may touch.
DEPENDENCIES = ("tensorflow", "keras", "ai_edge_litert", "tensorflow_datasets", "tf_keras")
#: Their module paths that are internal although no part starts with ``_``.
INTERNAL_MODULES = ("tensorflow.python", "tensorflow.lite.python", "tensorflow.lite.tools", "keras.src",
                    "tensorflow_datasets.core.utils")
#: Methods whose names start with ``_`` and that a dependency documents for subclasses to
#: define: a TFDS builder's (tensorflow.org/datasets/add_dataset), and ``abc``'s bookkeeping.
DOCUMENTED_HOOKS = {"_info", "_split_generators", "_generate_examples", "_abc_impl"}
#: Top-level modules a function may import (optional dependencies).
OPTIONAL = ("torch", "matplotlib", "grpc", "tensorflow_serving")


def _modules():
    """``(path, syntax tree)`` of every module of the package."""
    for path in sorted(PACKAGE.rglob("*.py")):
        yield path, ast.parse(path.read_text(encoding="utf-8"), str(path))


def _names_we_define() -> set:
    """Every ``_name`` the package defines itself: functions, classes, attributes, variables."""
    names = set()
    for path, tree in _modules():
        if path.name == "compat.py":
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
                names.update(arg.arg for arg in node.args.args + node.args.kwonlyargs) if not isinstance(
                    node, ast.ClassDef) else None
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                names.add(node.attr)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif isinstance(node, ast.alias):
                names.add(node.asname or node.name.split(".")[-1])
    return {name for name in names if name.startswith("_")}


def test_import_contract_holds():
    """``lint-imports`` checks the layers of ``.importlinter`` (README, "Layout")."""
    program = shutil.which("lint-imports") or str(REPO / ".venv" / "bin" / "lint-imports")
    done = subprocess.run([program, "--config", str(REPO / ".importlinter")], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout


def test_no_private_api_of_a_dependency_outside_compat():
    ours = _names_we_define()
    found = []
    for path, tree in _modules():
        if path.name == "compat.py":
            continue
        where = path.relative_to(REPO)
        for node in ast.walk(tree):
            modules = []
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                modules = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            for module in modules:
                parts = module.split(".")
                if parts[0] in DEPENDENCIES and (any(p.startswith("_") for p in parts[1:])
                                                 or module.startswith(INTERNAL_MODULES)):
                    found.append(f"{where}:{node.lineno}: imports {module}")
            if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
                if node.attr not in ours:
                    found.append(f"{where}:{node.lineno}: uses .{node.attr}, not defined in the package")
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("getattr", "hasattr")
                    and len(node.args) > 1 and isinstance(node.args[1], ast.Constant)
                    and str(node.args[1].value).startswith("_") and node.args[1].value not in ours):
                found.append(f"{where}:{node.lineno}: {node.func.id}(..., {node.args[1].value!r})")
    assert not found, "private API of a dependency outside tf_metatasnet/compat.py:\n" + "\n".join(found)


def test_no_class_overrides_a_private_method_of_a_dependency_outside_compat():
    """A subclass of a Keras, TensorFlow or TFDS class defines no ``_name`` its base has."""
    for info in pkgutil.walk_packages(tf_metatasnet.__path__, "tf_metatasnet."):
        if not info.name.endswith("__main__"):
            importlib.import_module(info.name)
    found = []
    for name, module in sorted(sys.modules.items()):
        if not name.startswith("tf_metatasnet.") or name == "tf_metatasnet.compat":
            continue
        for cls in vars(module).values():
            if not inspect.isclass(cls) or cls.__module__ != name:
                continue
            bases = [base for base in cls.__mro__[1:]
                     if base.__module__.split(".")[0] in DEPENDENCIES]
            for attribute in vars(cls):
                if attribute.startswith("_") and not attribute.startswith("__") and attribute not in DOCUMENTED_HOOKS:
                    owners = [base.__qualname__ for base in bases if attribute in vars(base)]
                    if owners and not any(attribute in vars(mixin) for mixin in vars(compat).values()
                                          if inspect.isclass(mixin) and issubclass(cls, mixin)):
                        found.append(f"{name}.{cls.__name__}.{attribute} overrides {owners[0]}'s")
    assert not found, "\n".join(found)


def test_imports_inside_functions_are_optional_dependencies_or_the_cli_with_a_reason():
    found = []
    for path, tree in _modules():
        lines = path.read_text(encoding="utf-8").splitlines()
        cli = "cli" in path.relative_to(PACKAGE).parts
        for function in ast.walk(tree):
            if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(function):
                if not isinstance(node, (ast.Import, ast.ImportFrom)):
                    continue
                module = node.module if isinstance(node, ast.ImportFrom) else node.names[0].name
                where = f"{path.relative_to(REPO)}:{node.lineno}"
                if not cli and not module.startswith(OPTIONAL):
                    found.append(f"{where}: imports {module} inside a function")
                # The reason: a comment on the line, or on one of the block's lines above it.
                above = lines[max(0, node.lineno - 6):node.lineno]
                if not any("#" in line for line in above):
                    found.append(f"{where}: no comment says why {module} is imported here")
    assert not found, "\n".join(found)


def test_the_repository_reads_nothing_beside_it():
    pattern = re.compile(r"\.\./shared|[\"']shared[\"']|/work/shared")
    found = [f"{path.relative_to(REPO)}:{number}" for folder in (PACKAGE, TESTS)
             for path in folder.rglob("*.py") if path.name != "test_architecture.py"
             for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
             if pattern.search(line)]
    assert not found, found
    assert (TESTS / "fixtures" / "official_small.pt").is_file()
