"""The promises the package's layout makes to its users: one model argument everywhere, a resume
fingerprint over everything a model is made of, one encoder per process, and cheap imports."""
from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from disinfo_clf.models.combined import CombinedClassifier
from disinfo_clf.models.errors import ModelDirectoryError
from disinfo_clf.models.manifest import fingerprint
from disinfo_clf.resources import MODELS_DIR
from disinfo_clf.scoring import ScoringError, score

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "disinfo_clf"
OPTIONAL = "serve"
"""Packages of the library that need an optional extra, imported inside the function that needs them."""


def _run(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_score_takes_the_fast_tier_by_name(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({"id": str(i), "text": t}) + "\n" for i, t in enumerate(
        ["NATO promised Gorbachev not to expand east and broke its word.", "The weather in Lisbon is sunny."])))
    summary = score([source], tmp_path / "out.jsonl", model="fast", show_progress_bar=False)
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert summary.scored == 2 and summary.errors == 0
    assert [r["error"] for r in rows] == [None, None]
    assert rows[0]["narrative"] == "nato-aggression" and rows[0]["model"]


def test_score_refuses_what_predict_refuses(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps({"id": "1", "text": "x"}) + "\n")
    with pytest.raises(TypeError, match="model is int"):
        score([source], tmp_path / "out.jsonl", model=5)
    with pytest.raises(ScoringError, match="unknown engine"):
        score([source], tmp_path / "out.jsonl", model="fast", engine="spark")


@pytest.fixture()
def shipped_copy(tmp_path: Path) -> Path:
    """The shipped default with every part it names, copied, so they can be changed."""
    for name in ("narratives-default", "narratives-e5", "narratives-linear", "roles-e5", "roles-linear"):
        shutil.copytree(MODELS_DIR / name, tmp_path / name)
    return tmp_path / "narratives-default"


def test_fingerprint_covers_the_parts_a_model_names_but_not_its_card(shipped_copy: Path) -> None:
    before = fingerprint(shipped_copy)
    (shipped_copy / "README.md").write_text("a regenerated card\n")
    (shipped_copy / "role" / "README.md").write_text("another card\n")
    assert fingerprint(shipped_copy) == before
    meta = shipped_copy.parent / "narratives-linear" / "disinfo_clf.json"
    data = json.loads(meta.read_text())
    data["thresholds"][0] = min(1.0, data["thresholds"][0] + 0.01)
    meta.write_text(json.dumps(data))
    assert fingerprint(shipped_copy) != before
    role_part = shipped_copy.parent / "roles-e5" / "disinfo_clf.json"
    changed = fingerprint(shipped_copy)
    role_part.write_text(role_part.read_text() + " ")
    assert fingerprint(shipped_copy) != changed


def test_a_combined_model_refuses_a_part_that_changed_since_it_was_combined(shipped_copy: Path) -> None:
    CombinedClassifier.from_pretrained(shipped_copy)  # the copy loads as shipped
    meta = shipped_copy.parent / "narratives-linear" / "disinfo_clf.json"
    data = json.loads(meta.read_text())
    data["thresholds"][0] = min(1.0, data["thresholds"][0] + 0.01)
    meta.write_text(json.dumps(data))
    with pytest.raises(ModelDirectoryError, match="part linear .* changed"):
        CombinedClassifier.from_pretrained(shipped_copy)
    listed = json.loads((shipped_copy / "combined.json").read_text())
    assert [(p["name"], p["type"]) for p in listed["parts"]] == [("e5", "embedding-head"), ("linear", "linear")]


