"""The experiment the book exists for: what the Keras 3 override costs on a real pretrained base.

From the same phase-1 weights (the recipe's own phase 1, kept by :mod:`companion.training.runner`), the recipe is fine-tuned
as written and with the remedy (every BatchNormalization layer ``trainable=False``) under each Keras variant, each
in its own process. Each seed is a pair: both runs start from the same weights, see the same batches in the same
order (:meth:`companion.training.runner.Data.paired`) and the same random seed, so the per-seed difference is what the way of
fine-tuning changed, and the mean over seeds has a 95% t interval (:mod:`companion.core.statistics`). Each run records
validation accuracy after the first few batches and at its end, and how many BatchNormalization layers' moving
statistics moved. How large it is (variants, seeds, batches, validation images, shorter phase 1s) is the profile's
:class:`companion.core.profiles.ExperimentPlan` for the recipe.

The two ways compare two regimes that depend on the variant: as written, BN statistics are updated where the
variant overrides ``training=False`` and fixed where it does not, and ``gamma``/``beta`` train in both; the remedy
fixes both. Where ``training=False`` kept the statistics, as written *is* the tutorials' intent (statistics fixed,
``gamma``/``beta`` trained), so :meth:`Experiment.override_cost` measures the override alone against it.

The parent process (the pinned Keras) trains or resumes phase 1 and keeps its weights as plain arrays; each child
(:func:`column_in_child`, run under a variant by :mod:`companion.core.child`) reads the same data and the kept
phase 1 (:func:`companion.training.runner.kept_phase1`), fine-tunes, and returns its results. A variant's column is kept in the cache folder under a key of
the phase-1 weights' hash, the variant, the plan and the code.
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np

from companion.checks import ways as ways_module
from companion.checks.ways import Way
from companion.core import cache, child, profiles, statistics, timing, variants
from companion.core.profiles import ExperimentPlan, Profile
from companion.core.statistics import Finding, PairedDifference
from companion.core.tables import FactTable
from companion.training import runner
from companion.tutorials import recipes, setups
from companion.tutorials.recipes import Recipe
from companion.tutorials.results import FineTuneResult, Phase1Result


def ways(recipe: Recipe) -> tuple[Way, Way]:
    """The two ways of fine-tuning the experiment compares: the recipe as written, and the same with the remedy
    (one change: its call of the base stays as written)."""
    return recipe.way, ways_module.with_remedy(recipe.way)


@dataclasses.dataclass
class Column:
    """One Keras variant's fine-tuning runs: way -> one result per seed (in the order of ``seeds``)."""

    variant: str
    versions: dict
    runs: dict[Way, list[FineTuneResult]]
    seconds: float

    @classmethod
    def from_dict(cls, raw: dict) -> Column:
        return cls(raw["variant"], raw["versions"],
                   {ways_module.by_key(way): [FineTuneResult.from_dict(r) for r in results]
                    for way, results in raw["runs"].items()},
                   raw["seconds"])

    def to_dict(self) -> dict:
        return {"variant": self.variant, "versions": self.versions, "seconds": self.seconds,
                "runs": {way.key: [r.to_dict() for r in results] for way, results in self.runs.items()}}

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
    phase1: Phase1Result | None  # None where the plan runs nothing and no phase 1 was given
    columns: dict[str, Column]  # variant name -> its runs (none where the plan runs nothing)

    @property
    def seeds(self) -> tuple[int, ...]:
        return self.plan.seeds

    @property
    def written(self) -> Way:
        """The recipe's own way of fine-tuning."""
        return ways(recipes.get(self.recipe))[0]

    @property
    def remedied(self) -> Way:
        """The same with the remedy."""
        return ways(recipes.get(self.recipe))[1]

    @property
    def points(self) -> list[int | str]:
        """Where accuracy is compared: after each early batch count, and at the end of the run ("end")."""
        return [*self.plan.early_batches, "end"]

    def where(self, point: int | str) -> str:
        """A point as a table's column says it: "after 2 batches", "at the end"; over more than one epoch of the same
        batches, "after epoch 2 (8 batches)" where an epoch ends, "at the end (epoch 10)"."""
        epochs, batches = self.plan.epochs, self.plan.batches
        if point == "end":
            return "at the end" if epochs == 1 else f"at the end (epoch {epochs})"
        if epochs > 1 and batches and point % batches == 0:
            return f"after epoch {point // batches} ({_batches(point)})"
        return f"after {_batches(point)}"

    def accuracy(self, variant: str, way: Way, point: int | str) -> list[float]:
        """Validation accuracy per seed, after ``point`` batches (an int) or at the end of the run ("end")."""
        results = self.columns[variant].runs[way]
        if point == "end":
            return [r.validation_accuracy for r in results]
        return [next(p.validation_accuracy for p in r.early if p.batches == point) for r in results]

    def remedy_gain(self, variant: str, point: int | str) -> PairedDifference:
        """In points: the remedy's accuracy minus the accuracy as written, paired by seed, with its 95% interval
        (positive: fine-tuning as written cost accuracy)."""
        return statistics.paired_difference(self.accuracy(variant, self.written, point),
                                            self.accuracy(variant, self.remedied, point)).scaled(100)

    def course(self, variant: str) -> str:
        """What fine-tuning as written cost against the remedy under ``variant`` from the first point to the end of
        the run, and whether a cost lasted, faded or was never detected: two sentences from the paired findings, for a
        page to glue."""
        gains = {point: self.remedy_gain(variant, point) for point in self.points}
        first, end = gains[self.points[0]].finding, gains["end"].finding
        cells = "; ".join(f"{self.where(point)}, {cost_cell(gain)}" for point, gain in gains.items())
        if Finding.ONE_SEED in (first, end):
            verdict = "With one seed there is no interval, so whether a cost lasted is not measured."
        elif end is Finding.POSITIVE:
            verdict = "The cost lasted to the end of the run."
        elif end is Finding.NEGATIVE:
            verdict = "At the end of the run the remedy cost accuracy instead."
        elif first is Finding.POSITIVE:
            verdict = (f"The cost detected {self.where(self.points[0])} was no longer detected at the end of the run, "
                       "at this sample size.")
        elif any(gain.finding is Finding.POSITIVE for gain in gains.values()):
            verdict = "A cost was detected during the run and no longer at its end, at this sample size."
        else:
            verdict = "No cost was detected at any point, at this sample size."
        return (f"Under {self.columns[variant].label}, what fine-tuning as written cost against the remedy, in points "
                f"of validation accuracy: {cells}. {verdict}")

    def override_cost(self, variant: str, reference: str, point: int | str) -> PairedDifference:
        """In points: as written under ``reference`` (where ``training=False`` kept the statistics) minus as written
        under ``variant``, paired by seed (same phase-1 weights, same batches): the override alone, with
        ``gamma``/``beta`` trained on both sides."""
        return statistics.paired_difference(self.accuracy(variant, self.written, point),
                                            self.accuracy(reference, self.written, point)).scaled(100)

    def bn_layers_moved(self, variant: str, way: Way) -> list[int]:
        return [r.bn_layers_moved for r in self.columns[variant].runs[way]]

    def overridden(self) -> list[str]:
        """The variants on which fine-tuning as written moved BN statistics (the override)."""
        return [name for name in self.columns if max(self.bn_layers_moved(name, self.written)) > 0]

    def kept_statistics(self) -> list[str]:
        """The variants on which ``training=False`` kept the statistics: as written there is the tutorials' intent
        (statistics fixed, ``gamma``/``beta`` trained)."""
        return [name for name in self.columns if name not in self.overridden()]

    def reference(self) -> str | None:
        """The variant the override is measured against: the first that kept the statistics (None: none did)."""
        kept = self.kept_statistics()
        return kept[0] if kept else None

    def _regime(self, variant: str, way: Way) -> tuple[str, str]:
        """What fine-tuning did to the base's BN layers, from the runs' counts: statistics, gamma/beta."""
        run = self.columns[variant].runs[way][0]
        return ("updated" if max(self.bn_layers_moved(variant, way)) else "fixed",
                "trained" if run.bn_layers_trainable else "frozen")

    def table(self) -> FactTable:
        """Per variant: what each way did to BN, and the remedy's paired gain at each point with its interval."""
        header = ["Keras", "as written: BN statistics, gamma/beta", "remedy: BN statistics, gamma/beta",
                  *(self.where(p) for p in self.points)]
        rows = [[column.label, ", ".join(self._regime(name, self.written)),
                 ", ".join(self._regime(name, self.remedied)),
                 *(cost_cell(self.remedy_gain(name, p)) for p in self.points)]
                for name, column in self.columns.items()]
        return FactTable(header, rows, caption=self._not_run() or f"{self.recipe}, phase 1 of {self.phase1_epochs} "
                         f"epochs, {len(self.seeds)} seeds: what fine-tuning as written cost against the remedy, "
                         f"{COST_CELLS}")

    def _not_run(self) -> str:
        """A caption for the tables of an experiment that ran under no variant (the plan says why), else ""."""
        return "" if self.columns else f"not run under this profile: {self.plan.why}"

    def power_table(self) -> FactTable:
        """Per variant and point: how much the seeds' paired differences spread, the difference this many seeds
        detect four times in five (a two-sided paired t test at 95%), and how many seeds 2 points would need."""
        rows = []
        for name, column in self.columns.items():
            for point in self.points:
                gain = self.remedy_gain(name, point)
                detectable, needed = gain.detectable(), gain.pairs_needed(DETECTED)
                rows.append([column.label, self.where(point), gain.n, "" if gain.sd is None else f"{gain.sd:.1f}",
                             "" if detectable is None else f"{detectable:.1f}",
                             "more than 1000" if gain.sd is not None and needed is None else needed or ""])
        return FactTable(["Keras", "accuracy", "pairs", "spread of the paired differences (SD, points)",
                          f"detected {statistics.POWER:.0%} of the time from (points)",
                          f"pairs needed for {DETECTED:g} points"], rows,
                         caption=self._not_run() or "the power of the remedy's paired comparison, from the spread "
                                 "its seeds showed here")

    def override_table(self) -> FactTable:
        """The override alone: as written under each overridden variant against as written under the reference."""
        reference = self.reference()
        rows = [[self.columns[name].label, self.columns[reference].label,
                 *(cost_cell(self.override_cost(name, reference, p)) for p in self.points)]
                for name in self.overridden()] if reference else []
        return FactTable(["as written under", "against as written under", *(self.where(p) for p in self.points)], rows,
                         caption="what the override cost: as written where it overrode training=False against as "
                                 f"written where training=False kept the statistics, {COST_CELLS}")

    def accuracy_table(self) -> FactTable:
        """Per variant and way: validation accuracy at each point (mean over the seeds, then each seed)."""
        rows = [[column.label, way.label, *(_mean_and_seeds(self.accuracy(name, way, p)) for p in self.points)]
                for name, column in self.columns.items() for way in column.runs]
        return FactTable(["Keras", "fine-tuning", *(self.where(p) for p in self.points)], rows,
                         caption=self._not_run()
                         or f"validation accuracy: mean (seeds {', '.join(map(str, self.seeds))})")

    def bn_table(self) -> FactTable:
        """Per variant and way: how many of the base's BN layers moved their statistics (the distinct counts over
        the seeds: the same in every seed, since which layers run in training mode does not depend on the seed)
        and how many were trainable (their gamma and beta train)."""
        rows = [[column.label, way.label, ", ".join(map(str, sorted(set(self.bn_layers_moved(name, way))))),
                 column.runs[way][0].bn_layers_trainable, len(column.runs[way][0].bn_layers)]
                for name, column in self.columns.items() for way in column.runs]
        return FactTable(["Keras", "fine-tuning", "BN layers whose statistics moved", "BN layers trainable",
                          "BN layers in the base"], rows)

    def plan_table(self) -> FactTable:
        """How large the experiment is under the page's profile, and why (the plan's own reason)."""
        plan = self.plan
        if not plan.runs:
            return FactTable(["the paired experiment", "under this profile"], [
                ["pairs of runs (one per seed)", "none"], ["why", plan.why]])
        return FactTable(["the paired experiment", "under this profile"], [
            ["pairs of runs (one per seed)", len(self.seeds)],
            ["fine-tuning per run", _fine_tuning_per_run(plan)],
            ["accuracy measured", ", ".join(self.where(p) for p in self.points)],
            ["validation images per accuracy", "all" if plan.validation_images is None else plan.validation_images],
            ["phase 1", f"{self.phase1_epochs} epochs, validation accuracy {self.phase1.validation_accuracy:.3f}"],
            ["why these sizes", plan.why]])

    def values(self, prefix: str = "exp") -> dict:
        """The numbers the chapter glues, per variant (``keras``, ``keras_nightly``, ``tf_keras``), at the first and
        last early point and at the end: mean accuracy both ways (what it cost is in :meth:`table`; the plan's sizes
        in :meth:`plan_table`)."""
        first, last = self.plan.early_batches[0], self.plan.early_batches[-1]
        values = {f"{prefix}_seeds": len(self.seeds), f"{prefix}_first_batches": first,
                  f"{prefix}_last_batches": last, f"{prefix}_phase1": self.phase1.validation_accuracy,
                  f"{prefix}_phase1_epochs": self.phase1_epochs}
        tags = ((first, "first"), (last, "last"), ("end", "end"))
        for name in self.columns:
            key = f"{prefix}_{name.replace('-', '_')}"
            for point, tag in tags:
                values[f"{key}_written_{tag}"] = float(np.mean(self.accuracy(name, self.written, point)))
                values[f"{key}_remedy_{tag}"] = float(np.mean(self.accuracy(name, self.remedied, point)))
            values[f"{key}_moved_written"] = max(self.bn_layers_moved(name, self.written))
        values[f"{prefix}_overridden_count"] = len(self.overridden())
        values[f"{prefix}_kept_count"] = len(self.kept_statistics())
        return values


