"""The experiment the book exists for: what the Keras 3 override costs on a real pretrained base.

From the same phase-1 weights (the recipe's own phase 1, kept by :mod:`companion.runner`), the recipe is fine-tuned
as written and with the remedy (every BatchNormalization layer ``trainable=False``) under each Keras variant, each
in its own process. Each seed is a pair: both runs start from the same weights, see the same batches in the same
order (:meth:`companion.runner.Data.paired`) and the same random seed, so the per-seed difference is what the way of
fine-tuning changed, and the mean over seeds has a 95% t interval (:mod:`companion.statistics`). Each run records
validation accuracy after the first few batches and at its end, and how many BatchNormalization layers' moving
statistics moved. How large it is (variants, seeds, batches, validation images, shorter phase 1s) is the profile's
:class:`companion.profiles.ExperimentPlan` for the recipe.

The two ways compare two regimes that depend on the variant: as written, BN statistics are updated where the
variant overrides ``training=False`` and fixed where it does not, and ``gamma``/``beta`` train in both; the remedy
fixes both. Where ``training=False`` kept the statistics, as written *is* the tutorials' intent (statistics fixed,
``gamma``/``beta`` trained), so :meth:`Experiment.override_cost` measures the override alone against it.

The parent process (the pinned Keras) trains or resumes phase 1 and writes its weights as plain arrays; each child
(``python -m companion.experiment child ...``, started with a variant's environment) reads the same data and those
arrays, fine-tunes, and writes its results as JSON. A variant's column is kept in the cache folder under a key of
the phase-1 weights' hash, the variant, the plan and the code.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from companion import cache, evidence, profiles, recipes, runner, setups, statistics, variants
from companion.profiles import ExperimentPlan, Profile
from companion.recipes import Recipe
from companion.results import FineTuneResult, Phase1Result
from companion.statistics import Finding, PairedDifference
from companion.tables import FactTable

WAYS = (recipes.AS_WRITTEN, recipes.BN_FROZEN)


def ways(recipe: Recipe) -> dict[str, Recipe]:
    """The two ways of fine-tuning the experiment compares: the recipe as written, and with the remedy."""
    return {recipes.AS_WRITTEN: recipe, recipes.BN_FROZEN: dataclasses.replace(recipe, freeze_batch_norm=True)}


@dataclasses.dataclass
class Column:
    """One Keras variant's fine-tuning runs: way -> one result per seed (in the order of ``seeds``)."""

    variant: str
    versions: dict
    runs: dict[str, list[FineTuneResult]]
    seconds: float

    @classmethod
    def from_dict(cls, raw: dict) -> Column:
        return cls(raw["variant"], raw["versions"],
                   {way: [FineTuneResult.from_dict(r) for r in results] for way, results in raw["runs"].items()},
                   raw["seconds"])

    @property
    def label(self) -> str:
        return f"{self.variant} {self.versions['keras']}"


