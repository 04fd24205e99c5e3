"""One tutorial page: the measuring around the tutorial's own Keras, and the tables, figures and glued values its
chapter shows.

A tutorial chapter writes the tutorial's Keras in its cells (model, freezing, compile, fit, unfreezing, recompile,
fit) and a :class:`Page` measures around it, as :func:`companion.flags.probes.watching` does for the small
examples: :meth:`Page.phase1` and :meth:`Page.fine_tuning` are ``with`` blocks around the chapter's ``fit``, and
:meth:`Page.result` collects what they measured into the same :class:`companion.tutorials.results.RunResult` the
runner returns (:mod:`companion.training.runner`, which trains a recipe from its typed value for ``companion run``
and the experiment). The result is kept, so that the side-by-side chapter shows what the tutorial pages computed
(:meth:`Page.computed`). Values reach the prose through myst-nb ``glue``: :meth:`Page.glue` glues the numbers the
chapters cite, under names that are the same on every tutorial page (``acc_phase1``, ``moved_remedy``...).
"""

from __future__ import annotations

import contextlib
import json
import time
from typing import Iterator

from companion import audit
from companion.checks import ways
from companion.checks.ways import Way
from companion.core import cache, plots, timing
from companion.core.profiles import Reached
from companion.core.tables import FactTable
from companion.core.variants import versions
from companion.flags.walk import children, is_batch_norm, iter_layers
from companion.pages.notebook import TARGETS, Run, glue_figure, glue_values, weights_line
from companion.training import runner
from companion.tutorials import recipes, setups
from companion.tutorials.results import FineTuneResult, History, Phase1Result, RunResult

# A target's stage: which of the recipe's published numbers it is held to, and what the page measured there.
STAGES = {"phase 1": (0, lambda result: result.phase1.validation_accuracy),
          "fine-tuned with the remedy": (1, lambda result: next(
              tuned.validation_accuracy for way, tuned in result.fine_tuning.items() if way.remedy))}


