"""The package's layout: three layers, no circle, old names kept, a wheel
that holds every module.

- ``gelu_numba.core``: the kernels (formulas, floating-point building blocks,
  coefficients, loops, the ufunc builder, runtime state, the CUDA kernels);
  it imports nothing of gelu_numba outside itself.
- the faces (``gelu_numba``, ``.parallel``, ``.gpu``, ``.torch``,
  ``.scalar``, ``.activations``): names and the glue to their ecosystem;
  they import the core and each other, never the tooling.
- ``gelu_numba.tools``: the command line, report, benchmarks, plots,
  accuracy sweeps, PTX inspection, the mpmath reference; it may import both.

Imports inside functions count.  The modules that kept an old name
(``gelu_numba.reference``, ``.accuracy``, ``._runtime``, ``__main__``) are
aliases of the module that moved and import nothing else.
"""

import ast
import os
import pathlib
import pickle
import subprocess
import sys
import venv

import pytest

import gelu_numba

PACKAGE = pathlib.Path(gelu_numba.__file__).parent
FACES = {"gelu_numba", "gelu_numba.parallel", "gelu_numba.gpu", "gelu_numba.torch", "gelu_numba.scalar",
         "gelu_numba.activations"}
ALIASES = {"gelu_numba.reference": "gelu_numba.tools.reference",
           "gelu_numba.accuracy": "gelu_numba.tools.accuracy",
           "gelu_numba._runtime": "gelu_numba.core.runtime",
           "gelu_numba.__main__": "gelu_numba.tools.cli"}


def _modules():
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


MODULES = _modules()


def _imports(name, path):
    """The gelu_numba modules that module `name` imports, anywhere in it."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            targets = [module] + [f"{module}.{a.name}" for a in node.names]
        else:
            continue
        for target in targets:
            # `from . import x` names a module when x is one; else the package.
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target and target.startswith("gelu_numba") and target != name:
                out.add(target)
    return out


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _layer(name):
    if name == "gelu_numba.core" or name.startswith("gelu_numba.core."):
        return "core"
    if name == "gelu_numba.tools" or name.startswith("gelu_numba.tools."):
        return "tools"
    if name in FACES:
        return "face"
    if name in ALIASES:
        return "alias"
    return None


def test_every_module_has_a_layer():
    assert not [m for m in MODULES if _layer(m) is None]


def test_core_imports_only_the_core():
    bad = {m: sorted(i for i in GRAPH[m] if _layer(i) != "core") for m in MODULES if _layer(m) == "core"}
    assert not {m: i for m, i in bad.items() if i}


def test_faces_never_import_the_tooling():
    bad = {m: sorted(i for i in GRAPH[m] if _layer(i) not in ("core", "face")) for m in FACES}
    assert not {m: i for m, i in bad.items() if i}


def test_aliases_import_only_what_they_stand_for():
    for alias, target in ALIASES.items():
        assert GRAPH[alias] <= {target, "gelu_numba.tools", "gelu_numba.core"}, (alias, GRAPH[alias])


def test_no_import_circle():
    state, stack = {}, []

    def visit(m):
        state[m] = "open"
        stack.append(m)
        for n in sorted(GRAPH[m]):
            if state.get(n) == "open":
                raise AssertionError("import circle: " + " -> ".join(stack[stack.index(n):] + [n]))
            if n not in state:
                visit(n)
        stack.pop()
        state[m] = "done"

    for m in sorted(MODULES):
        if m not in state:
            visit(m)


def test_old_names_still_resolve():
    import gelu_numba._runtime as runtime
    import gelu_numba.accuracy as accuracy
    import gelu_numba.reference as reference
    from gelu_numba.core import runtime as core_runtime
    from gelu_numba.tools import accuracy as tools_accuracy
    from gelu_numba.tools import reference as tools_reference

    assert reference is tools_reference and accuracy is tools_accuracy and runtime is core_runtime
    assert callable(accuracy.exhaustive_float32) and callable(runtime.paths) and callable(reference.ulp_error)


# What 155dc76 (the flat layout) wrote for gelu_numba.gelu and
# gelu_numba.parallel.gelu_tanh_backward, protocols 2 and 4.
OLD_PICKLES = {
    ("gelu_numba", "gelu"): [b"\x80\x02cgelu_numba\ngelu\nq\x00.",
                             b"\x80\x04\x95\x17\x00\x00\x00\x00\x00\x00\x00\x8c\ngelu_numba\x94\x8c\x04gelu"
                             b"\x94\x93\x94."],
    ("gelu_numba.parallel", "gelu_tanh_backward"): [
        b"\x80\x02cgelu_numba.parallel\ngelu_tanh_backward\nq\x00.",
        b"\x80\x04\x95.\x00\x00\x00\x00\x00\x00\x00\x8c\x13gelu_numba.parallel\x94\x8c\x12gelu_tanh_backward"
        b"\x94\x93\x94."],
}


@pytest.mark.parametrize("where", list(OLD_PICKLES), ids=lambda w: ".".join(w))
def test_ufuncs_pickled_by_the_flat_layout_load_as_the_same_object(where):
    import importlib

    module, name = where
    f = getattr(importlib.import_module(module), name)
    for data in OLD_PICKLES[where]:
        assert pickle.loads(data) is f
    assert pickle.loads(pickle.dumps(f)) is f


def test_wheel_installs_and_imports_every_module(tmp_path):
    """The built wheel (not the checkout) in a fresh virtualenv: every module
    of the package imports.  Its dependencies come from this environment,
    through a .pth file placed after the new environment's own packages."""
    root = PACKAGE.parent
    if not (root / "pyproject.toml").exists():
        pytest.skip("needs the source checkout to build a wheel")
    wheels = tmp_path / "wheels"
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(root)],
                       capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    (wheel,) = wheels.glob("gelu_numba-*.whl")
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True, timeout=60).stdout.strip()
    r = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", site, str(wheel)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    deps = [p for p in sys.path if p.endswith("site-packages")]
    (pathlib.Path(site) / "zz_dependencies.pth").write_text("\n".join(deps) + "\n")
    # Modules that need an optional extra (torch, matplotlib, numba-cuda)
    # may miss only that extra.
    names = sorted(m for m in MODULES if m != "gelu_numba.__main__")
    code = ("import importlib, json, sys, gelu_numba\n"
            f"names = {names!r}\n"
            "for n in names:\n"
            "    try:\n"
            "        importlib.import_module(n)\n"
            "    except ImportError as exc:\n"
            "        cause = exc if isinstance(exc, ModuleNotFoundError) else exc.__cause__ or exc.__context__\n"
            "        missing = getattr(cause, 'name', None) or ''\n"
            "        if missing.split('.')[0] not in ('torch', 'matplotlib', 'cupy') and missing != 'numba.cuda':\n"
            "            raise\n"
            "print(json.dumps([gelu_numba.__file__, float(gelu_numba.gelu(-1.0))]))\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["NUMBA_CACHE_DIR"] = str(tmp_path / "cache")
    r = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    where, value = __import__("json").loads(r.stdout.strip().splitlines()[-1])
    assert where.startswith(site), f"imported {where}, not the wheel's copy"
    assert value == float(gelu_numba.gelu(-1.0))
    listed = subprocess.run([sys.executable, "-m", "zipfile", "-l", str(wheel)], capture_output=True,
                            text=True, check=True).stdout
    missing = [n for n in MODULES if "/".join(MODULES[n].relative_to(PACKAGE.parent).parts) not in listed]
    assert not missing, f"the wheel lacks {missing}"
