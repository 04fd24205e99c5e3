"""The book's chapters as things to run: find them, execute them with papermill, summarise a run, build the book.

A run of a chapter writes the executed notebook and a JSON summary next to it: the parameters, the time, the fact
outputs, and every value the chapter glued for its prose (glue name -> value), so that scripts, the GPU workflow and
readers can compare a page's numbers across runs without opening the notebook.

The chapters are notebooks of a clone of the book, not part of the installed package: outside a clone, everything
here raises :class:`NotInACloneError`, which says how to get one.
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from companion import PACKAGE
from companion.core import profiles, timing
from companion.core.tables import FactTable
from companion.pages import notebook

ROOT = PACKAGE.parent  # the clone, when the companion runs from one
# Each recipe's own chapter: `companion run RECIPE` runs it.
RECIPE_CHAPTERS = {"MobileNetV2 2019": "mobilenet_v2_2019", "MobileNetV2 2020": "mobilenet_v2_2020",
                   "Xception 2020": "keras_guide_xception_2020"}
# The tutorial pages, which train the tutorials' models on the images, the side-by-side page, which shows their runs,
# and the offline weights' page, about the bases they train on, in the order they run: with two jobs, `companion run
# --all --jobs 2` runs them in one process, and the other chapters in another (tests/conftest.py shares the chapters
# out to its two workers the same way). The 2020 page comes first: the experiment fine-tunes from its phase 1
# (companion.training.runner.offer_phase1) rather than train the same phase 1 again. The guard's chapter, which fits
# the 2020 recipe, runs in the other process, where the matrix it reads is computed: with it, this process would be
# the longer by far in the offline build (the account on the verification page).
TUTORIAL_CHAPTERS = ("mobilenet_v2_2020", "mobilenet_v2_2019", "keras_guide_xception_2020", "side_by_side",
                     "offline_weights")
# The other process runs its chapters in book order, these first: the summary computes the matrix the other chapters
# read (the guard's among them), and meanwhile the tutorial pages' process trains the 2020 page's phase 1, which the
# experiment, computed by the first of these chapters to show it, then fine-tunes from. What two chapters would both compute (a matrix, the packaged
# weights' export) is computed once: the cache's lock makes the second wait for it.
OTHER_CHAPTERS_FIRST = ("summary",)
GLUED = "application/papermill.record/"  # myst-nb's mime prefix for a value glued without display


class ChapterError(ValueError):
    """An unknown chapter, or a chapter that failed or was interrupted; the message says which and where."""


class NotInACloneError(ChapterError):
    """The companion runs from an installed wheel, which holds no chapters."""


def clone() -> Path:
    """The clone of the book the companion runs from (it holds ``_toc.yml``); :class:`NotInACloneError` if none."""
    if not (ROOT / "_toc.yml").is_file():
        from companion.pages import home

        raise NotInACloneError(
            f"the chapters are notebooks in a clone of the book, and this companion is installed without one "
            f"({PACKAGE}): git clone {home.read().repository}, then run `companion` from the clone "
            f"(`make setup` installs it there)")
    return ROOT


def chapters() -> dict[str, Path]:
    """Chapter name -> notebook, in table-of-contents order."""
    import yaml

    root = clone()
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    files = [toc["root"], *(c["file"] for c in toc["chapters"])]
    return {Path(f).name: root / f"{f}.ipynb" for f in files}


def lanes(names: list[str], jobs: int) -> list[list[str]]:
    """The chapters ``names`` shared out to ``jobs`` processes (1 or 2): with two, the tutorial chapters in the order
    of :data:`TUTORIAL_CHAPTERS`, the others in the order given after :data:`OTHER_CHAPTERS_FIRST`; empty lists left
    out."""
    if jobs == 1:
        return [list(names)]
    if jobs != 2:
        raise ChapterError(f"--jobs must be 1 or 2, not {jobs}")
    def order(chosen: tuple[str, ...]):
        return lambda name: chosen.index(find(name).stem) if find(name).stem in chosen else len(chosen)

    tutorials = sorted((name for name in names if find(name).stem in TUTORIAL_CHAPTERS), key=order(TUTORIAL_CHAPTERS))
    others = sorted((name for name in names if name not in tutorials), key=order(OTHER_CHAPTERS_FIRST))
    return [lane for lane in (tutorials, others) if lane]


def find(name: str) -> Path:
    """A chapter by its name or its recipe's name, in any case."""
    known = chapters()
    by_name = {key.lower(): path for key, path in known.items()}
    by_name.update({recipe.lower(): known[chapter] for recipe, chapter in RECIPE_CHAPTERS.items()})
    if name.lower() not in by_name:
        raise ChapterError(f"unknown chapter or recipe {name!r}; valid chapters: {', '.join(known)}; "
                           f"valid recipes: {', '.join(RECIPE_CHAPTERS)}")
    return by_name[name.lower()]


