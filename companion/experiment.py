"""The experiment the book exists for: what the Keras 3 override costs on a real pretrained base.

From the same phase-1 weights (the recipe's own phase 1, kept by :mod:`companion.runner`), the recipe is fine-tuned
as written and with the remedy (every BatchNormalization layer ``trainable=False``) under each Keras variant, each
in its own process, for several seeds. Each fine-tuning run records validation accuracy after the first few batches
and after each epoch, and how many BatchNormalization layers' moving statistics moved.

The parent process (the pinned Keras) trains or resumes phase 1 and writes its weights as plain arrays; each child
(``python -m companion.experiment child ...``, started with a variant's environment) reads the same data and those
arrays, fine-tunes, and writes its results as JSON. A variant's column is kept in the cache folder under a key of
the phase-1 weights' hash, the variant, the settings and the code.
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

from companion import cache, evidence, profiles, recipes, runner, setups, variants
from companion.profiles import Profile
from companion.recipes import Recipe
from companion.results import FineTuneResult, Phase1Result
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
    recipe: str
    setup: dict  # Setup.rows() as a dict
    seeds: tuple[int, ...]
    phase1: Phase1Result
    columns: dict[str, Column]  # variant name -> its runs

    def accuracy(self, variant: str, way: str, point: int | str) -> list[float]:
        """Validation accuracy per seed, after ``point`` batches (an int) or at the end of the run ("end")."""
        results = self.columns[variant].runs[way]
        if point == "end":
            return [r.validation_accuracy for r in results]
        return [next(p.validation_accuracy for p in r.early if p.batches == point) for r in results]

    def remedy_gain(self, variant: str, point: int | str) -> list[float]:
        """Per seed, validation accuracy with the remedy minus as written (positive: the remedy was ahead)."""
        return [b - a for a, b in zip(self.accuracy(variant, recipes.AS_WRITTEN, point),
                                      self.accuracy(variant, recipes.BN_FROZEN, point))]

    def bn_layers_moved(self, variant: str, way: str) -> list[int]:
        return [r.bn_layers_moved for r in self.columns[variant].runs[way]]

    @property
    def early_batches(self) -> list[int]:
        first = next(iter(self.columns.values())).runs[recipes.AS_WRITTEN][0]
        return [p.batches for p in first.early]

    def table(self) -> FactTable:
        """Per variant and way of fine-tuning: BN layers moved, and validation accuracy after the first batches
        and at the end (mean over the seeds, then each seed)."""
        points = [*self.early_batches, "end"]
        header = ["Keras", "fine-tuning", "BN layers moved",
                  *(f"after {p} batches" if p != "end" else "at the end" for p in points)]
        rows = []
        for name, column in self.columns.items():
            for way in column.runs:
                cells = [_mean_and_seeds(self.accuracy(name, way, p)) for p in points]
                moved = sorted(set(self.bn_layers_moved(name, way)))
                rows.append([column.label, way, ", ".join(map(str, moved)), *cells])
        return FactTable(header, rows, caption=f"validation accuracy: mean (seeds {', '.join(map(str, self.seeds))})")

    def bn_table(self) -> FactTable:
        """Per variant and way: how many of the base's BN layers moved their statistics (the distinct counts over
        the seeds: the same in every seed, since which layers run in training mode does not depend on the seed)."""
        rows = [[column.label, way, ", ".join(map(str, sorted(set(self.bn_layers_moved(name, way))))),
                 len(column.runs[way][0].bn_layers)]
                for name, column in self.columns.items() for way in column.runs]
        return FactTable(["Keras", "fine-tuning", "BN layers whose statistics moved", "BN layers in the base"], rows)

    def values(self) -> dict:
        """The numbers and short phrases the chapter glues, per variant (``keras``, ``keras_nightly``,
        ``tf_keras``): mean accuracy both ways after the first and last early batch and at the end, the remedy's
        mean gain in points, and in how many seeds it was ahead."""
        first, last = self.early_batches[0], self.early_batches[-1]
        values = {"exp_recipe": self.recipe, "exp_seeds": len(self.seeds), "exp_first_batches": first,
                  "exp_last_batches": last, "exp_phase1": self.phase1.validation_accuracy}
        for name, column in self.columns.items():
            key = name.replace("-", "_")
            values[f"exp_{key}_label"] = column.label
            for point, tag in ((first, "first"), (last, "last"), ("end", "end")):
                gains = self.remedy_gain(name, point)
                values[f"exp_{key}_written_{tag}"] = float(np.mean(self.accuracy(name, recipes.AS_WRITTEN, point)))
                values[f"exp_{key}_remedy_{tag}"] = float(np.mean(self.accuracy(name, recipes.BN_FROZEN, point)))
                values[f"exp_{key}_gain_{tag}"] = 100 * float(np.mean(gains))
                values[f"exp_{key}_ahead_{tag}"] = _ahead_phrase(gains)
            values[f"exp_{key}_moved_written"] = max(self.bn_layers_moved(name, recipes.AS_WRITTEN))
        values["exp_verdict"] = self.verdict()
        return values

    def overridden(self) -> list[str]:
        """The variants on which fine-tuning as written moved BN statistics (the override)."""
        return [name for name in self.columns if max(self.bn_layers_moved(name, recipes.AS_WRITTEN)) > 0]

    def verdict(self) -> str:
        """What the override cost, measured against the noise: at each point, the remedy's gain (per seed) on the
        variants with the override, beside the largest gain either way between the two ways of fine-tuning on the
        variants without it, where the two differ only by chance. A cost is stated only where every seed's gain
        under the override exceeds that noise."""
        overridden = self.overridden()
        others = [name for name in self.columns if name not in overridden]
        if not overridden or not others:
            return ("no comparison: the override " + ("moved no statistics on any variant" if not overridden
                                                       else "moved statistics on every variant"))
        parts, measurable = [], []
        for point in (*self.early_batches, "end"):
            noise = max(abs(g) for name in others for g in self.remedy_gain(name, point))
            gains = [g for name in overridden for g in self.remedy_gain(name, point)]
            where = f"after {point} batches" if point != "end" else "at the end"
            parts.append(f"{where}: {_gain_range(gains)} points against up to {100 * noise:.1f} without it")
            if min(gains) > noise:
                measurable.append(where)
        labels = evidence.listing([self.columns[name].label for name in overridden])
        head = (f"the remedy's gain under the override ({labels}) exceeded the noise {evidence.listing(measurable)}"
                if measurable else
                f"no cost of the override ({labels}) exceeded the noise: the remedy's gain stayed within the "
                "differences seen between the two ways on the variants without the override")
        return f"{head} ({'; '.join(parts)})"


def _points(fraction: float) -> str:
    return f"{100 * fraction:+.1f}"


def _gain_range(gains: list[float]) -> str:
    """The seeds' gains in points: "+0.2 to +0.5", or one figure where they round alike."""
    low, high = _points(min(gains)), _points(max(gains))
    return low if low == high else f"{low} to {high}"