class Page:
    """A tutorial chapter's measuring and display: ``Page("MobileNetV2 2020", run)``."""

    def __init__(self, recipe_name: str, run: Run):
        self.run = run
        self.recipe = recipes.get(recipe_name)
        self.setup = setups.setup(self.recipe, run.profile)
        self.data: runner.Data | None = None
        self.phase1_result: Phase1Result | None = None
        self.trained_phase1: runner.Phase1 | None = None  # phase 1's result and weights, for the experiment
        self.fine_tuned: dict[Way, FineTuneResult] = {}

    def weights_note(self):
        """The line every page that trains on these weights carries (:func:`companion.pages.notebook.weights_line`)."""
        return weights_line([self.setup.weights_label], packaged=self.setup.weights == "packaged")

    def provenance(self, result: RunResult):
        """The page's provenance box (:meth:`companion.pages.notebook.Run.provenance`), with the images the run
        trained and was evaluated on and what their scan found."""
        return self.run.provenance(f"Trained and evaluated on {result.data}.",
                                   f"What the scan of the image files found:\n\n```text\n{result.data_report}\n```")

    def setup_table(self) -> FactTable:
        return FactTable(["setting", "value"], [list(row) for row in self.setup.rows()],
                         caption=f"What {self.recipe.name} runs as under the profile {self.setup.profile!r}")

    @property
    def epochs(self) -> tuple[int, int]:
        """(phase 1, fine-tuning) epochs under the page's profile: the tutorial's own, or the profile's (see
        :meth:`setup_table`)."""
        return self.setup.phase1_epochs, self.setup.phase2_epochs

    def datasets(self):
        """(train, validation, test) as ``tf.data`` datasets of batches of (images, labels): the images the setup
        names, loaded and checked by :mod:`companion.data` (train reshuffled every epoch with the page's seed;
        pixels scaled in the pipeline where the recipe does so)."""
        self.data = runner.load_data(self.setup, self.recipe.batch_size, self.run.seed)
        return self.data.train, self.data.validation, self.data.test

    def pretrained_base(self):
        """The setup's pretrained base, without its top (the weights :meth:`weights_note` names)."""
        with timing.phase("building models"):
            return setups.load_base(self.setup)

    def _loaded(self) -> runner.Data:
        if self.data is None:
            raise RuntimeError("load the data with page.datasets() before training")
        return self.data

    @contextlib.contextmanager
    def phase1(self, model) -> Iterator[None]:
        """Around phase 1's ``fit``: validation accuracy before and after, test accuracy after, the time taken."""
        d = self._loaded()
        validation = runner.Accuracy(d.validation, self.recipe.accuracy_threshold)
        with timing.phase("phase 1"):
            initial, started = validation(model), time.perf_counter()
            yield
            self.phase1_result = Phase1Result(History.of(model.history), initial, validation(model),
                                              runner.Accuracy(d.test, self.recipe.accuracy_threshold)(model),
                                              time.perf_counter() - started)
        base, head = _base_and_head(model)
        self.trained_phase1 = runner.Phase1(self.phase1_result, base.get_weights(), head.get_weights())
        if len(self.phase1_result.history.epochs) == self.setup.phase1_epochs:  # the setup's phase 1, as it says
            runner.offer_phase1(self.setup, d, self.run.seed, self.recipe.batch_size, self.trained_phase1)

    @contextlib.contextmanager
    def fine_tuning(self, way: Way, model, base) -> Iterator[runner.FineTuningRecorder]:
        """Around one way of fine-tuning's ``fit``, which must be given ``callbacks=recorder.callbacks``: accuracy
        after the profile's early batches and at the end, and what happened to ``base``'s BatchNormalization."""
        recorder = runner.FineTuningRecorder(way, base, self._loaded(), self.recipe.accuracy_threshold,
                                             self.run.profile.early_batches)
        with timing.phase("fine-tuning"):
            yield recorder
        if not recorder.drift.mean:
            raise RuntimeError(f"{way}: the fit inside the block did not get callbacks=recorder.callbacks")
        self.fine_tuned[way] = recorder.result(model, model.history)

    def result(self) -> RunResult:
        """What the page's phase 1 and ways of fine-tuning measured, kept for :meth:`computed`; its values and
        figures are glued for the chapter's prose (:meth:`glue`, :meth:`glue_figures`)."""
        if self.phase1_result is None or not self.fine_tuned:
            raise RuntimeError("train phase 1 and at least one way of fine-tuning before asking for the result")
        d = self._loaded()
        found = RunResult(setup=dict(self.setup.rows()), weights=self.setup.weights_label, data=d.identity,
                          phase1=self.phase1_result, fine_tuning=dict(self.fine_tuned), versions=versions(),
                          resumed=[], recovered=[], data_report=d.report)
        self._kept(d).write_json("result.json", json.loads(found.to_json()))
        self.glue(found)
        self.glue_figures(found)
        return found

    def _kept(self, d: runner.Data) -> cache.Folder:
        key = runner.run_key(self.setup, d, self.run.seed, self.recipe.batch_size,
                             early_batches=self.run.profile.early_batches)
        return cache.Folder(runner.checkpoint_dir(self.setup, self.run.seed) / "page", key)

    def computed(self) -> RunResult:
        """The result this recipe's chapter computed with the same key, kept; where it has not, the recipe trained
        now from its typed value by :func:`companion.training.runner.run` (the same model, freezing, compile and
        fit: ``tests/test_chapters_code.py`` checks that the two build the same model)."""
        self.datasets()
        kept = self._kept(self._loaded()).read_json("result.json")
        if kept is not None:
            return RunResult.from_json(json.dumps(kept))
        return runner.run(self.setup, self.run.seed, checkpoints=runner.checkpoint_dir(self.setup, self.run.seed),
                          early_batches=self.run.profile.early_batches)

    def targets(self, result: RunResult) -> list[Reached]:
        """What the page reached against each of its profile's targets for this recipe."""
        reached = []
        for target in self.run.profile.targets:
            if target.recipe == self.recipe.name:
                published, measured = STAGES[target.stage]
                reached.append(Reached(target, measured(result), self.recipe.published_validation_accuracy[published]))
        return reached

    def glue(self, result: RunResult) -> dict:
        """Glue the values the chapter's prose cites and ``companion run`` prints (and return them): accuracies
        (``acc_``, ``test_``), BN layers moved per way (the data and its scan are in :meth:`provenance`)."""
        values = {
            "acc_initial": result.phase1.validation_accuracy_initial,
            "acc_phase1": result.phase1.validation_accuracy, "test_phase1": result.phase1.test_accuracy,
            "published_phase1": self.recipe.published_validation_accuracy[0],
            "published_tuned": self.recipe.published_validation_accuracy[1],
        }
        for way, tuned in result.fine_tuning.items():
            key = glue_key(self.recipe, way)
            values.update({f"acc_{key}": tuned.validation_accuracy, f"test_{key}": tuned.test_accuracy,
                           f"moved_{key}": tuned.bn_layers_moved, "bn_layers": len(tuned.bn_layers)})
        reached = self.targets(result)
        values["targets_said"] = " ".join(r.said() for r in reached) or (
            f"The {self.run.profile.name} profile sets no accuracy targets.")
        glue_values(values)
        glue_values({TARGETS: [r.to_dict() for r in reached]})  # read by `companion run` (its summary)
        return values

    def accuracy_table(self, result: RunResult) -> FactTable:
        """Validation accuracy before training, after phase 1 and after each way of fine-tuning; the profile's
        targets and, where the run used the tutorial's own data, its published numbers beside them."""
        targets = {r.target.stage: r.required for r in self.targets(result)}
        shown = self.run.profile.recipe_data or targets  # the targets are held to the published numbers
        published = self.recipe.published_validation_accuracy if shown else None
        number = lambda value: "" if value is None else f"{value:.3f}"  # noqa: E731
        # stage, validation, test, validation after the early batches, target, published
        stages = [("before training", result.phase1.validation_accuracy_initial, None, [], None, None),
                  ("after phase 1", result.phase1.validation_accuracy, result.phase1.test_accuracy, [],
                   targets.get("phase 1"), published and published[0])]
        stages += [(f"fine-tuned: {self.recipe.way_label(way)}", tuned.validation_accuracy, tuned.test_accuracy,
                    [p.validation_accuracy for p in tuned.early],
                    targets.get("fine-tuned with the remedy") if way.remedy else None,
                    published and published[1])
                   for way, tuned in result.fine_tuning.items()]
        early = ", ".join(str(b) for b in self.run.profile.early_batches)
        header = ["stage", "validation", "test", f"validation after {early} batches"]
        header += ["target: at least (validation)"] * bool(targets) + ["published (validation)"] * bool(published)
        rows = [[stage, number(validation), number(test), ", ".join(map(number, early_values)),
                 *([number(target)] if targets else []), *([number(value)] if published else [])]
                for stage, validation, test, early_values, target, value in stages]
        return FactTable(header, rows)

    def batch_norm_table(self, result: RunResult, claim: str) -> FactTable:
        """A fact table: per way of fine-tuning, how the base was called and how many BN layers were trainable and
        moved (counts: the same on every run of the same Keras); its caption names the ``claim`` of the claims
        audit it tests."""
        rows = [[self.recipe.way_label(way), f"{tuned.bn_layers_trainable} of {len(tuned.bn_layers)}",
                 tuned.bn_layers_moved, ", ".join(str(p.bn_layers_moved) for p in tuned.early)]
                for way, tuned in result.fine_tuning.items()]
        early = ", ".join(str(b) for b in self.run.profile.early_batches)
        return FactTable(["fine-tuning", "BN layers trainable", "BN layers whose statistics moved",
                          f"moved after {early} batches"], rows,
                         caption=f"On this page's Keras; {claim} of the claims audit, checked there per Keras variant, "
                                 f"reads: {audit.BY_ID[claim].reading}")

    def glue_figures(self, result: RunResult) -> None:
        """Glue the page's figures (``fig_curves``, ``fig_progress``, ``fig_drift``); the chapter places and
        captions them with ``{glue:figure}``."""
        name = self.recipe.name
        tuned = next(iter(result.fine_tuning.values()))
        figures = {
            "fig_curves": plots.training_curves({name: result}, f"{name}: accuracy per epoch"),
            "fig_progress": plots.fine_tuning_progress(result.fine_tuning,
                                                       f"{name}: validation accuracy during fine-tuning"),
            "fig_drift": plots.bn_drift({way: t.bn_mean_drift[-1] for way, t in result.fine_tuning.items()},
                                        tuned.bn_layers, f"{name}: moving-mean change per BN layer"),
        }
        for key, figure in figures.items():
            glue_figure(key, figure)