def apply_home(install: str) -> list[str]:
    """Open every chapter's set-up cell (its second code cell) with ``install`` (:meth:`companion.pages.home.Home.install_cell`),
    keeping the ``notebook.start`` lines after it; the chapters changed."""
    import nbformat

    changed = []
    for name, path in chapters().items():
        nb = nbformat.read(path, as_version=4)
        setup = [cell for cell in nb.cells if cell.cell_type == "code"][1]
        start = setup.source[setup.source.index("from companion.pages import notebook"):]
        if setup.source != install + start:
            setup.source = install + start
            nbformat.write(nb, path)
            changed.append(name)
    return changed


def glued_values(nb) -> dict:
    """Every value a notebook glued without displaying it: name -> number or text (figures as "figure")."""
    values = {}
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            name = output.get("metadata", {}).get("scrapbook", {}).get("name")
            if name is None:
                continue
            data = output.get("data", {})
            if f"{GLUED}image/png" in data:
                values[name] = "figure"
                continue
            text = data.get(f"{GLUED}text/markdown", data.get(f"{GLUED}text/plain", ""))
            try:
                values[name] = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                values[name] = text
    return values


@dataclasses.dataclass
class Summary:
    chapter: str
    profile: str
    parameters: dict
    seconds: float
    executed_notebook: str
    completed: bool  # False if the run stopped early (an error, or Ctrl-C)
    stopped_at: str | None  # where it stopped: "cell 7: DatasetError: ..." or "interrupted in cell 7"
    facts: list[str]
    glued: dict
    # Where its time went: seconds per phase (companion.core.timing.PHASES) and "other", the rest.
    phases: dict = dataclasses.field(default_factory=dict)
    # What a tutorial page reached against its profile's accuracy targets (companion.core.profiles.Reached.to_dict).
    targets: list = dataclasses.field(default_factory=list)

    def write(self, folder: Path) -> Path:
        path = folder / f"{Path(self.executed_notebook).stem}.summary.json"
        path.write_text(json.dumps(dataclasses.asdict(self), indent=2))
        return path


def build_account(output: Path, lanes: list[list[str]], seconds: float,
                  reached: list[tuple[str, profiles.Reached]] = ()) -> FactTable:
    """Where a run of several chapters spent its time, from their summaries in ``output``: one row per chapter (its
    lane, seconds, and seconds per phase of :mod:`companion.core.timing`), each lane's total; written to
    ``OUTPUT/build.summary.json`` (with the accuracy targets ``reached``, from :func:`reached_targets`) and returned as
    a table. A chapter without a summary (it did not run) is left out."""
    rows, found = [], {}
    for number, lane in enumerate(lanes, start=1):
        for name in lane:
            path = Path(output) / f"{find(name).stem}.summary.json"
            if not path.is_file():
                continue
            summary = json.loads(path.read_text())
            found[summary["chapter"]] = {"lane": number, "seconds": summary["seconds"],
                                         "phases": summary.get("phases", {})}
    phases = [*timing.PHASES, "other"]
    used = [phase for phase in phases if any(phase in chapter["phases"] for chapter in found.values())]
    for name, chapter in found.items():
        rows.append([name, str(chapter["lane"]), f"{chapter['seconds']:.0f}",
                     *(f"{chapter['phases'].get(phase, 0):.0f}" for phase in used)])
    lane_seconds = [round(sum(c["seconds"] for c in found.values() if c["lane"] == n), 1)
                    for n in range(1, len(lanes) + 1)]
    targets = [{"chapter": chapter, **r.to_dict()} for chapter, r in reached]
    (Path(output) / "build.summary.json").write_text(json.dumps(
        {"seconds": round(seconds, 1), "lanes": lanes, "lane_seconds": lane_seconds, "chapters": found,
         "phases": timing.PHASES, "targets": targets}, indent=2))
    return FactTable(["chapter", "lane", "seconds", *used], rows,
                     caption=f"{seconds / 60:.1f} min in all; each lane's chapters, in seconds: "
                             + ", ".join(f"lane {n} {s:.0f}" for n, s in enumerate(lane_seconds, start=1)))