def phase1_table(experiments: list[Experiment]) -> FactTable:
    """The same pairs from phase 1s of different lengths: how the remedy's gain depends on how well phase 1 trained
    the head (the variants both experiments ran)."""
    points = experiments[0].points
    shared = [n for n in experiments[0].columns if all(n in e.columns for e in experiments)]
    rows = [[e.phase1_epochs, f"{e.phase1.validation_accuracy:.3f}", e.columns[name].label,
             *(cost_cell(e.remedy_gain(name, p)) for p in points)] for e in experiments for name in shared]
    return FactTable(["phase 1 epochs", "validation accuracy after phase 1", "Keras",
                      *(experiments[0].where(p) for p in points)],
                     rows, caption=f"what fine-tuning as written cost against the remedy, {COST_CELLS}")


def cost_cell(gain: PairedDifference) -> str:
    """What fine-tuning as written cost, from the remedy's paired gain in points, as a table cell: "costs 0.8 (0.3 to
    1.3)" where the 95% interval lies above zero, "gains ..." where below, "none detected (+0.2; -0.4 to +0.8)"
    where it holds zero (at this sample size), "costs 0.8 (the same in all 3 seeds)" where every seed agreed (a
    zero-width interval would read as certainty), "+0.8 (one seed: no interval)"."""
    finding = gain.finding
    if gain.low is not None and gain.high - gain.low < 1e-9:  # every seed gave the same difference
        said = "costs" if gain.mean > 0 else "gains" if gain.mean < 0 else "none"
        return f"{said} {abs(gain.mean):.1f} (the same in all {gain.n} seeds)".replace("none 0.0", "none")
    if finding is Finding.POSITIVE:
        return f"costs {gain.mean:.1f} ({gain.low:.1f} to {gain.high:.1f})"
    if finding is Finding.NEGATIVE:
        return f"gains {-gain.mean:.1f} ({-gain.high:.1f} to {-gain.low:.1f})"
    if finding is Finding.NO_DIFFERENCE:
        return f"none detected ({gain.mean:+.1f}; {gain.low:+.1f} to {gain.high:+.1f})"
    return f"{gain.mean:+.1f} ({Finding.ONE_SEED.value})"


