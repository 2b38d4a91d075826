"""The documentation site builds with ``mkdocs build --strict`` (every page, link, snippet
and API entry resolves; the quickstart notebook renders with its outputs), and the README's
Python example is the file the docs include and that was measured."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_the_docs_build_strictly(tmp_path):
    mkdocs = Path(sys.executable).parent / "mkdocs"
    if not mkdocs.is_file():
        pytest.skip("mkdocs is not installed (pip install -e '.[docs]')")
    done = subprocess.run([str(mkdocs), "build", "--strict", "-d", str(tmp_path / "site")], cwd=ROOT,
                          capture_output=True, text=True, timeout=600, env={**__import__("os").environ,
                                                                           "NO_MKDOCS_2_WARNING": "1"})
    assert done.returncode == 0, done.stderr[-4000:]
    site = tmp_path / "site"
    api = (site / "api" / "index.html").read_text()
    for module in ("jpinn.problems", "jpinn.train", "jpinn.optim", "jpinn.loggers", "jpinn.run"):
        assert f'id="{module}"' in api, module
    notebook = (site / "quickstart-notebook" / "index.html").read_text()
    assert notebook.count("<img") >= 1  # the stored figures are rendered
    quickstart = (site / "quickstart" / "index.html").read_text()
    assert "build_loss" in quickstart and "--8&lt;--" not in quickstart  # the example file, included
    shutil.rmtree(site)


def test_the_readme_example_is_the_measured_file():
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"```python\n(.*?)```", readme, re.S).group(1)
    example = (ROOT / "docs" / "example.py").read_text()
    assert block.strip() in example and example.strip().endswith(block.strip())
    # the title and one line of what jpinn is, then the two commands, before anything else
    lines = readme.splitlines()
    assert lines[0] == "# jpinn" and lines[1] == "" and lines[3] == ""
    assert lines[4] == "```bash" and "jpinn train" in lines[5] and "pytest" in lines[6] and lines[7] == "```"