@dataclasses.dataclass
class Experiment:
    """Per seed, a pair of fine-tuning runs (as written, with the remedy) from the same phase-1 weights on the same
    batches, under each Keras variant of the plan."""

    recipe: str
    setup: dict  # Setup.rows() as a dict
    plan: ExperimentPlan
    phase1_epochs: int
    phase1: Phase1Result
    columns: dict[str, Column]  # variant name -> its runs

    @property
    def seeds(self) -> tuple[int, ...]:
        return self.plan.seeds

    @property
    def points(self) -> list[int | str]:
        """Where accuracy is compared: after each early batch count, and at the end of the run ("end")."""
        return [*self.plan.early_batches, "end"]

    def accuracy(self, variant: str, way: str, point: int | str) -> list[float]:
        """Validation accuracy per seed, after ``point`` batches (an int) or at the end of the run ("end")."""
        results = self.columns[variant].runs[way]
        if point == "end":
            return [r.validation_accuracy for r in results]
        return [next(p.validation_accuracy for p in r.early if p.batches == point) for r in results]

    def remedy_gain(self, variant: str, point: int | str) -> PairedDifference:
        """In points: the remedy's accuracy minus the accuracy as written, paired by seed, with its 95% interval
        (positive: fine-tuning as written cost accuracy)."""
        return statistics.paired_difference(self.accuracy(variant, recipes.AS_WRITTEN, point),
                                            self.accuracy(variant, recipes.BN_FROZEN, point)).scaled(100)

    def override_cost(self, variant: str, reference: str, point: int | str) -> PairedDifference:
        """In points: as written under ``reference`` (where ``training=False`` kept the statistics) minus as written
        under ``variant``, paired by seed (same phase-1 weights, same batches): the override alone, with
        ``gamma``/``beta`` trained on both sides."""
        return statistics.paired_difference(self.accuracy(variant, recipes.AS_WRITTEN, point),
                                            self.accuracy(reference, recipes.AS_WRITTEN, point)).scaled(100)

    def bn_layers_moved(self, variant: str, way: str) -> list[int]:
        return [r.bn_layers_moved for r in self.columns[variant].runs[way]]

    def overridden(self) -> list[str]:
        """The variants on which fine-tuning as written moved BN statistics (the override)."""
        return [name for name in self.columns if max(self.bn_layers_moved(name, recipes.AS_WRITTEN)) > 0]

    def kept_statistics(self) -> list[str]:
        """The variants on which ``training=False`` kept the statistics: as written there is the tutorials' intent
        (statistics fixed, ``gamma``/``beta`` trained)."""
        return [name for name in self.columns if name not in self.overridden()]

    def reference(self) -> str | None:
        """The variant the override is measured against: the first that kept the statistics (None: none did)."""
        kept = self.kept_statistics()
        return kept[0] if kept else None

    def _regime(self, variant: str, way: str) -> tuple[str, str]:
        """What fine-tuning did to the base's BN layers, from the runs' counts: statistics, gamma/beta."""
        run = self.columns[variant].runs[way][0]
        return ("updated" if max(self.bn_layers_moved(variant, way)) else "fixed",
                "trained" if run.bn_layers_trainable else "frozen")

    def table(self) -> FactTable:
        """Per variant: what each way did to BN, and the remedy's paired gain at each point with its interval."""
        header = ["Keras", "as written: BN statistics, gamma/beta", "remedy: BN statistics, gamma/beta",
                  *(_where(p) for p in self.points)]
        rows = [[column.label, ", ".join(self._regime(name, recipes.AS_WRITTEN)),
                 ", ".join(self._regime(name, recipes.BN_FROZEN)),
                 *(_cell(self.remedy_gain(name, p)) for p in self.points)]
                for name, column in self.columns.items()]
        return FactTable(header, rows, caption=f"{self.recipe}, phase 1 of {self.phase1_epochs} epochs: remedy minus "
                         f"as written, in points of validation accuracy, mean over {len(self.seeds)} seeds (95% "
                         "interval)")

    def override_table(self) -> FactTable:
        """The override alone: as written under each overridden variant against as written under the reference."""
        reference = self.reference()
        rows = [[self.columns[name].label, self.columns[reference].label,
                 *(_cell(self.override_cost(name, reference, p)) for p in self.points)]
                for name in self.overridden()] if reference else []
        return FactTable(["as written under", "against as written under", *(_where(p) for p in self.points)], rows,
                         caption="the override's cost: accuracy where training=False kept the statistics minus "
                                 "accuracy where it did not, in points, paired by seed (95% interval)")

    def accuracy_table(self) -> FactTable:
        """Per variant and way: validation accuracy at each point (mean over the seeds, then each seed)."""
        rows = [[column.label, way, *(_mean_and_seeds(self.accuracy(name, way, p)) for p in self.points)]
                for name, column in self.columns.items() for way in column.runs]
        return FactTable(["Keras", "fine-tuning", *(_where(p) for p in self.points)], rows,
                         caption=f"validation accuracy: mean (seeds {', '.join(map(str, self.seeds))})")

    def bn_table(self) -> FactTable:
        """Per variant and way: how many of the base's BN layers moved their statistics (the distinct counts over
        the seeds: the same in every seed, since which layers run in training mode does not depend on the seed)
        and how many were trainable (their gamma and beta train)."""
        rows = [[column.label, way, ", ".join(map(str, sorted(set(self.bn_layers_moved(name, way))))),
                 column.runs[way][0].bn_layers_trainable, len(column.runs[way][0].bn_layers)]
                for name, column in self.columns.items() for way in column.runs]
        return FactTable(["Keras", "fine-tuning", "BN layers whose statistics moved", "BN layers trainable",
                          "BN layers in the base"], rows)

    def values(self, prefix: str = "exp") -> dict:
        """The numbers and phrases the chapter glues, per variant (``keras``, ``keras_nightly``, ``tf_keras``), at
        the first and last early point and at the end: mean accuracy both ways, and what fine-tuning as written
        cost against the remedy, as a phrase chosen from the paired difference (:func:`cost_phrase`)."""
        first, last = self.plan.early_batches[0], self.plan.early_batches[-1]
        values = {f"{prefix}_recipe": self.recipe, f"{prefix}_seeds": len(self.seeds), f"{prefix}_first_batches": first,
                  f"{prefix}_last_batches": last, f"{prefix}_phase1": self.phase1.validation_accuracy,
                  f"{prefix}_phase1_epochs": self.phase1_epochs, f"{prefix}_why": self.plan.why,
                  f"{prefix}_batches": _batches(self.plan), f"{prefix}_validation_images": _images(self.plan)}
        tags = ((first, "first"), (last, "last"), ("end", "end"))
        for name, column in self.columns.items():
            key = f"{prefix}_{name.replace('-', '_')}"
            values[f"{key}_label"] = column.label
            for point, tag in tags:
                values[f"{key}_written_{tag}"] = float(np.mean(self.accuracy(name, recipes.AS_WRITTEN, point)))
                values[f"{key}_remedy_{tag}"] = float(np.mean(self.accuracy(name, recipes.BN_FROZEN, point)))
                values[f"{key}_cost_{tag}"] = cost_phrase(self.remedy_gain(name, point))
            values[f"{key}_moved_written"] = max(self.bn_layers_moved(name, recipes.AS_WRITTEN))
        reference, overridden = self.reference(), self.overridden()
        values[f"{prefix}_overridden"] = evidence.listing([self.columns[n].label for n in overridden]) or "none"
        values[f"{prefix}_kept"] = evidence.listing([self.columns[n].label for n in self.kept_statistics()]) or "none"
        if reference and overridden:
            values[f"{prefix}_reference_label"] = self.columns[reference].label
            for point, tag in tags:
                values[f"{prefix}_override_{tag}"] = cost_phrase(self.override_cost(overridden[0], reference, point))
        return values