def _mean_and_seeds(values: list[float]) -> str:
    return f"{np.mean(values):.3f} ({', '.join(f'{v:.3f}' for v in values)})"


def _ahead_phrase(gains: list[float]) -> str:
    """In how many seeds the remedy was ahead, behind or level: "ahead in 2 of 2 seeds"."""
    ahead, behind = sum(g > 0 for g in gains), sum(g < 0 for g in gains)
    parts = [f"ahead in {ahead}", f"behind in {behind}", f"level in {len(gains) - ahead - behind}"]
    return ", ".join(p for p in parts if not p.endswith(" 0")) + f" of {len(gains)} seeds"


def _child_command(profile: Profile, recipe: Recipe, data_seed: int, batch_size: int, phase1: Path,
                   out: Path) -> list[str]:
    return [sys.executable, "-m", "companion.experiment", "child", "--profile", profile.to_json(),
            "--recipe", recipe.name, "--data-seed", str(data_seed), "--batch-size", str(batch_size),
            "--phase1", str(phase1), "--out", str(out)]


def run_child(name: str, profile: Profile, recipe: Recipe, data_seed: int, batch_size: int, phase1: Path,
              progress=None) -> Column:
    """Fine-tune under variant ``name`` in a child process; ``progress`` (a tqdm bar) advances per finished run."""
    env = variants.environment(variants.get(name))
    env.pop(profiles.PROFILE_ENV, None)  # the child gets its profile explicitly
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "column.json"
        started = time.perf_counter()
        command = _child_command(profile, recipe, data_seed, batch_size, phase1, out)
        with subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as child:
            for line in child.stdout:
                if line.startswith("finished ") and progress is not None:
                    progress.update(1)
            errors = child.stderr.read()
        if child.returncode != 0:
            raise RuntimeError(f"the experiment failed under {name}:\n{errors[-4000:]}")
        raw = json.loads(out.read_text())
    return Column.from_dict({**raw, "variant": name, "seconds": time.perf_counter() - started})


