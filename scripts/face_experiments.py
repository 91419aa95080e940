"""Face recipe experiments on CPU (issue 24): which input size, which layers to train, which head.

Everything is measured on validation images only (the project's own splits: FER2013 validation drawn
from Training, RAF-DB's validation split of its training part, CK+ validation subjects); the test
sets (FER2013 PublicTest, the splits' test parts) are read only by ``report``, for the chosen recipe.

    python scripts/face_experiments.py cache OUT            # the corpora's aligned crops, labels, splits
    python scripts/face_experiments.py features OUT SIZE BLOCK [TRAIN]  # frozen EfficientNet-Lite0 features
                                                         # and block BLOCK's input (TRAIN: at most so many
                                                         # training images per corpus, for the size comparison)
    python scripts/face_experiments.py heads OUT SIZE...    # linear / MLP heads on the frozen features
    python scripts/face_experiments.py finetune OUT SIZE BLOCK EPOCHS LR [DRAWS]  # train blocks BLOCK.. + head
    python scripts/face_experiments.py report OUT SIZE BLOCK EPOCHS LR [DRAWS]    # the same, test numbers too
    python scripts/face_experiments.py compact OUT EPOCHS LR  # the compact CNN (48 px grey) on the same draws
    python scripts/face_experiments.py augment OUT EPOCHS LR SEED [NAME=P...]  # the same, each crop through
                                                         # params.yaml's face.augment pipeline, NAME set to P
                                                         # (e.g. pose_p=0.5): the video-frame transforms
    python scripts/face_experiments.py int8 OUT SIZE          # int8 vs fp32 ONNX graphs of the ImageNet Lite0

docs/measurements/face_backbones.json keeps the last-epoch lines of ``compact`` and ``report`` runs (test
numbers on the project's splits); the face report shows them side by side (stage face_evaluate).

Crops come from the project's own code (adapters, label harmonisation, splits, FacePreprocessor's
aligned path); the network is the project's EfficientNetLite0 with its ImageNet weights. One CPU
thread (``torch.set_num_threads(1)``): on 2 shared cores it ran 2-3x faster than two threads.
"""

from __future__ import annotations

import functools
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from emotion_models.data.datasets import Reject, get_adapter
from emotion_models.data.splits import assign_splits
from emotion_models.features.face import LANDMARK_VALUES, ImageReadError, load_image, resize_whole
from emotion_models.labels import CLASS_NAMES, DroppedEmotion, harmonise_emotion
from emotion_models.nets.backbones import EfficientNetLite0, dense_head, efficientnet_lite0_weights
from emotion_models.nets.face import FaceEmotionNet
from emotion_models.params import DenseHead, FaceAugmentConfig, load_params
from emotion_models.training.augment import augment_face, face_augmentation
from emotion_models.training.data import balanced_repeats

ROOT = Path(__file__).resolve().parents[1]
CORPORA = {"fer2013": "fer2013-images", "raf_db": "raf-db-basic", "ck_plus": "ck-plus-48"}
NATIVE = {"fer2013": 48, "raf_db": 100, "ck_plus": 48}
BATCH = 64


def cache(out: Path) -> None:
    """Each corpus's images at their own size (uint8 RGB), 5-class labels and the project's splits."""
    params = load_params(ROOT / "params.yaml")
    data_root = (ROOT / params.data.root).resolve()
    rules = params.data.labels.as_dict()
    out.mkdir(parents=True, exist_ok=True)
    for corpus, folder in CORPORA.items():
        adapter = get_adapter(corpus)
        items, fixed = [], {}
        for item in adapter.scan(data_root / folder):
            if isinstance(item, Reject):
                continue
            try:
                _, label = harmonise_emotion(item.emotion, rules)
            except DroppedEmotion:
                continue
            items.append((item, label))
            if item.fixed_split is not None:
                fixed[(corpus, item.speaker_id)] = item.fixed_split
        splits = assign_splits({(corpus, item.speaker_id) for item, _ in items}, params.data.split.test_fraction,
                               params.data.split.val_fraction, params.seed, fixed)
        images, labels, split_names, rejects = [], [], [], 0
        for item, label in items:
            try:
                image = load_image(item.path)
            except ImageReadError:
                rejects += 1
                continue
            assert adapter.aligned_face(Path(item.path))
            images.append(resize_whole(image, NATIVE[corpus]))
            labels.append(label)
            split_names.append(splits[(corpus, item.speaker_id)])
        np.savez(out / f"{corpus}.npz", images=np.stack(images), labels=np.array(labels, np.int64),
                 splits=np.array(split_names))
        counts = {s: split_names.count(s) for s in ("train", "val", "test")}
        print(f"{corpus}: {len(images)} images {counts}, {rejects} unreadable", flush=True)