def phase1_table(experiments: list[Experiment]) -> FactTable:
    """The same pairs from phase 1s of different lengths: how the remedy's gain depends on how well phase 1 trained
    the head (the variants both experiments ran)."""
    points = experiments[0].points
    shared = [n for n in experiments[0].columns if all(n in e.columns for e in experiments)]
    rows = [[e.phase1_epochs, f"{e.phase1.validation_accuracy:.3f}", e.columns[name].label,
             *(_cell(e.remedy_gain(name, p)) for p in points)] for e in experiments for name in shared]
    return FactTable(["phase 1 epochs", "validation accuracy after phase 1", "Keras", *(_where(p) for p in points)],
                     rows, caption="remedy minus as written, in points, mean over the seeds (95% interval)")


def cost_phrase(gain: PairedDifference) -> str:
    """What fine-tuning as written cost, from the remedy's paired gain in points: "costs 0.8 points (95% interval
    0.3 to 1.3)" where the interval lies above zero, "gains ..." where below, else "no difference detected"."""
    finding = gain.finding
    if finding is Finding.POSITIVE:
        return f"costs {gain.mean:.1f} points (95% interval {gain.low:.1f} to {gain.high:.1f})"
    if finding is Finding.NEGATIVE:
        return f"gains {-gain.mean:.1f} points (95% interval {-gain.high:.1f} to {-gain.low:.1f})"
    if finding is Finding.NO_DIFFERENCE:
        return (f"no difference detected at this sample size (mean {gain.mean:+.1f} points, 95% interval "
                f"{gain.low:+.1f} to {gain.high:+.1f})")
    return f"{gain.mean:+.1f} points ({Finding.ONE_SEED.value})"


