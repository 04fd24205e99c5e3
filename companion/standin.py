"""The offline stand-in backbone: a MobileNetV2 pretrained by this project without cat/dog labels.

No ImageNet weights can be had offline, and random weights are not pretrained. The stand-in is Keras'
MobileNetV2 architecture (``weights=None``) trained with SimCLR, a contrastive pretext task: two augmented views
of each *training* image must find each other among the batch. The cat/dog labels are never read.

BatchNormalization needs care (the pitfall the book is about): Keras' MobileNetV2 uses momentum 0.999, so with a
few dozen steps per epoch the moving statistics lag far behind the weights and the model is useless in inference
mode. Pretraining therefore uses momentum 0.9, and afterwards the moving statistics are re-estimated exactly (a
cumulative average over the unaugmented training images, in training mode, no weight update) before momentum is
set back to 0.999, so the saved backbone is configured like ``keras.applications.MobileNetV2``.

``companion standin pretrain`` makes one and writes ``NAME.keras`` and ``NAME.json`` (how it was made: command,
data, seed, epochs, pretext accuracy in inference mode, file SHA-256). :func:`load` checks that hash and loads
with ``safe_mode=True``. :func:`transfer_accuracy` reports the transfer quality: a ``Dense(1)`` head trained on
the frozen backbone, validation accuracy in inference mode.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np

from companion.variants import load_keras

LABEL = ("Stand-in backbone: MobileNetV2 pretrained offline by this project (SimCLR on the training images, no "
         "labels), not ImageNet weights. Accuracies are not comparable with the tutorials' numbers.")


@dataclasses.dataclass(frozen=True)
class PretrainConfig:
    image_size: int = 64
    alpha: float = 0.35
    epochs: int = 55
    batch_size: int = 64  # images per step (two views each)
    learning_rate: float = 2e-3
    weight_decay: float = 1e-4
    warmup_epochs: float = 1.0
    bn_momentum: float = 0.9  # during pretraining only
    min_crop_area: float = 0.2
    temperature: float = 0.2
    projection_size: int = 128
    seed: int = 0
    images_per_class: int | None = None  # None: every training image


class StandinError(RuntimeError):
    pass


# The stand-in the book uses, made with `companion standin pretrain` (its .json says exactly how).
SHIPPED = Path(__file__).parent / "assets" / "standin_mobilenetv2_a035_64.keras"
# Every recipe tried for it, with the transfer accuracy `companion standin evaluate` measured, and the target.
ATTEMPTS = Path(__file__).parent / "assets" / "standin_attempts.json"


def attempts() -> dict:
    return json.loads(ATTEMPTS.read_text())


def random_baseline(config: dict, images: np.ndarray):
    """The stand-in's architecture with random weights, its BN statistics re-estimated on ``images``: the fair
    baseline (without re-estimation its pooled features in inference mode are about 1e-11)."""
    size = config["image_size"]
    backbone = load_keras().applications.MobileNetV2(
        input_shape=(size, size, 3), alpha=config["alpha"], include_top=False, weights=None)
    reestimate_batch_norm(backbone, images)
    return backbone


def reset_batch_norm(backbone) -> None:
    """Put every BN layer's moving statistics back to Keras' initial values (mean 0, variance 1)."""
    for layer in batch_norm_layers(backbone):
        layer.moving_mean.assign(np.zeros(layer.moving_mean.shape, "float32"))
        layer.moving_variance.assign(np.ones(layer.moving_variance.shape, "float32"))


def _scale(x):
    """MobileNetV2's preprocess_input: [0, 255] to [-1, 1]."""
    import tensorflow as tf

    return tf.cast(x, tf.float32) / 127.5 - 1.0


def _augment(x, generator, config: PretrainConfig):
    """SimCLR views: random resized crop, horizontal flip, colour jitter (p=0.8), grayscale (p=0.2)."""
    import tensorflow as tf

    n, size = tf.shape(x)[0], config.image_size
    uniform = lambda shape, low=0.0, high=1.0: generator.uniform(shape, low, high)  # noqa: E731
    area = uniform([n], config.min_crop_area, 1.0)
    ratio = tf.exp(uniform([n], np.log(3 / 4), np.log(4 / 3)))
    height, width = tf.minimum(tf.sqrt(area / ratio), 1.0), tf.minimum(tf.sqrt(area * ratio), 1.0)
    top, left = uniform([n]) * (1.0 - height), uniform([n]) * (1.0 - width)
    x = tf.image.crop_and_resize(x, tf.stack([top, left, top + height, left + width], 1), tf.range(n), [size, size])
    x = tf.where(uniform([n, 1, 1, 1]) < 0.5, tf.reverse(x, axis=[2]), x)
    jittered = x + uniform([n, 1, 1, 1], -0.6, 0.6)
    mean = tf.reduce_mean(jittered, axis=[1, 2, 3], keepdims=True)
    jittered = (jittered - mean) * uniform([n, 1, 1, 1], 0.4, 1.6) + mean
    gray = tf.reduce_mean(jittered, axis=3, keepdims=True)
    jittered = (jittered - gray) * uniform([n, 1, 1, 1], 0.2, 1.8) + gray
    jittered = (jittered + 1.0) * uniform([n, 1, 1, 3], 0.8, 1.2) - 1.0
    x = tf.where(uniform([n, 1, 1, 1]) < 0.8, jittered, x)
    x = tf.where(uniform([n, 1, 1, 1]) < 0.2, tf.repeat(tf.reduce_mean(x, 3, keepdims=True), 3, 3), x)
    return tf.clip_by_value(x, -1.0, 1.0)