# The difference, in points of validation accuracy, the experiment should be able to detect (its power table).
DETECTED = 2.0

# What a cell of the cost tables says, for their captions.
COST_CELLS = ("in points of validation accuracy: the mean of the paired differences over the seeds with its 95% "
              "interval; \"none detected\" where the interval holds zero, at this sample size")


def _fine_tuning_per_run(plan: ExperimentPlan) -> str:
    if plan.batches is None:
        return "one epoch" if plan.epochs == 1 else f"{plan.epochs} epochs"
    if plan.epochs == 1:
        return _batches(plan.batches)
    total = _batches(plan.epochs * plan.batches)
    return f"{plan.epochs} epochs of the same {_batches(plan.batches)}, in the same order ({total})"


def _batches(count: int) -> str:
    return "1 batch" if count == 1 else f"{count} batches"


def _mean_and_seeds(values: list[float]) -> str:
    return f"{np.mean(values):.3f} ({', '.join(f'{v:.3f}' for v in values)})"


def run_child(name: str, arguments: dict, progress=None) -> Column:
    """Fine-tune under variant ``name`` in a child process (:func:`column_in_child`); ``progress`` (a tqdm bar)
    advances per finished run."""
    env = variants.environment(variants.get(name))
    env.pop(profiles.PROFILE_ENV, None)  # the child gets its profile explicitly
    started = time.perf_counter()
    try:
        raw = child.call("companion.training.experiment:column_in_child", env,
                         on_step=None if progress is None else lambda: progress.update(1), **arguments)
    except child.ChildFailed as failed:
        raise RuntimeError(f"the experiment failed under {name}:\n{failed.stderr[-4000:]}") from None
    return Column.from_dict({**raw, "variant": name, "seconds": time.perf_counter() - started})