def _where(point: int | str) -> str:
    return "at the end" if point == "end" else f"after {point} batches"


def _cell(gain: PairedDifference) -> str:
    """A table cell: "+0.8 (+0.3 to +1.3)", or "+0.8 (one seed: no interval)"."""
    if gain.low is None:
        return f"{gain.mean:+.1f} ({Finding.ONE_SEED.value})"
    return f"{gain.mean:+.1f} ({gain.low:+.1f} to {gain.high:+.1f})"


def _batches(plan: ExperimentPlan) -> str:
    return "one epoch" if plan.batches is None else f"{plan.batches} batches"


def _images(plan: ExperimentPlan) -> str:
    return "all" if plan.validation_images is None else str(plan.validation_images)


def _mean_and_seeds(values: list[float]) -> str:
    return f"{np.mean(values):.3f} ({', '.join(f'{v:.3f}' for v in values)})"


def _child_command(profile: Profile, recipe: Recipe, phase1_epochs: int, data_seed: int, batch_size: int,
                   phase1: Path) -> list[str]:
    """The child's command line, less ``--out`` (:func:`run_child` adds it)."""
    return [sys.executable, "-m", "companion.experiment", "child", "--profile", profile.to_json(),
            "--recipe", recipe.name, "--phase1-epochs", str(phase1_epochs), "--data-seed", str(data_seed),
            "--batch-size", str(batch_size), "--phase1", str(phase1)]