def imagenet_lite0() -> EfficientNetLite0:
    model = EfficientNetLite0()
    model.load_state_dict(efficientnet_lite0_weights(), strict=True)
    model._fc = nn.Identity()
    return model.eval()


def to_input(images: np.ndarray, size: int) -> torch.Tensor:
    """uint8 crops resized whole to ``size`` (the pipeline's aligned path), scaled as Lite0 expects."""
    batch = np.stack([resize_whole(image, size) for image in images])
    return (torch.from_numpy(batch).permute(0, 3, 1, 2).float() / 255 - 0.5) / 0.5


def run_blocks(model: EfficientNetLite0, x: torch.Tensor, start: int, stop: int) -> torch.Tensor:
    """Blocks [start, stop) of the network; start 0 runs the stem first, stop 16 the conv head and pooling."""
    if start == 0:
        x = nn.functional.relu6(model._bn0(model._conv_stem(x)))
    for block in model._blocks[start:stop]:
        x = block(x)
    if stop == len(model._blocks):
        x = nn.functional.relu6(model._bn1(model._conv_head(x)))
        x = torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)
    return x


def subset(splits: np.ndarray, train: int | None) -> np.ndarray:
    """Every validation and test image, and at most ``train`` training images (a seeded draw)."""
    rows = np.arange(len(splits))
    if train is None:
        return rows
    training = rows[splits == "train"]
    drawn = np.random.default_rng(0).permutation(training)[:train]
    return np.sort(np.concatenate([rows[splits != "train"], drawn]))


def features(out: Path, size: int, block: int, train: int | None = None) -> None:
    """Pooled frozen features (1280) and the input of block ``block`` (float16), for every image
    (or a subset: :func:`subset`; its rows saved beside them)."""
    model = imagenet_lite0()
    for corpus in CORPORA:
        meta = np.load(out / f"{corpus}.npz")
        rows = subset(meta["splits"], train)
        images = meta["images"][rows]
        if train is not None:
            np.save(out / f"{corpus}-{size}-rows.npy", rows)
        pooled, middle, start = [], [], time.time()
        with torch.inference_mode():
            for i in range(0, len(images), BATCH):
                x = run_blocks(model, to_input(images[i:i + BATCH], size), 0, block)
                middle.append(x.half().numpy())
                pooled.append(run_blocks(model, x, block, 16).numpy())
        np.save(out / f"{corpus}-{size}-pooled.npy", np.concatenate(pooled))
        np.save(out / f"{corpus}-{size}-block{block}.npy", np.concatenate(middle))
        print(f"{corpus} at {size}px: {len(images)} images in {time.time() - start:.0f} s", flush=True)


def load(out: Path, size: int, name: str, rows: dict[str, np.ndarray] | None = None) -> dict[str, dict[str, np.ndarray]]:
    """Per corpus: labels, splits and the arrays ``<corpus>-<size>-<name>.npy`` (of ``rows`` only, where given)."""
    result = {}
    for corpus in CORPORA:
        meta = np.load(out / f"{corpus}.npz")
        stored = out / f"{corpus}-{size}-rows.npy"
        have = np.load(stored) if stored.exists() else np.arange(len(meta["labels"]))
        keep = rows[corpus] if rows is not None else have
        position = np.searchsorted(have, keep)
        assert np.array_equal(have[position], keep), f"{corpus} at {size}px lacks some of the rows asked for"
        result[corpus] = {"labels": meta["labels"][keep], "splits": meta["splits"][keep],
                          "x": np.load(out / f"{corpus}-{size}-{name}.npy", mmap_mode="r")[position]}
    return result


def common_rows(out: Path, sizes: list[int]) -> dict[str, np.ndarray]:
    """The images every size's features cover."""
    rows = {}
    for corpus in CORPORA:
        sets = [np.load(out / f"{corpus}-{size}-rows.npy") for size in sizes if (out / f"{corpus}-{size}-rows.npy").exists()]
        rows[corpus] = (functools.reduce(np.intersect1d, sets) if sets
                        else np.arange(len(np.load(out / f"{corpus}.npz")["labels"])))
    return rows