def _contrastive(z, temperature: float):
    """NT-Xent loss and top-1 retrieval accuracy; rows i and i+n/2 are the two views of one image."""
    import tensorflow as tf

    z = tf.math.l2_normalize(z, axis=1)
    n = tf.shape(z)[0]
    similarity = tf.matmul(z, z, transpose_b=True) / temperature - 1e9 * tf.eye(n)
    partner = tf.concat([tf.range(n // 2, n), tf.range(0, n // 2)], axis=0)
    loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=partner, logits=similarity))
    found = tf.cast(tf.equal(tf.argmax(similarity, 1, output_type=tf.int32), partner), tf.float32)
    return loss, tf.reduce_mean(found)


def batch_norm_layers(model) -> list:
    keras = load_keras()
    return [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]


def reestimate_batch_norm(backbone, images: np.ndarray, batch_size: int = 128) -> None:
    """Set the moving statistics to the exact average of the per-batch statistics over ``images``.

    With momentum k/(k+1) at the k-th batch, the moving value is the running mean of the batch values.
    """
    layers = batch_norm_layers(backbone)
    for k, start in enumerate(range(0, len(images), batch_size)):
        for layer in layers:
            layer.momentum = k / (k + 1.0)
        backbone(_scale(images[start:start + batch_size]), training=True)


def pretext_accuracy(model, images: np.ndarray, config: PretrainConfig, batch_size: int = 128) -> float:
    """Top-1 retrieval of the other view in inference mode, with fixed-seed views (chance: 1/(2*batch-1))."""
    import tensorflow as tf

    generator = tf.random.Generator.from_seed(12345)
    scores = []
    for start in range(0, len(images) - batch_size + 1, batch_size):
        x = _scale(images[start:start + batch_size])
        views = tf.concat([_augment(x, generator, config), _augment(x, generator, config)], axis=0)
        scores.append(float(_contrastive(model(views, training=False), config.temperature)[1]))
    return float(np.mean(scores)) if scores else float("nan")


def pretrain(config: PretrainConfig, images: np.ndarray, validation: np.ndarray | None = None):
    """SimCLR-pretrain a MobileNetV2 backbone on ``images`` (uint8, no labels); returns (backbone, record)."""
    import tensorflow as tf

    keras = load_keras()
    keras.utils.set_random_seed(config.seed)
    started = time.time()
    size = config.image_size
    backbone = keras.applications.MobileNetV2(input_shape=(size, size, 3), alpha=config.alpha, include_top=False,
                                              weights=None)
    layers = batch_norm_layers(backbone)
    keras_momentum = layers[0].momentum
    for layer in layers:
        layer.momentum = config.bn_momentum
    inputs = keras.Input((size, size, 3))
    h = keras.layers.GlobalAveragePooling2D()(backbone(inputs))
    projection = keras.layers.Dense(config.projection_size)(keras.layers.Dense(512, activation="relu")(h))
    model = keras.Model(inputs, projection)  # the projection head is discarded after pretraining

    # Whole batches only: a smaller last batch would make TensorFlow trace the step again.
    steps = max(len(images) // config.batch_size, 1)
    warmup = int(config.warmup_epochs * steps)
    schedule = keras.optimizers.schedules.CosineDecay(0.0, max(steps * config.epochs - warmup, 1),
                                                      warmup_target=config.learning_rate, warmup_steps=warmup)
    optimizer = keras.optimizers.AdamW(learning_rate=schedule, weight_decay=config.weight_decay)
    generator = tf.random.Generator.from_seed(config.seed)

    @tf.function
    def train_step(batch):
        x = _scale(batch)
        views = tf.concat([_augment(x, generator, config), _augment(x, generator, config)], axis=0)
        with tf.GradientTape() as tape:
            loss, found = _contrastive(model(views, training=True), config.temperature)
        gradients = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables))
        return loss, found

    rng = np.random.default_rng(config.seed)
    history = []
    for epoch in range(config.epochs):
        print(f"Epoch {epoch + 1}/{config.epochs}", file=sys.stderr)
        bar = keras.utils.Progbar(steps, stateful_metrics=["loss", "retrieval"])
        order = rng.permutation(len(images))
        for step in range(steps):
            loss, found = train_step(images[order[step * config.batch_size:(step + 1) * config.batch_size]])
            bar.update(step + 1, [("loss", float(loss)), ("retrieval", float(found))])
        history.append({"epoch": epoch + 1, "loss": round(float(loss), 4), "training_mode_retrieval": round(float(found), 4)})

    accuracy_before = pretext_accuracy(model, images, config)
    reestimate_batch_norm(backbone, images)
    for layer in layers:
        layer.momentum = keras_momentum
    record = {
        "command": pretrain_command(config),
        "config": dataclasses.asdict(config),
        "data": f"cats_and_dogs_filtered train split, {len(images)} images, labels not read",
        "architecture": f"keras.applications.MobileNetV2(input_shape=({size}, {size}, 3), alpha={config.alpha}, "
                        "include_top=False, weights=None)",
        "pretext": f"SimCLR (NT-Xent, temperature {config.temperature}); accuracy: top-1 retrieval of the other view",
        "pretext_accuracy_inference_mode": {
            "train_before_bn_reestimation": round(accuracy_before, 4),
            "train": round(pretext_accuracy(model, images, config), 4),
            **({"validation": round(pretext_accuracy(model, validation, config), 4)} if validation is not None else {}),
        },
        "bn": {"pretraining_momentum": config.bn_momentum, "saved_momentum": keras_momentum,
               "moving_statistics": "re-estimated on the unaugmented training images"},
        "history": history,
        "minutes": round((time.time() - started) / 60, 2),
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__},
    }
    return backbone, record


