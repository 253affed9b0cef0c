"""Checkpoints, caches and weights files are untrusted input: every ``torch.load`` in the source
tree must pass ``weights_only=True``, so that a file cannot run code when it is read.

HTML and LaTeX escaping of user strings are tested in ``tests/reports`` (test_html.py,
test_report_sections.py, test_table.py).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("benchmarks", "models", "metrics", "reports", "tests")


def unsafe_loads(source: str, filename: str = "<source>") -> list[int]:
    """Line numbers of ``torch.load(...)`` calls in ``source`` without ``weights_only=True``.

    Parsed, not grepped, so that line breaks and argument order do not matter; a call through
    another name (``from torch import load``) is flagged as well.
    """
    lines = []
    for node in ast.walk(ast.parse(source, filename)):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        is_torch_load = (
            (isinstance(func, ast.Attribute) and func.attr == "load"
             and isinstance(func.value, ast.Name) and func.value.id == "torch")
            or (isinstance(func, ast.Name) and func.id == "load"
                and "from torch import load" in source))
        safe = any(k.arg == "weights_only" and isinstance(k.value, ast.Constant)
                   and k.value.value is True for k in node.keywords)
        if is_torch_load and not safe:
            lines.append(node.lineno)
    return lines


def test_the_checker_flags_unsafe_calls_and_passes_safe_ones():
    assert unsafe_loads("import torch\ntorch.load(path)\n") == [2]
    assert unsafe_loads("torch.load(path, weights_only=False)") == [1]
    assert unsafe_loads("torch.load(\n  path,\n  map_location='cpu',\n  weights_only=True)") == []
    assert unsafe_loads("from torch import load\nload(path)") == [2]
    assert unsafe_loads("np.load(path)\njson.load(f)") == []


def test_every_torch_load_in_the_source_tree_passes_weights_only_true():
    files = [path for folder in SOURCES for path in sorted((ROOT / folder).rglob("*.py"))]
    assert len(files) > 50  # the walk found the tree
    offenders = [f"{path.relative_to(ROOT)}:{line}" for path in files
                 for line in unsafe_loads(path.read_text(encoding="utf-8"), str(path))]
    assert offenders == [], f"torch.load without weights_only=True: {offenders}"