def balanced_draws(labels: np.ndarray, corpora: np.ndarray, draws: int, rng: np.random.Generator) -> np.ndarray:
    """Row indices of one epoch of ``draws`` corpus- and class-balanced draws, shuffled, as training
    drew them until round 18 (face.train.balance: corpus_class; rounds 11-17 measured with it)."""
    ids = [str(i) for i in range(len(labels))]
    repeats = balanced_repeats(dict(zip(ids, labels.tolist())), dict(zip(ids, corpora.tolist())), "corpus_class",
                               draws, rng)
    return rng.permutation(np.repeat(np.array([int(i) for i in repeats]), list(repeats.values())))


def stacked(data: dict, split: str, corpora: tuple[str, ...] = tuple(CORPORA)) -> tuple[np.ndarray, ...]:
    xs, ys, cs = [], [], []
    for corpus in corpora:
        mask = data[corpus]["splits"] == split
        xs.append(data[corpus]["x"][mask])
        ys.append(data[corpus]["labels"][mask])
        cs.append(np.full(mask.sum(), corpus))
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(cs)


def accuracy_by_corpus(predict, data: dict, split: str) -> dict[str, float]:
    return {corpus: round(float((predict(data[corpus]["x"][data[corpus]["splits"] == split])
                                  == data[corpus]["labels"][data[corpus]["splits"] == split]).mean()) * 100, 1)
            for corpus in CORPORA}


def heads(out: Path, sizes: list[int]) -> None:
    """Logistic regression and a one-layer MLP on the frozen pooled features: validation accuracy per corpus."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    rows = common_rows(out, sizes)
    for size in sizes:
        data = load(out, size, "pooled", rows)
        x, y, c = stacked(data, "train")
        scaler = StandardScaler().fit(x)
        for name, data_x in ((corpus, data[corpus]) for corpus in CORPORA):
            data_x["x"] = scaler.transform(data_x["x"]).astype(np.float32)
        x = scaler.transform(x).astype(np.float32)
        weights = np.bincount(balanced_draws(y, c, 10 * len(y), np.random.default_rng(0)), minlength=len(y))
        start = time.time()
        linear = LogisticRegression(C=0.05, max_iter=300).fit(x, y, sample_weight=weights)
        print(json.dumps({"size": size, "train_rows": len(y), "head": "logistic C=0.05",
                          "val": accuracy_by_corpus(linear.predict, data, "val"),
                          "seconds": round(time.time() - start)}), flush=True)
        start = time.time()
        mlp = train_mlp(x, y, weights)
        print(json.dumps({"size": size, "head": "mlp 256, dropout 0.3", "val": accuracy_by_corpus(mlp, data, "val"),
                          "seconds": round(time.time() - start)}), flush=True)


def train_mlp(x: np.ndarray, y: np.ndarray, weights: np.ndarray, epochs: int = 15):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(x.shape[1], 256), nn.BatchNorm1d(256), nn.ReLU(), nn.Dropout(0.3),
                        nn.Linear(256, len(CLASS_NAMES)))
    optimiser = torch.optim.AdamW(net.parameters(), 1e-3, weight_decay=1e-4)
    sampler = torch.utils.data.WeightedRandomSampler(weights.astype(float), len(y),
                                                     generator=torch.Generator().manual_seed(0))
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    for _ in range(epochs):
        net.train()
        order = torch.tensor(list(sampler))
        for i in range(0, len(order), 256):
            index = order[i:i + 256]
            loss = nn.functional.cross_entropy(net(tx[index]), ty[index])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    net.eval()

    def predict(features: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return net(torch.from_numpy(features.astype(np.float32))).argmax(1).numpy()

    return predict


class Top(nn.Module):
    """Blocks ``block``..15, the conv head and pooling of a pretrained Lite0, and the project's dense head."""

    def __init__(self, block: int, head: DenseHead) -> None:
        super().__init__()
        self.model, self.block = imagenet_lite0(), block
        self.classifier = dense_head(1280, head, len(CLASS_NAMES))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(run_blocks(self.model, x, self.block, 16))