def reached_targets(output: Path, names: list[str]) -> list[tuple[str, profiles.Reached]]:
    """(chapter, what it reached) for each accuracy target of the chapters ``names``, from their summaries in
    ``output`` (a chapter without a summary, or without targets, gives none)."""
    found = []
    for name in names:
        path = Path(output) / f"{find(name).stem}.summary.json"
        if path.is_file():
            raw = json.loads(path.read_text())
            found += [(raw["chapter"], profiles.Reached.from_dict(target)) for target in raw.get("targets", [])]
    return found


def targets_table(reached: list[tuple[str, profiles.Reached]]) -> FactTable:
    """Every target with its result: the chapter, the stage, what it reached, the published number, the miss the
    profile allows, and whether it was met."""
    return FactTable(["chapter", "stage", "validation", "published", "allowed miss (points)", "target met"],
                     [[chapter, r.target.stage, f"{r.measured:.3f}", f"{r.published:.4g}",
                       f"{r.target.allowed_miss * 100:.0f}", "yes" if r.met else f"no: {r.missed_by:.1f} points short"]
                      for chapter, r in reached],
                     caption="Accuracy targets: how far each page may fall short of its tutorial's published "
                             "validation accuracy under this profile")


def _summary(name: str, profile: str, parameters: dict, started: float, executed: Path, stopped_at=None) -> Summary:
    import nbformat

    nb = nbformat.read(executed, as_version=4) if executed.is_file() else nbformat.v4.new_notebook()
    facts = ["".join(o.get("data", {}).get("text/plain", "") for o in cell.outputs)
             for cell in nb.cells if notebook.is_fact_cell(cell)]
    seconds = round(time.perf_counter() - started, 1)
    glued = glued_values(nb)
    targets = glued.pop(notebook.TARGETS, [])
    return Summary(name, profile, parameters, seconds, str(executed), stopped_at is None, stopped_at, facts,
                   glued, timing.account(_account_file(executed), seconds), targets)


def _account_file(executed: Path) -> Path:
    """Where the chapter's kernel appends its timed phases (:mod:`companion.core.timing`)."""
    return executed.with_suffix(".times.jsonl")


def _failed_cell(executed: Path) -> str:
    """"cell N: Error: message" for the first cell of an executed notebook that holds an error."""
    import nbformat

    nb = nbformat.read(executed, as_version=4)
    for position, cell in enumerate((c for c in nb.cells if c.cell_type == "code"), start=1):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                message = (output.get("evalue") or "").strip().splitlines()
                return f"code cell {position}: {output.get('ename')}: {message[0] if message else ''}"
    return "a cell that left no error output"


def _kernel_manager(log: Path, started: list):
    """A kernel manager whose kernel writes its process's standard error (TensorFlow's native notices, the kernel's
    own complaints when a run is interrupted) to ``log`` instead of the terminal; each manager that launches a kernel
    is appended to ``started``, so that an interrupted run can stop it."""
    from jupyter_client.manager import AsyncKernelManager

    class LoggingKernelManager(AsyncKernelManager):
        async def _async_launch_kernel(self, kernel_cmd, **kw):
            started.append(self)
            with open(log, "ab") as file:  # the kernel process keeps its own copy of the descriptor
                return await super()._async_launch_kernel(kernel_cmd, **{**kw, "stderr": file})

    return LoggingKernelManager


def _stop_kernels(managers: list) -> None:
    """Kill each kernel's process group: the kernel runs in a session of its own (jupyter_client starts it so), with
    the processes it started (a matrix column's child) in its group."""
    for manager in managers:
        pgid = getattr(manager.provisioner, "pgid", None)
        if pgid:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGKILL)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def _execute_interruptibly(execute, kernels: list) -> None:
    """Run ``execute`` (papermill) in a worker thread, so that Ctrl-C reaches this thread as KeyboardInterrupt.

    In the main thread, nbclient replaces Python's SIGINT handler with one that only schedules the kernel's shutdown
    and lets the cell run on (a chapter ran to its end after Ctrl-C); outside it, nbclient installs none. On Ctrl-C
    (or SIGTERM) the kernels are killed, the worker, whose papermill saves the notebook cell by cell, is given time
    to return, and KeyboardInterrupt goes on to the caller."""
    failure: list[BaseException] = []

    def work():
        try:
            execute()
        except BaseException as error:  # handed to the calling thread
            failure.append(error)

    worker = threading.Thread(target=work, name="papermill", daemon=True)
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _interrupt) if in_main else None
    try:
        worker.start()
        while worker.is_alive():
            worker.join(0.2)
    except KeyboardInterrupt:
        _stop_kernels(kernels)
        worker.join(60)
        raise
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, previous)
    if failure:
        raise failure[0]