def run(recipe: Recipe, profile: Profile, seed: int = 0, phase1_epochs: int | None = None,
        names: list[str] | None = None, progress: bool = True, checkpoints: Path | None = None,
        batch_size: int | None = None, phase1: runner.Phase1 | None = None,
        plan: ExperimentPlan | None = None) -> Experiment:
    """The profile's experiment for ``recipe`` (``plan`` where given, such as the profile's plan over a whole
    fine-tuning, :meth:`companion.core.profiles.Profile.lasting_for`): phase 1, then every planned variant's column.

    Phase 1 is ``phase1`` where given (a tutorial page's, :attr:`companion.pages.tutorial.Page.trained_phase1`),
    else the runner's for the setup, resumed where it was kept (trained eagerly where the plan's runs are). With
    ``phase1_epochs`` other than the setup's, phase 1 runs that long instead (kept apart) and only the plan's first
    variant fine-tunes from it, unless ``names`` says otherwise.
    """
    from tqdm.auto import tqdm

    plan = plan or profile.experiment_for(recipe)
    if plan.recipe != recipe.name:
        raise ValueError(f"the plan is for {plan.recipe!r}, not for {recipe.name!r}")
    batch_size = batch_size or recipe.batch_size
    s = setups.setup(recipe, profile)
    own = phase1_epochs is None or phase1_epochs == s.phase1_epochs
    s = s if own else dataclasses.replace(s, phase1_epochs=phase1_epochs)
    if not plan.runs:  # the profile leaves it out (the plan says why): nothing to train
        return Experiment(recipe.name, dict(s.rows()), plan, s.phase1_epochs, phase1 and phase1.result, {})
    names = names or list(plan.variants if own else plan.variants[:1])
    d = runner.load_data(s, batch_size, seed)
    key = runner.run_key(s, d, seed, batch_size)
    checkpoints = checkpoints or runner.checkpoint_dir(s, seed)
    # A kept folder is emptied when its key changes: a shorter phase 1 keeps its own, next to the chapter's.
    suffix = "" if own else f"-{s.phase1_epochs}-epochs"
    if phase1 is None:  # the runner's, or a tutorial page's (runner.offer_phase1)
        kept_phase1 = runner.phase1_folder(s, d, seed, batch_size, checkpoints, suffix)
        phase1, _ = runner.phase1_or_resume(s, d, seed, kept_phase1, run_eagerly=plan.eager)
    elif not own:
        raise ValueError("a given phase 1 is the setup's own: leave phase1_epochs unset")
    else:  # the children read it from a folder of its own, next to the runner's
        kept_phase1 = cache.Folder(checkpoints / "phase1-given", {**key, "given": True})
        runner.keep_phase1(kept_phase1, phase1)
    phase1_sha256 = kept_phase1.sha256("phase1.npz")
    arguments = {"profile": profile.to_json(), "plan": dataclasses.asdict(plan), "phase1_epochs": s.phase1_epochs,
                 "data_seed": seed, "batch_size": batch_size, "phase1_folder": str(kept_phase1.path)}
    runs_per_column = len(plan.seeds) * len(ways(recipe))

    # Each plan keeps its columns apart: a folder is emptied when its key (which holds the plan) changes.
    over = "" if plan.epochs == 1 else f"-over-{plan.epochs}-epochs"

    def column(name: str) -> Column:
        folder = cache.cache_dir() / "experiment" / f"{runner.checkpoint_dir(s, seed).name}{suffix}{over}" / name
        kept = cache.Folder(folder, {**key, "phase1": phase1_sha256, "variant": repr(variants.get(name)),
                                     "plan": dataclasses.asdict(plan)})
        raw = kept.read_json("column.json")
        if raw is not None:
            bar.update(runs_per_column)
            return Column.from_dict(raw)
        found = run_child(name, arguments, bar)
        kept.write_json("column.json", found.to_dict())
        return found

    with tqdm(total=runs_per_column * len(names), desc="fine-tuning runs under each Keras variant",
              disable=not progress) as bar, timing.phase("experiment"):
        # Two variants at a time (one bar, advanced by every run): their children's start-up overlaps.
        columns = dict(zip(names, child.two_at_a_time(column, names, "Keras variants", progress=False)))
    return Experiment(recipe.name, dict(s.rows()), plan, s.phase1_epochs, phase1.result, columns)


