"""One tutorial page: a recipe's setup, its run, and the tables, figures and glued values its chapter shows.

The three tutorial chapters (2019 and 2020 MobileNetV2, 2020 Xception) keep their own prose and call a
:class:`Page`; what they compute and show is the same code. Values reach the prose through myst-nb ``glue``:
:meth:`Page.glue` glues every number and short phrase the chapters cite, under names that are the same on every
tutorial page (``acc_phase1``, ``acc_remedy``, ``moved_written``...), and ``companion run`` copies them into its
JSON summary.
"""

from __future__ import annotations

from companion.core import plots
from companion.core.tables import FactTable
from companion.pages.notebook import Run, admonition, glue_figure, glue_values
from companion.training import runner
from companion.tutorials import recipes, setups
from companion.tutorials.results import RunResult

STAGES = {"phase 1": lambda result: result.phase1.validation_accuracy,
          "fine-tuned with the remedy": lambda result: result.fine_tuning[recipes.Way.BN_FROZEN].validation_accuracy}


def target_phrase(measured: float, required: float) -> str:
    """"met (at least 0.950 required)" or "missed by 1.2 points (at least 0.960 required)"."""
    if measured >= required:
        return f"met (at least {required:.3f} required)"
    return f"missed by {100 * (required - measured):.1f} points (at least {required:.3f} required)"


class Page:
    """A tutorial chapter's computations: ``Page("MobileNetV2 2020", run)``."""

    def __init__(self, recipe_name: str, run: Run):
        self.run = run
        self.recipe = recipes.get(recipe_name)
        self.setup = setups.setup(self.recipe, run.profile)

    def weights_note(self):
        """The admonition every page that trains on these weights carries."""
        kind = "note" if self.setup.weights == "imagenet" else "important"
        return admonition("The weights on this page", self.setup.weights_label, kind)

    def setup_table(self) -> FactTable:
        return FactTable(["setting", "value"], [list(row) for row in self.setup.rows()],
                         caption=f"What {self.recipe.name} runs as under the profile {self.setup.profile!r}")

    def train(self) -> RunResult:
        """Phase 1, then every way of fine-tuning, from checkpoints where this page ran before with the same key."""
        return runner.run(self.setup, self.run.seed, checkpoints=runner.checkpoint_dir(self.setup, self.run.seed),
                          early_batches=self.run.profile.early_batches)

    def targets(self, result: RunResult) -> list[tuple[str, float, float]]:
        """(stage, measured, required) for each of the profile's targets for this recipe."""
        return [(stage, STAGES[stage](result), required)
                for name, stage, required in self.run.profile.targets if name == self.recipe.name]

    def glue(self, result: RunResult) -> dict:
        """Glue every value the chapter's prose cites (and return them)."""
        values = {
            "weights": result.weights, "data": result.data, "data_report": result.data_report,
            "epochs": self.setup.epochs_text,
            "resumed": ", ".join(result.resumed) or "nothing",
            "recovered": "; ".join(result.recovered) or "none",
            "acc_initial": result.phase1.validation_accuracy_initial,
            "acc_phase1": result.phase1.validation_accuracy, "test_phase1": result.phase1.test_accuracy,
            "published_phase1": self.recipe.published_validation_accuracy[0],
            "published_tuned": self.recipe.published_validation_accuracy[1],
        }
        for way, tuned in result.fine_tuning.items():
            key = way.key
            values.update({f"acc_{key}": tuned.validation_accuracy, f"test_{key}": tuned.test_accuracy,
                           f"moved_{key}": tuned.bn_layers_moved, f"trainable_bn_{key}": tuned.bn_layers_trainable,
                           "bn_layers": len(tuned.bn_layers)})
        early = self.run.profile.early_batches
        values.update({"early_first_batches": early[0], "early_last_batches": early[-1]})
        for way, tuned in result.fine_tuning.items():
            values.update({f"early_{way.key}_first": tuned.early[0].validation_accuracy,
                           f"early_{way.key}_last": tuned.early[-1].validation_accuracy})
        targets = {stage: target_phrase(measured, required) for stage, measured, required in self.targets(result)}
        none = f"no target for this stage under the profile {self.setup.profile!r}"
        values["target_phase1"] = targets.get("phase 1", none)
        values["target_remedy"] = targets.get("fine-tuned with the remedy", none)
        glue_values(values)
        return values

    def accuracy_table(self, result: RunResult) -> FactTable:
        """Validation accuracy before training, after phase 1 and after each way of fine-tuning; the profile's
        targets and, where the run used the tutorial's own data, its published numbers beside them."""
        targets = {stage: required for stage, _, required in self.targets(result)}
        published = self.recipe.published_validation_accuracy if self.run.profile.recipe_data else None
        number = lambda value: "" if value is None else f"{value:.3f}"  # noqa: E731
        # stage, validation, test, validation after the early batches, target, published
        stages = [("before training", result.phase1.validation_accuracy_initial, None, [], None, None),
                  ("after phase 1", result.phase1.validation_accuracy, result.phase1.test_accuracy, [],
                   targets.get("phase 1"), published and published[0])]
        stages += [(f"fine-tuned: {way}", tuned.validation_accuracy, tuned.test_accuracy,
                    [p.validation_accuracy for p in tuned.early],
                    targets.get("fine-tuned with the remedy") if way == recipes.Way.BN_FROZEN else None,
                    published and published[1])
                   for way, tuned in result.fine_tuning.items()]
        early = ", ".join(str(b) for b in self.run.profile.early_batches)
        header = ["stage", "validation", "test", f"validation after {early} batches"]
        header += ["target (validation)"] * bool(targets) + ["published (validation)"] * bool(published)
        rows = [[stage, number(validation), number(test), ", ".join(map(number, early_values)),
                 *([number(target)] if targets else []), *([number(value)] if published else [])]
                for stage, validation, test, early_values, target, value in stages]
        return FactTable(header, rows)

    def batch_norm_table(self, result: RunResult) -> FactTable:
        """A fact table: per way of fine-tuning, how the base was called and how many BN layers were trainable and
        moved (counts: the same on every run of the same Keras)."""
        rows = [[way, tuned.base_called_with, f"{tuned.bn_layers_trainable} of {len(tuned.bn_layers)}",
                 tuned.bn_layers_moved, ", ".join(str(p.bn_layers_moved) for p in tuned.early)]
                for way, tuned in result.fine_tuning.items()]
        early = ", ".join(str(b) for b in self.run.profile.early_batches)
        return FactTable(["fine-tuning", "base called with", "BN layers trainable", "BN layers whose statistics moved",
                          f"moved after {early} batches"], rows)

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