def run(name: str, profile: str, parameters: dict, output: Path, progress: bool = True) -> Summary:
    """Execute one chapter with papermill under ``profile``; write the executed notebook, its summary, and the
    kernel's own standard error (``NAME.kernel.log``).

    Raises :class:`ChapterError` (after writing them) if a cell fails or the run is interrupted."""
    import papermill

    source = find(name)
    profiles.get(profile)  # fail before starting a kernel
    notebook.validate_parameters({"profile": profile, **parameters})
    output = Path(output).absolute()  # papermill runs the kernel in the chapter's folder
    output.mkdir(parents=True, exist_ok=True)
    executed = output / source.name
    _account_file(executed).unlink(missing_ok=True)
    os.environ[timing.ACCOUNT_ENV] = str(_account_file(executed))  # the kernel inherits it
    started = time.perf_counter()
    kernels: list = []
    try:
        _execute_interruptibly(lambda: papermill.execute_notebook(
            str(source), str(executed), parameters={"profile": profile, **parameters}, cwd=str(source.parent),
            progress_bar=progress, kernel_name="python3",
            kernel_manager_class=_kernel_manager(output / f"{source.stem}.kernel.log", kernels)), kernels)
    except papermill.PapermillExecutionError:
        where = _failed_cell(executed)
        _summary(source.stem, profile, parameters, started, executed, where).write(output)
        raise ChapterError(f"{source.stem} failed in {where} (executed notebook: {executed})") from None
    except KeyboardInterrupt:
        _summary(source.stem, profile, parameters, started, executed, "interrupted").write(output)
        raise ChapterError(f"{source.stem} interrupted; the part that ran is in {executed}") from None
    finally:
        os.environ.pop(timing.ACCOUNT_ENV, None)
    _hide_injected_parameters(executed)
    summary = _summary(source.stem, profile, parameters, started, executed)
    summary.write(output)
    return summary


def _hide_injected_parameters(path: Path) -> None:
    """Papermill's copy of the parameters it injected is plumbing: tag it so that the book leaves it out."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        tags = cell.metadata.get("tags", [])
        if "injected-parameters" in tags and "remove-cell" not in tags:
            cell.metadata["tags"] = [*tags, "remove-cell"]
    nbformat.write(nb, path)


def build_book(profile: str, executed: Path | None = None) -> int:
    """Build the HTML book into ``_build/html``: executing every chapter under ``profile``, or from notebooks
    executed before.

    With ``executed`` (a folder of executed chapters, e.g. written by ``companion run --all`` on a GPU), the sources
    are copied to a staging folder, each chapter replaced by its executed version, and the book built there with
    execution turned off, so that the pages show exactly those runs.
    """
    import os

    import yaml

    root = clone()
    jupyter_book = str(Path(sys.executable).parent / "jupyter-book")
    if executed is None:
        profiles.get(profile)
        return subprocess.call([jupyter_book, "build", str(root)], env={**os.environ, profiles.PROFILE_ENV: profile})
    missing = [path.name for path in chapters().values() if not (executed / path.name).is_file()]
    if missing:
        raise ChapterError(f"{executed} lacks executed chapters: {', '.join(missing)} "
                           "(run them with `companion run --all --output FOLDER`)")
    with tempfile.TemporaryDirectory() as staging:
        site = Path(staging)
        shutil.copy(root / "_toc.yml", site / "_toc.yml")
        shutil.copytree(root / "_static", site / "_static")
        config = yaml.safe_load((root / "_config.yml").read_text())
        config["execute"]["execute_notebooks"] = "off"
        (site / "_config.yml").write_text(yaml.safe_dump(config, sort_keys=False))
        (site / "book").mkdir()
        for path in chapters().values():
            shutil.copy(executed / path.name, site / "book" / path.name)
        return subprocess.call([jupyter_book, "build", str(site), "--path-output", str(root)])