def finetune(out: Path, size: int, block: int, epochs: int, learning_rate: float, draws: int = 8000,
             test: bool = False) -> None:
    """Train blocks ``block``.. and the head on the cached block inputs as training.loop would (Adam,
    one learning rate, cosine schedule per batch, corpus- and class-balanced draws), horizontal flips
    of the feature maps the only augmentation; validation accuracy per corpus after every epoch
    (``test``: the test parts too, after the last)."""
    data = load(out, size, f"block{block}")
    x, y, c = stacked(data, "train")
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    head = DenseHead(units=128, layers=1, dropout=0.3)
    top = Top(block, head)
    optimiser = torch.optim.Adam(top.parameters(), learning_rate, weight_decay=1e-4)
    draws = min(len(y), draws)  # face.train.epoch_samples
    steps = epochs * ((draws + BATCH - 1) // BATCH)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=steps)
    generator = torch.Generator().manual_seed(0)

    def predict(features: np.ndarray) -> np.ndarray:
        top.eval()
        with torch.inference_mode():
            return np.concatenate([top(torch.from_numpy(features[i:i + 256].astype(np.float32))).argmax(1).numpy()
                                   for i in range(0, len(features), 256)])

    for epoch in range(1, epochs + 1):
        top.train()
        start = time.time()
        order = balanced_draws(y, c, draws, rng)
        for i in range(0, draws, BATCH):
            index = order[i:i + BATCH]
            batch = torch.from_numpy(x[index].astype(np.float32))
            flip = torch.rand(len(index), generator=generator) < 0.5
            batch[flip] = batch[flip].flip(-1)
            loss = nn.functional.cross_entropy(top(batch), torch.from_numpy(y[index]))
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            scheduler.step()
        seconds = time.time() - start
        record = {"size": size, "from_block": block, "head": head.model_dump(), "lr": learning_rate, "epoch": epoch,
                  "draws": draws,
                  "seconds": round(seconds), "val": accuracy_by_corpus(predict, data, "val")}
        if test and epoch == epochs:
            record["test"] = accuracy_by_corpus(predict, data, "test")
        print(json.dumps(record), flush=True)


def compact(out: Path, epochs: int, learning_rate: float, seed: int = 0, augment: FaceAugmentConfig | None = None
            ) -> None:
    """The former default, compact_cnn_16 + head 32x3 on 48x48 grey crops from scratch, trained on the
    same corpus- and class-balanced draws as :func:`finetune`; validation and test per corpus, and the
    mean of the three corpora. ``augment``: each training crop goes through the project's Albumentations
    pipeline built from it (training.augment.face_augmentation, as face_train does); without it, hflip only.
    After the last epoch the validation accuracy with test-time flip (mean of the crop's and its mirror's
    probabilities) too."""
    params = load_params(ROOT / "params.yaml")
    data = {}
    for corpus in CORPORA:
        meta = np.load(out / f"{corpus}.npz")
        grey = np.stack([cv2.cvtColor(resize_whole(image, 48), cv2.COLOR_RGB2GRAY) for image in meta["images"]])
        data[corpus] = {"labels": meta["labels"], "splits": meta["splits"], "x": np.repeat(grey[..., None], 3, axis=3)}
    config = params.face.backbone.model_copy(update={"name": "compact_cnn_16", "pretrained": False})
    torch.manual_seed(seed)
    model = FaceEmotionNet(config, DenseHead(units=32, layers=3, dropout=0.0), use_landmarks=False, normalise=True)
    x, y, c = stacked(data, "train")
    optimiser = torch.optim.Adam(model.parameters(), learning_rate, weight_decay=1e-4)
    draws = min(len(y), 8000)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=epochs * ((draws + BATCH - 1) // BATCH))
    rng = np.random.default_rng(seed)
    pipeline = face_augmentation(augment) if augment is not None else None
    no_landmarks = np.zeros(LANDMARK_VALUES, np.float32)

    def probabilities(crops: np.ndarray) -> np.ndarray:
        model.eval()
        with torch.inference_mode():
            return np.concatenate([model({"crop": torch.from_numpy(np.ascontiguousarray(crops[i:i + 256]))})
                                   .softmax(1).numpy() for i in range(0, len(crops), 256)])

    def predict(crops: np.ndarray) -> np.ndarray:
        return probabilities(crops).argmax(1)

    def predict_flip(crops: np.ndarray) -> np.ndarray:
        return (probabilities(crops) + probabilities(crops[:, :, ::-1])).argmax(1)

    def with_mean(accuracy: dict[str, float]) -> dict[str, float]:
        return {**accuracy, "mean": round(float(np.mean(list(accuracy.values()))), 2)}

    defaults = params.face.augment.model_dump()
    changed = ({k: v for k, v in augment.model_dump().items() if v != defaults[k]} or "params.yaml's face.augment"
               if augment is not None else "hflip only")
    for epoch in range(1, epochs + 1):
        model.train()
        start = time.time()
        order = balanced_draws(y, c, draws, rng)
        for i in range(0, draws, BATCH):
            crops = x[order[i:i + BATCH]].copy()
            if pipeline is None:
                flip = rng.random(len(crops)) < 0.5
                crops[flip] = crops[flip, :, ::-1]
            else:
                crops = np.stack([augment_face(pipeline, crop, no_landmarks, rng)[0] for crop in crops])
            loss = nn.functional.cross_entropy(model({"crop": torch.from_numpy(crops)}), torch.from_numpy(y[order[i:i + BATCH]]))
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            scheduler.step()
        record = {"model": "compact_cnn_16 48px grey", "lr": learning_rate, "seed": seed, "augment": changed,
                  "epoch": epoch, "draws": draws, "seconds": round(time.time() - start),
                  "val": with_mean(accuracy_by_corpus(predict, data, "val"))}
        if epoch == epochs:
            record["val_flip_tta"] = with_mean(accuracy_by_corpus(predict_flip, data, "val"))
            if augment is None:
                record["test"] = accuracy_by_corpus(predict, data, "test")
        print(json.dumps(record), flush=True)


def int8_agreement(out: Path, size: int) -> None:
    """How often the int8 ONNX graph of EfficientNet-Lite0 (ImageNet classifier, quantised as scoring_export
    quantises the face graphs, calibrated on 64 RAF-DB training crops) gives the fp32 graph's top class
    on 1,000 RAF-DB validation crops, and the time of each per crop."""
    import tempfile

    import onnxruntime as ort

    from emotion_models.export.graphs import _export, quantise

    meta = np.load(out / "raf_db.npz")
    train, val = meta["images"][meta["splits"] == "train"][:64], meta["images"][meta["splits"] == "val"][:1000]
    model = EfficientNetLite0()
    model.load_state_dict(efficientnet_lite0_weights(), strict=True)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "lite0.onnx"
        _export(model, {"images": to_input(train[:2], size)}, path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        outputs, seconds = {}, {}
        for kind in ("fp32", "int8"):
            if kind == "int8":
                quantise(path, [{"images": to_input(train[i:i + 8], size).numpy()} for i in range(0, 64, 8)])
            session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            start = time.time()
            outputs[kind] = np.concatenate([session.run(None, {"images": to_input(val[i:i + 50], size).numpy()})[0]
                                            for i in range(0, len(val), 50)])
            seconds[kind] = (time.time() - start) / len(val)
    print(json.dumps({"size": size, "n": len(val),
                      "top1_agreement": float((outputs["fp32"].argmax(1) == outputs["int8"].argmax(1)).mean()),
                      "ms_per_crop": {kind: round(value * 1e3, 2) for kind, value in seconds.items()}}))


def main() -> None:
    torch.set_num_threads(1)
    command, out = sys.argv[1], Path(sys.argv[2])
    args = sys.argv[3:]
    if command == "cache":
        cache(out)
    elif command == "features":
        features(out, int(args[0]), int(args[1]), int(args[2]) if len(args) > 2 else None)
    elif command == "heads":
        heads(out, [int(a) for a in args])
    elif command == "int8":
        int8_agreement(out, int(args[0]))
    elif command == "compact":
        compact(out, int(args[0]), float(args[1]))
    elif command == "augment":
        params = load_params(ROOT / "params.yaml")
        switched = dict(pair.split("=") for pair in args[3:])
        augment = params.face.augment.model_copy(update={name: float(p) for name, p in switched.items()})
        compact(out, int(args[0]), float(args[1]), int(args[2]), augment)
    elif command in ("finetune", "report"):
        finetune(out, int(args[0]), int(args[1]), int(args[2]), float(args[3]),
                 int(args[4]) if len(args) > 4 else 8000, test=command == "report")
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