@pytest.mark.slow
def test_predict_and_match_load_the_encoder_once_per_process() -> None:
    """One body for every head and the index; the stance gate's own (fine-tuned) encoder, once too."""
    out = _run(
        "import disinfo_clf.encoders.inference as inference\n"
        "calls = []\n"
        "real = inference.load_encoder\n"
        "inference.load_encoder = lambda *a, **k: calls.append(str(a[0]) if a else 'default') or real(*a, **k)\n"
        "from disinfo_clf import predict, match\n"
        "p = predict('NATO promised not to expand east and lied.')\n"
        "p = predict(['NATO is an aggressor that encircles Russia.', 'NATO lied about expanding east.'])\n"
        "m = match('США создали в Украине биолаборатории', k=3)\n"
        "assert p[0].matches and m\n"
        "print(len(calls), sum('-stance-' in c for c in calls))\n")
    assert out == "2 1"


def test_importing_the_encoders_stage_does_not_pull_in_the_models() -> None:
    out = _run("import sys, disinfo_clf.encoders, disinfo_clf.text.sentences, disinfo_clf.feeds\n"
               "print(sorted(m for m in ('sklearn', 'torch', 'disinfo_clf.prediction') if m in sys.modules))")
    assert out == "[]"


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
    return ".".join(base + ([node.module] if node.module else []))


def test_the_package_has_no_import_circles_and_no_module_over_400_lines() -> None:
    modules = _modules()
    edges: dict[str, set[str]] = {}
    for name, path in modules.items():
        source = path.read_text(encoding="utf-8")
        assert len(source.splitlines()) <= 400, f"{path} has more than 400 lines"
        tree = ast.parse(source)
        targets = set()
        for node in tree.body:
            if isinstance(node, ast.ImportFrom) and node.level:
                target = _resolve(name, path.name == "__init__.py", node)
                candidates = [f"{target}.{a.name}" for a in node.names] + [target]
                targets.update(c for c in candidates if c in modules and c != name)
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                # disinfo_clf.serve needs the optional [serve] extra: the CLI imports it when asked to serve.
                inner = [n for n in ast.walk(node) if isinstance(n, ast.ImportFrom) and n.level
                         and not (n.module or "").startswith(OPTIONAL)]
                assert not inner, f"{path}:{inner[0].lineno} imports a module of the package inside a function"
        edges[name] = targets
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in edges[node]:
            if state.get(nxt) == 1 and not nxt.startswith(node + ".") and not node.startswith(nxt + "."):
                raise AssertionError("import circle: " + " -> ".join(trail[trail.index(nxt):] + [nxt]))
            if nxt not in state:
                visit(nxt, trail + [nxt])
        state[node] = 2

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])


def test_scripts_and_tests_import_only_what_the_package_has() -> None:
    """A module moved inside the package must take its scripts along: every ``disinfo_clf`` name
    that a script or test imports exists (read from the source, so no script runs)."""
    import importlib

    missing = []
    for path in sorted((*(ROOT / "scripts").glob("*.py"), *(ROOT / "tests").glob("*.py"))):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("disinfo_clf"):
                names = [(node.module, alias.name) for alias in node.names]
            elif isinstance(node, ast.Import):
                names = [(alias.name, None) for alias in node.names if alias.name.startswith("disinfo_clf")]
            else:
                continue
            for module_name, attribute in names:
                try:
                    module = importlib.import_module(module_name)
                except ImportError as exc:
                    missing.append(f"{path.name}: {module_name} ({exc})")
                    continue
                if attribute is not None and not hasattr(module, attribute):
                    try:
                        importlib.import_module(f"{module_name}.{attribute}")
                    except ImportError:
                        missing.append(f"{path.name}: {module_name}.{attribute}")
    for path in sorted((ROOT / "scripts").glob("*.sh")):  # python -c "..." lines in shell scripts
        for module_name, names in re.findall(r"from (disinfo_clf[\w.]*) import ([\w, ]+)", path.read_text(encoding="utf-8")):
            try:
                module = importlib.import_module(module_name)
            except ImportError as exc:
                missing.append(f"{path.name}: {module_name} ({exc})")
                continue
            imported = [name.split(" as ")[0].strip() for name in names.split(",")]
            missing += [f"{path.name}: {module_name}.{name}" for name in imported if name and not hasattr(module, name)]
    assert not missing, "imports of names the package no longer has:\n" + "\n".join(missing)