def run(recipe: Recipe, profile: Profile, seed: int = 0, names: list[str] | None = None, progress: bool = True,
        checkpoints: Path | None = None, batch_size: int | None = None) -> Experiment:
    """Phase 1 (resumed from the recipe's chapter when it ran with the same key), then every variant's column."""
    from tqdm.auto import tqdm

    names = names or list(variants.VARIANTS)
    batch_size = batch_size or recipe.batch_size
    s = setups.setup(recipe, profile)
    d = runner.load_data(s, batch_size, seed)
    key = runner.run_key(s, d, seed, batch_size)
    checkpoints = checkpoints or runner.checkpoint_dir(s, seed)
    kept_phase1 = cache.Folder(checkpoints / "phase1", key)
    phase1, _ = runner.phase1_or_resume(s, d, seed, kept_phase1)
    arrays = kept_phase1.file("phase1.npz")
    phase1_sha256 = kept_phase1.sha256("phase1.npz")
    columns = {}
    runs_per_column = len(profile.experiment_seeds) * len(WAYS)
    with tqdm(total=runs_per_column * len(names), desc="fine-tuning runs under each Keras variant",
              disable=not progress) as bar:
        for name in names:
            kept = cache.Folder(cache.cache_dir() / "experiment" / runner.checkpoint_dir(s, seed).name / name, {
                **key, "phase1": phase1_sha256, "variant": repr(variants.get(name)), "seeds": profile.experiment_seeds,
                "epochs": profile.experiment_fine_tuning_epochs, "early": profile.early_batches})
            raw = kept.read_json("column.json")
            if raw is not None:
                columns[name] = Column.from_dict(raw)
                bar.update(runs_per_column)
                continue
            columns[name] = run_child(name, profile, recipe, seed, batch_size, arrays, bar)
            kept.write_json("column.json", dataclasses.asdict(columns[name]))
    return Experiment(recipe.name, dict(s.rows()), tuple(profile.experiment_seeds), phase1.result, columns)


def child(profile: Profile, recipe: Recipe, data_seed: int, batch_size: int, phase1_path: Path, out: Path) -> None:
    """In a variant's process: fine-tune both ways for every seed from the phase-1 arrays; write the column."""
    s = setups.setup(recipe, profile)
    d = runner.load_data(s, batch_size, data_seed)
    with np.load(phase1_path, allow_pickle=False) as stored:
        arrays = [stored[f"arr_{i}"] for i in range(len(stored.files))]
    head = 2  # the Dense(1) layer's kernel and bias come last
    phase1 = runner.Phase1(None, arrays[:-head], arrays[-head:])
    column = {way: [] for way in WAYS}
    for seed in profile.experiment_seeds:
        for way, variant in ways(recipe).items():
            column[way].append(dataclasses.asdict(runner.fine_tune(
                s, variant, way, phase1, d, seed, profile.early_batches, epochs=profile.experiment_fine_tuning_epochs,
                verbose=0)))
            print(f"finished {way} seed {seed}", flush=True)
    out.write_text(json.dumps({"versions": variants.versions(), "runs": column}))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m companion.experiment")
    parser.add_argument("command", choices=["child"])
    parser.add_argument("--profile", required=True, help="the profile, as JSON (Profile.to_json)")
    parser.add_argument("--recipe", required=True)
    parser.add_argument("--data-seed", type=int, required=True)
    parser.add_argument("--batch-size", type=int, required=True)
    parser.add_argument("--phase1", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    child(profiles.Profile.from_json(args.profile), recipes.get(args.recipe), args.data_seed, args.batch_size,
          args.phase1, args.out)