def pretrain_command(config: PretrainConfig, out: str = f"companion/assets/{SHIPPED.name}") -> str:
    """The `companion standin pretrain` command, every option spelled out, that makes a stand-in with ``config``."""
    options = [f"--{name.replace('_', '-')} {getattr(config, name)}"
               for name in ("epochs", "image_size", "batch_size", "seed", "alpha", "images_per_class")
               if getattr(config, name) is not None]
    return f"companion standin pretrain --out {out} " + " ".join(options)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def save(backbone, record: dict, path: str | Path) -> Path:
    """Write ``path`` (.keras) and its record (.json, with the file's SHA-256)."""
    path = Path(path).with_suffix(".keras")
    path.parent.mkdir(parents=True, exist_ok=True)
    backbone.save(path)
    record = {**record, "file": {"name": path.name, "bytes": path.stat().st_size, "sha256": _sha256(path)}}
    path.with_suffix(".json").write_text(json.dumps(record, indent=1))
    return path


def record(path: str | Path = SHIPPED) -> dict:
    """How the stand-in at ``path`` was made (its .json record), without loading it."""
    path = Path(path)
    record_path = path.with_suffix(".json")
    if not path.is_file() or not record_path.is_file():
        raise StandinError(f"stand-in backbone {path} or its record {record_path.name} is missing: make one with "
                           f"`companion standin pretrain --out {path}`")
    return json.loads(record_path.read_text())


def load(path: str | Path = SHIPPED):
    """Load a stand-in with ``safe_mode=True`` after checking its SHA-256 against its record."""
    path = Path(path)
    made = record(path)
    if _sha256(path) != made["file"]["sha256"]:
        raise StandinError(f"{path} does not match the SHA-256 in {path.with_suffix('.json').name}: the file was "
                           "changed or damaged; make it again with `companion standin pretrain`")
    return load_keras().saving.load_model(path, safe_mode=True), made


def transfer_accuracy(backbone, train: tuple[np.ndarray, np.ndarray], validation: tuple[np.ndarray, np.ndarray],
                      epochs: int = 40, seed: int = 0) -> float:
    """Validation accuracy (inference mode) of GlobalAveragePooling2D + Dense(1) trained on the frozen backbone.

    The frozen backbone runs in inference mode on unaugmented images, so its pooled features are fixed: the head
    is fitted on them directly, which is what ``fit`` on the whole model would compute, only faster.
    """
    keras = load_keras()
    keras.utils.set_random_seed(seed)
    backbone.trainable = False
    features = keras.Sequential([backbone, keras.layers.GlobalAveragePooling2D()])
    (x_train, y_train), (x_val, y_val) = train, validation
    f_train = features.predict(_scale(x_train), batch_size=128, verbose=0)
    f_val = features.predict(_scale(x_val), batch_size=128, verbose=0)
    head = keras.Sequential([keras.Input(f_train.shape[1:]), keras.layers.Dense(1)])
    head.compile(keras.optimizers.Adam(1e-3), keras.losses.BinaryCrossentropy(from_logits=True),
                 metrics=[keras.metrics.BinaryAccuracy(threshold=0.0)])
    head.fit(f_train, y_train, batch_size=32, epochs=epochs, verbose=0)
    return float(head.evaluate(f_val, y_val, verbose=0)[1])