def run_child(name: str, command: list[str], progress=None) -> Column:
    """Fine-tune under variant ``name`` in a child process; ``progress`` (a tqdm bar) advances per finished run."""
    env = variants.environment(variants.get(name))
    env.pop(profiles.PROFILE_ENV, None)  # the child gets its profile explicitly
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "column.json"
        started = time.perf_counter()
        with subprocess.Popen([*command, "--out", str(out)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) as child:
            for line in child.stdout:
                if line.startswith("finished ") and progress is not None:
                    progress.update(1)
            errors = child.stderr.read()
        if child.returncode != 0:
            raise RuntimeError(f"the experiment failed under {name}:\n{errors[-4000:]}")
        raw = json.loads(out.read_text())
    return Column.from_dict({**raw, "variant": name, "seconds": time.perf_counter() - started})


def run(recipe: Recipe, profile: Profile, seed: int = 0, phase1_epochs: int | None = None,
        names: list[str] | None = None, progress: bool = True, checkpoints: Path | None = None,
        batch_size: int | None = None) -> Experiment:
    """The profile's experiment for ``recipe``: phase 1 (resumed from the recipe's chapter when it ran with the same
    key), then every planned variant's column.

    With ``phase1_epochs`` other than the setup's, phase 1 runs that long instead (kept apart from the chapter's)
    and only the plan's first variant fine-tunes from it, unless ``names`` says otherwise.
    """
    from tqdm.auto import tqdm

    plan = profile.experiment_for(recipe)
    batch_size = batch_size or recipe.batch_size
    s = setups.setup(recipe, profile)
    own = phase1_epochs is None or phase1_epochs == s.phase1_epochs
    s = s if own else dataclasses.replace(s, phase1_epochs=phase1_epochs)
    names = names or list(plan.variants if own else plan.variants[:1])
    d = runner.load_data(s, batch_size, seed)
    key = runner.run_key(s, d, seed, batch_size)
    checkpoints = checkpoints or runner.checkpoint_dir(s, seed)
    # A kept folder is emptied when its key changes: a shorter phase 1 keeps its own, next to the chapter's.
    suffix = "" if own else f"-{s.phase1_epochs}-epochs"
    kept_phase1 = cache.Folder(checkpoints / f"phase1{suffix}", key)
    phase1, _ = runner.phase1_or_resume(s, d, seed, kept_phase1)
    arrays = kept_phase1.file("phase1.npz")
    phase1_sha256 = kept_phase1.sha256("phase1.npz")
    command = _child_command(profile, recipe, s.phase1_epochs, seed, batch_size, arrays)
    columns = {}
    runs_per_column = len(plan.seeds) * len(WAYS)
    with tqdm(total=runs_per_column * len(names), desc="fine-tuning runs under each Keras variant",
              disable=not progress) as bar:
        for name in names:
            folder = cache.cache_dir() / "experiment" / f"{runner.checkpoint_dir(s, seed).name}{suffix}" / name
            kept = cache.Folder(folder, {**key, "phase1": phase1_sha256, "variant": repr(variants.get(name)),
                                         "plan": dataclasses.asdict(plan)})
            raw = kept.read_json("column.json")
            if raw is not None:
                columns[name] = Column.from_dict(raw)
                bar.update(runs_per_column)
                continue
            columns[name] = run_child(name, command, bar)
            kept.write_json("column.json", dataclasses.asdict(columns[name]))
    return Experiment(recipe.name, dict(s.rows()), plan, s.phase1_epochs, phase1.result, columns)


def child(profile: Profile, recipe: Recipe, phase1_epochs: int, data_seed: int, batch_size: int, phase1_path: Path,
          out: Path) -> None:
    """In a variant's process: for every seed, both ways from the phase-1 arrays on that seed's batches."""
    plan = profile.experiment_for(recipe)
    s = dataclasses.replace(setups.setup(recipe, profile), phase1_epochs=phase1_epochs)
    d = runner.load_data(s, batch_size, data_seed)
    with np.load(phase1_path, allow_pickle=False) as stored:
        arrays = [stored[f"arr_{i}"] for i in range(len(stored.files))]
    head = 2  # the Dense(1) layer's kernel and bias come last
    phase1 = runner.Phase1(None, arrays[:-head], arrays[-head:])
    column = {way: [] for way in WAYS}
    for seed in plan.seeds:
        pair = d.paired(seed, plan.batches, plan.validation_images, batch_size)
        for way, variant in ways(recipe).items():
            # One pass over the pair's batches: both runs of the pair see the same batches in the same order.
            column[way].append(dataclasses.asdict(runner.fine_tune(
                s, variant, way, phase1, pair, seed, plan.early_batches, epochs=1, verbose=0)))
            print(f"finished {way} seed {seed}", flush=True)
    out.write_text(json.dumps({"versions": variants.versions(), "runs": column}))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m companion.experiment")
    parser.add_argument("command", choices=["child"])
    parser.add_argument("--profile", required=True, help="the profile, as JSON (Profile.to_json)")
    parser.add_argument("--recipe", required=True)
    parser.add_argument("--phase1-epochs", type=int, required=True)
    parser.add_argument("--data-seed", type=int, required=True)
    parser.add_argument("--batch-size", type=int, required=True)
    parser.add_argument("--phase1", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    child(profiles.Profile.from_json(args.profile), recipes.get(args.recipe), args.phase1_epochs, args.data_seed,
          args.batch_size, args.phase1, args.out)
