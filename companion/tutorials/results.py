"""What a training run measured, as typed values that round-trip through JSON (checkpoints, child processes).

Values stay numbers here; pages and tables format them.
"""

from __future__ import annotations

import dataclasses
import json

from companion.checks import ways
from companion.checks.ways import Way


@dataclasses.dataclass
class History:
    epochs: list[int]  # 1-based, as Keras' progress bar counts them
    metrics: dict[str, list[float]]  # loss, accuracy, val_loss, val_accuracy

    @classmethod
    def of(cls, keras_history) -> History:
        return cls([e + 1 for e in keras_history.epoch],
                   {k: [float(v) for v in values] for k, values in keras_history.history.items()})


@dataclasses.dataclass
class EarlyPoint:
    """Validation accuracy (and how many BN layers had moved) after ``batches`` fine-tuning batches."""

    batches: int
    validation_accuracy: float
    bn_layers_moved: int


@dataclasses.dataclass
class FineTuneResult:
    way: Way
    bn_layers_trainable: int  # BN layers of the base left trainable during fine-tuning
    history: History
    early: list[EarlyPoint]  # after so many batches of fine-tuning, counted across its epochs
    bn_layers: list[str]
    # After each fine-tuning epoch, per BN layer of the base: the largest absolute change of its moving mean
    # (and variance) since fine-tuning started.
    bn_mean_drift: list[list[float]]
    bn_variance_drift: list[list[float]]
    validation_accuracy: float
    test_accuracy: float | None  # None: not measured (the paired experiment's runs)
    seconds: float
    steps_per_epoch: int

    @property
    def bn_layers_moved(self) -> int:
        """BN layers whose moving mean or variance changed at all during fine-tuning."""
        final = zip(self.bn_mean_drift[-1], self.bn_variance_drift[-1])
        return sum(1 for mean, variance in final if mean > 0 or variance > 0)

    @property
    def largest_mean_drift(self) -> float:
        return max(self.bn_mean_drift[-1], default=0.0)

    @property
    def validation_curve(self) -> list[tuple[float, float]]:
        """(epochs of fine-tuning done, validation accuracy): the early points, then one per epoch."""
        points = [(p.batches / self.steps_per_epoch, p.validation_accuracy) for p in self.early]
        per_epoch = self.history.metrics.get("val_accuracy")
        if per_epoch is None:  # fit ran without validation data (the paired experiment): the end of the run only
            return points + [(float(len(self.history.epochs)), self.validation_accuracy)]
        return points + [(i + 1.0, a) for i, a in enumerate(per_epoch)]

    @classmethod
    def from_dict(cls, raw: dict) -> FineTuneResult:
        return cls(**{**raw, "way": ways.by_key(raw["way"]), "history": History(**raw["history"]),
                      "early": [EarlyPoint(**p) for p in raw["early"]]})

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "way": self.way.key}


@dataclasses.dataclass
class Phase1Result:
    history: History
    validation_accuracy_initial: float  # before any training, as the tutorials print it
    validation_accuracy: float
    test_accuracy: float
    seconds: float

    @classmethod
    def from_dict(cls, raw: dict) -> Phase1Result:
        return cls(**{**raw, "history": History(**raw["history"])})


@dataclasses.dataclass
class RunResult:
    setup: dict  # Setup.rows() as a dict, for the page
    weights: str  # what the base's weights are (Setup.weights_label)
    data: str  # which images it was trained and evaluated on (the data's identity)
    phase1: Phase1Result
    fine_tuning: dict[Way, FineTuneResult]
    versions: dict
    resumed: list[str]  # what was read from checkpoints instead of trained
    recovered: list[str]  # kept results that could not be read, were moved aside and computed again
    data_report: str  # what the scan of the image files found: files skipped or converted, by name

    def to_json(self) -> str:
        # asdict would turn the Way keys into dicts, which cannot be keys: the results go by way key instead.
        return json.dumps({**dataclasses.asdict(dataclasses.replace(self, fine_tuning={})),
                           "fine_tuning": {way.key: result.to_dict() for way, result in self.fine_tuning.items()}})

    @classmethod
    def from_json(cls, text: str) -> RunResult:
        raw = json.loads(text)
        raw["phase1"] = Phase1Result.from_dict(raw["phase1"])
        raw["fine_tuning"] = {ways.by_key(k): FineTuneResult.from_dict(v) for k, v in raw["fine_tuning"].items()}
        return cls(**raw)