def glue_key(recipe: recipes.Recipe, way: Way) -> str:
    """A way's key in a page's glue names: ``written`` for the recipe's own, ``remedy`` for it with the remedy added,
    else :attr:`Way.key`."""
    return {recipe.way: "written", ways.with_remedy(recipe.way): "remedy"}.get(way, way.key)


def _base_and_head(model):
    """The pretrained base (the one nested model) and the head's last ``Dense`` of a tutorial's model."""
    nested = [layer for layer in children(model) if any(is_batch_norm(inner) for inner in iter_layers(layer))]
    head = model.layers[-1]
    if len(nested) != 1 or type(head).__name__ != "Dense":
        raise ValueError("a tutorial's model is the pretrained base (one nested model with BatchNormalization) "
                         f"and a head ending in Dense; this one has {len(nested)} such models and ends in "
                         f"{type(head).__name__}")
    return nested[0], head


# --- Several recipes side by side ------------------------------------------------------------------------------

# Short keys for the recipes, used in glue names.
RECIPE_KEYS = {"MobileNetV2 2019": "m19", "MobileNetV2 2020": "m20", "Xception 2020": "x20"}


def comparison_table(results: dict[str, RunResult]) -> FactTable:
    """Validation accuracy of several recipes (recipe name -> result): after phase 1, after the first early
    batches of fine-tuning and at its end, per way of fine-tuning."""
    rows = [[name, recipes.get(name).way_label(way), f"{result.phase1.validation_accuracy:.3f}",
             ", ".join(f"{p.validation_accuracy:.3f}" for p in tuned.early), f"{tuned.validation_accuracy:.3f}"]
            for name, result in results.items() for way, tuned in result.fine_tuning.items()]
    batches = next(iter(next(iter(results.values())).fine_tuning.values())).early
    return FactTable(["recipe", "fine-tuning", "after phase 1",
                      f"after {', '.join(str(p.batches) for p in batches)} batches", "after fine-tuning"], rows)


def batch_norm_comparison(results: dict[str, RunResult]) -> FactTable:
    """A fact table: per recipe and way of fine-tuning, how the base was called and how many of its BN layers were
    trainable and moved."""
    return FactTable(["recipe", "fine-tuning", "BN layers trainable", "BN layers moved"],
                     [[name, recipes.get(name).way_label(way), f"{tuned.bn_layers_trainable} of {len(tuned.bn_layers)}",
                       tuned.bn_layers_moved]
                      for name, result in results.items() for way, tuned in result.fine_tuning.items()])


def comparison_values(results: dict[str, RunResult]) -> dict:
    """Per recipe key (``m19``, ``m20``, ``x20``) and way key: BN layers moved and final validation accuracy."""
    values = {}
    for name, result in results.items():
        for way, tuned in result.fine_tuning.items():
            key = f"{RECIPE_KEYS[name]}_{glue_key(recipes.get(name), way)}"
            values[f"moved_{key}"] = tuned.bn_layers_moved
            values[f"acc_{key}"] = tuned.validation_accuracy
        values[f"bn_layers_{RECIPE_KEYS[name]}"] = len(next(iter(result.fine_tuning.values())).bn_layers)
    return values