def column_in_child(profile: str, plan: dict, phase1_epochs: int, data_seed: int, batch_size: int,
                    phase1_folder: str) -> dict:
    """In a variant's child process (:func:`run_child`): for every seed of ``plan``, both ways from the kept phase 1
    on that seed's batches; what it returns is a :class:`Column`'s runs and versions."""
    plan = ExperimentPlan.from_dict(plan)
    chosen = recipes.get(plan.recipe)
    parsed = Profile.from_json(profile)
    s = dataclasses.replace(setups.setup(chosen, parsed), phase1_epochs=phase1_epochs)
    d = runner.load_data(s, batch_size, data_seed)
    phase1 = runner.kept_phase1(cache.Folder.existing(Path(phase1_folder)))
    if phase1 is None:
        raise FileNotFoundError(f"no readable phase 1 in {phase1_folder}")
    column = {way.key: [] for way in ways(chosen)}
    for seed in plan.seeds:
        pair = d.paired(seed, plan.batches, plan.validation_images, batch_size)
        for way in ways(chosen):
            # The plan's epochs over the pair's batches: both runs of the pair see the same batches in the same order.
            column[way.key].append(runner.fine_tune(
                s, way, phase1, pair, seed, plan.early_batches, epochs=plan.epochs, verbose=0, curves=False,
                run_eagerly=plan.eager).to_dict())
            child.step()
    return {"versions": variants.versions(), "runs": column}
