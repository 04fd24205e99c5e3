"""The ``companion`` command: run chapters, print the version matrix, manage Keras variants, build the book.

    companion chapters                         list the chapters
    companion run keras3_surprise --profile full -p seed 1
    companion run "Xception 2020" --profile offline   a recipe runs as its chapter
    companion recipes "MobileNetV2 2019" "MobileNetV2 2020"   diff two tutorials' recipes
    companion matrix --profile smoke           the Keras version matrix
    companion matrix --releases                the decisive checks under every Keras 3 release and backend
    companion check                            am I affected? the decisive checks on the Keras installed here
    companion variants install                 install keras-nightly and tf-keras next to TensorFlow
    companion variants install --releases      ... and every Keras 3 release and JAX, for the release matrix
    companion benchmark --profile smoke        input pipeline images/s next to training images/s
    companion book                             build the HTML book (executes every chapter)
    companion book --executed runs/            build it from notebooks executed before (e.g. on a GPU)
    companion refresh book/X.ipynb             re-execute a chapter, keep only its fact outputs
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from companion import backbones, notebook, profiles, recipes, variants
from companion.data import DatasetError

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"


def chapters() -> dict[str, Path]:
    """Chapter name -> notebook, in table-of-contents order."""
    import yaml

    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"], *(c["file"] for c in toc["chapters"])]
    return {Path(f).name: ROOT / f"{f}.ipynb" for f in files}


# Each recipe's own chapter: `companion run RECIPE` runs it.
RECIPE_CHAPTERS = {"MobileNetV2 2019": "mobilenet_v2_2019", "MobileNetV2 2020": "mobilenet_v2_2020",
                   "Xception 2020": "xception_2020"}


class UsageError(ValueError):
    pass


def _chapter(name: str) -> Path:
    known = chapters()
    name = RECIPE_CHAPTERS.get(name, name)
    if name not in known:
        raise UsageError(f"unknown chapter or recipe {name!r}; valid chapters: {', '.join(known)}; "
                         f"valid recipes: {', '.join(RECIPE_CHAPTERS)}")
    return known[name]


def build_book(executed: Path | None = None) -> int:
    """Build the HTML book into ``_build/html``: executing every chapter, or from notebooks executed before.

    With ``executed`` (a folder of executed chapters, e.g. written by ``companion run`` on a GPU), the sources are
    copied to a staging folder, each chapter replaced by its executed version, and the book built there with
    execution turned off, so that the pages show exactly those runs.
    """
    import shutil
    import tempfile

    import yaml

    jupyter_book = str(Path(sys.executable).parent / "jupyter-book")
    if executed is None:
        return subprocess.call([jupyter_book, "build", str(ROOT)])
    missing = [path.name for path in chapters().values() if not (executed / path.name).is_file()]
    if missing:
        raise UsageError(f"{executed} lacks executed chapters: {', '.join(missing)} (run them with `companion run`)")
    with tempfile.TemporaryDirectory() as staging:
        site = Path(staging)
        shutil.copy(ROOT / "_toc.yml", site / "_toc.yml")
        config = yaml.safe_load((ROOT / "_config.yml").read_text())
        config["execute"]["execute_notebooks"] = "off"
        (site / "_config.yml").write_text(yaml.safe_dump(config, sort_keys=False))
        (site / "book").mkdir()
        for path in chapters().values():
            shutil.copy(executed / path.name, site / "book" / path.name)
        return subprocess.call([jupyter_book, "build", str(site), "--path-output", str(ROOT)])


def _parameter_value(text: str):
    """`-p seed 1` gives the int 1, `-p profile full` the string 'full' (as papermill's -p does)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def run_chapter(name: str, profile: str, parameters: dict, output_dir: Path) -> dict:
    """Execute one chapter with papermill (progress bar shown); write the executed notebook and a summary."""
    import papermill

    source = _chapter(name)
    profiles.get(profile)  # fail before starting a kernel
    notebook.validate_parameters({"profile": profile, **parameters})
    output_dir.mkdir(parents=True, exist_ok=True)
    executed = output_dir / source.name
    start = time.perf_counter()
    nb = papermill.execute_notebook(
        str(source), str(executed), parameters={"profile": profile, **parameters}, cwd=str(source.parent),
        progress_bar=True, kernel_name="python3",
    )
    facts = [
        "".join(o.get("data", {}).get("text/plain", "") for o in cell.outputs)
        for cell in nb.cells if notebook.is_fact_cell(cell)
    ]
    summary = {
        "chapter": name, "profile": profile, "parameters": parameters, "seconds": round(time.perf_counter() - start, 1),
        "executed_notebook": str(executed), "facts": facts,
    }
    (output_dir / f"{source.stem}.summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def _variants(action: str, names: list[str], with_releases: bool) -> None:
    """``companion variants list|install [NAMES] [--releases]``."""
    for variant in map(variants.get, names or list(variants.VARIANTS)):
        if action == "install":
            variants.install(variant)
        state = "installed" if variants.is_installed(variant) else "not installed"
        print(f"{variant.name:14} {state:14} {variant.description}")
    if with_releases or action == "list":
        from companion import releases

        for release in releases.releases():
            if with_releases and action == "install":
                releases.install(release)
            state = "installed" if releases.is_installed(release) else "not installed"
            print(f"{release.label:44} {state:14} release matrix")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="companion",
        description="Companion of the book 'training versus trainable': run its chapters and checks.",
        epilog="Profiles: " + "; ".join(f"{p.name}: {p.description}" for p in profiles.PROFILES.values()),
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub.add_parser("chapters", help="list the chapters")

    run = sub.add_parser("run", help="execute one chapter with papermill under a profile",
                         description="Execute a chapter; writes the executed notebook and a JSON summary.")
    run.add_argument("chapter", help="chapter name (see `companion chapters`) or recipe name (see `companion recipes`)")
    run.add_argument("--profile", default="smoke", help=f"one of: {', '.join(profiles.PROFILES)} (default smoke)")
    run.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                     help=f"another chapter parameter; valid: {', '.join(n for n in notebook.PARAMETERS if n != 'profile')}")
    run.add_argument("--output", type=Path, default=Path("runs"), help="folder for the results (default ./runs)")

    rec = sub.add_parser("recipes", help="list the tutorials' recipes, show one, or diff two",
                         description="The three tutorials as recipes (typed values); a diff shows where they differ.")
    rec.add_argument("names", nargs="*", metavar="RECIPE",
                     help=f"none: list; one: show it; two: diff them. Valid: {', '.join(repr(n) for n in recipes.RECIPES)}")
    rec.add_argument("--as-written", action="store_true", help="with the tutorials' known bugs, as published")
    rec.add_argument("--only-differences", action="store_true", help="in a diff, only the fields that differ")

    matrix = sub.add_parser("matrix", help="print the Keras version matrix (each variant in its own process)")
    matrix.add_argument("--profile", default="smoke", help=f"one of: {', '.join(profiles.PROFILES)}")
    matrix.add_argument("--releases", action="store_true",
                        help="the release matrix instead: the decisive checks under every Keras 3 release, "
                             "keras-nightly and tf-keras, and on JAX (`companion variants install --releases` first)")

    sub.add_parser("check", help="am I affected? run the decisive checks on the Keras and backend installed here",
                   description="Runs the decisive checks on this environment's Keras and backend (KERAS_BACKEND), "
                               "prints whether base(x, training=False) is overridden during fit, whether it leaks to "
                               "the Dropout after the base, and the remedy for this install. Needs only Keras, numpy "
                               "and the backend.")

    var = sub.add_parser("variants", help="list or install the Keras variants the matrix compares")
    var.add_argument("action", choices=["list", "install"])
    var.add_argument("names", nargs="*", help=f"variants to install (default all): {', '.join(variants.VARIANTS)}")
    var.add_argument("--releases", action="store_true",
                     help="also every Keras 3 release and JAX for the release matrix (pip --no-deps, one folder each)")

    bench = sub.add_parser("benchmark", help="input pipeline images/s next to model training images/s",
                           description="Reads cats_and_dogs_filtered (from $COMPANION_DATA_DIR, or downloaded) at the "
                                       "profile's size and times the pipeline and MobileNetV2 training.")
    bench.add_argument("--profile", default="smoke", help=f"one of: {', '.join(profiles.PROFILES)}")

    book = sub.add_parser("book", help="build the HTML book into _build/html (executes every chapter)",
                          description="Build the HTML book into _build/html. Without --executed every chapter is "
                                      "executed (profile from $COMPANION_PROFILE, default smoke).")
    book.add_argument("--executed", type=Path, default=None, metavar="FOLDER",
                      help="build from these executed chapters instead (from `companion run --output FOLDER`)")

    refresh = sub.add_parser("refresh", help="re-execute chapters and keep only their fact outputs (for committing)")
    refresh.add_argument("notebooks", nargs="+", type=Path)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "chapters":
            for name, path in chapters().items():
                print(f"{name:28} {path.relative_to(ROOT)}")
        elif args.command == "run":
            parameters = {name: _parameter_value(value) for name, value in args.parameter}
            summary = run_chapter(args.chapter, args.profile, parameters, args.output)
            print(f"{summary['chapter']}: {summary['seconds']} s, executed notebook {summary['executed_notebook']}")
            for fact in summary["facts"]:
                print(fact, end="\n\n")
        elif args.command == "recipes":
            chosen = [recipes.get(name) for name in args.names]
            if args.as_written:
                chosen = [r.as_written() for r in chosen]
            if not chosen:
                for recipe in recipes.RECIPES.values():
                    print(f"{recipe.name:18} {recipe.source}")
            elif len(chosen) == 1:
                print(recipes.table(chosen[0]))
            elif len(chosen) == 2:
                print(recipes.diff_table(*chosen, only_differences=args.only_differences))
            else:
                raise UsageError("give one recipe to show or two to diff")
        elif args.command == "matrix" and args.releases:
            from companion import releases

            found = releases.compute()
            print(found.table())
            for label, check, error in found.errors():
                print(f"{label}, {check}: {error}")
        elif args.command == "matrix":
            from companion import matrix

            print(matrix.compute(profiles.get(args.profile)).table())
        elif args.command == "check":
            from companion import check

            return check.main()
        elif args.command == "variants":
            _variants(args.action, args.names, args.releases)
        elif args.command == "benchmark":
            from companion import benchmark

            result = benchmark.run(profiles.get(args.profile))
            print(result.table())
            return 0 if result.ratio >= benchmark.REQUIRED_RATIO else 1
        elif args.command == "book":
            return build_book(args.executed)
        elif args.command == "refresh":
            for path in args.notebooks:
                print(f"executing {path}", flush=True)
                notebook.refresh(path)
    except (UsageError, profiles.UnknownProfileError, notebook.UnknownParameterError,
            variants.UnknownVariantError, variants.VariantNotInstalledError, DatasetError,
            recipes.UnknownRecipeError, backbones.BackboneUnavailableError,
            backbones.BackboneIntegrityError) as error:
        parser.exit(2, f"companion: error: {error}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