# --- Several recipes side by side ------------------------------------------------------------------------------

# Short keys for the recipes, used in glue names.
RECIPE_KEYS = {"MobileNetV2 2019": "m19", "MobileNetV2 2020": "m20", "Xception 2020": "x20"}


def comparison_table(results: dict[str, RunResult]) -> FactTable:
    """Validation accuracy of several recipes (recipe name -> result): after phase 1, after the first early
    batches of fine-tuning and at its end, per way of fine-tuning."""
    rows = [[name, way, f"{result.phase1.validation_accuracy:.3f}",
             ", ".join(f"{p.validation_accuracy:.3f}" for p in tuned.early), f"{tuned.validation_accuracy:.3f}"]
            for name, result in results.items() for way, tuned in result.fine_tuning.items()]
    batches = next(iter(next(iter(results.values())).fine_tuning.values())).early
    return FactTable(["recipe", "fine-tuning", "after phase 1",
                      f"after {', '.join(str(p.batches) for p in batches)} batches", "after fine-tuning"], rows)


def batch_norm_comparison(results: dict[str, RunResult]) -> FactTable:
    """A fact table: per recipe and way of fine-tuning, how the base was called and how many of its BN layers were
    trainable and moved."""
    return FactTable(["recipe", "fine-tuning", "base called with", "BN layers trainable", "BN layers moved"],
                     [[name, way, tuned.base_called_with, f"{tuned.bn_layers_trainable} of {len(tuned.bn_layers)}",
                       tuned.bn_layers_moved]
                      for name, result in results.items() for way, tuned in result.fine_tuning.items()])


def comparison_values(results: dict[str, RunResult]) -> dict:
    """Per recipe key (``m19``, ``m20``, ``x20``) and way key: BN layers moved and final validation accuracy."""
    values = {}
    for name, result in results.items():
        for way, tuned in result.fine_tuning.items():
            key = f"{RECIPE_KEYS[name]}_{way.key}"
            values[f"moved_{key}"] = tuned.bn_layers_moved
            values[f"acc_{key}"] = tuned.validation_accuracy
        values[f"bn_layers_{RECIPE_KEYS[name]}"] = len(next(iter(result.fine_tuning.values())).bn_layers)
    return values
