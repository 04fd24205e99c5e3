"""nbval executes every chapter in CI (`pytest --nbval-lax book`). The notebooks it executed are written out here,
cell outputs and all, so that the book is built from these executions (tests/conftest.py's ``executed_chapters``)
instead of executing every chapter a second time.

They are written into the folder named by ``$COMPANION_NBVAL_EXECUTED`` (tests/conftest.py sets it to a fresh folder
per session); without it, nothing is written.
"""

import os
from pathlib import Path

import nbformat

FOLDER_ENV = "COMPANION_NBVAL_EXECUTED"
_done: dict[str, int] = {}  # notebook path -> code cells executed so far in this session


def pytest_runtest_makereport(item, call):
    folder = os.environ.get(FOLDER_ENV)
    outputs = getattr(item, "test_outputs", None)
    if call.when != "call" or not folder or not hasattr(item, "cell_num"):
        return
    notebook = item.parent.nb  # nbval's own copy of the notebook: give its cell what the kernel printed
    item.cell.outputs = list(outputs or [])
    item.cell.execution_count = item.cell_num + 1
    path = str(item.parent.fspath)
    _done[path] = _done.get(path, 0) + 1
    if _done[path] == sum(cell.cell_type == "code" for cell in notebook.cells):
        Path(folder).mkdir(parents=True, exist_ok=True)
        nbformat.write(notebook, Path(folder) / Path(path).name)
