"""House rule 2: only pages/, app.py and dashboard/ui/ import Streamlit."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_only_the_ui_layer_imports_streamlit() -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for path in sorted((ROOT / "dashboard").rglob("*.py"))
        if "ui" not in path.relative_to(ROOT / "dashboard").parts[:1] and "streamlit" in _imports(path)
    ]
    assert offenders == [], f"Streamlit imported outside pages/ and dashboard/ui/: {offenders}"


def test_the_check_sees_streamlit_in_the_ui_module() -> None:
    # guards the scan itself: the one allowed module does import it
    assert "streamlit" in _imports(ROOT / "dashboard" / "ui" / "__init__.py")


def test_logic_imports_without_streamlit_installed_in_path() -> None:
    import subprocess
    import sys

    code = (
        "import sys, importlib, pkgutil\n"
        "sys.modules['streamlit'] = None  # any import of streamlit now fails\n"
        "import dashboard\n"
        "for m in pkgutil.walk_packages(dashboard.__path__, 'dashboard.'):\n"
        "    if m.name.startswith('dashboard.ui') or m.name == 'dashboard.__main__':\n"
        "        continue\n"
        "    importlib.import_module(m.name)\n"
        "print('ok')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"
