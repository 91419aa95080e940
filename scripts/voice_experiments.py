"""Voice experiments: per-speaker normalisation, CASIA in training, waveform augmentation (issue 25).

A fast protocol: a class-balanced logistic regression on the audio model's clip features (Whisper
embedding + utterance statistics) in the project's own folds (tasks/cross_validate.py): each corpus
left out, RAVDESS 6 speaker folds, SAVEE and CASIA leave one speaker out. Training uses training and
validation speakers (as the refit model). Rows are weighted so every corpus and, within it, every
class weighs the same (the ``corpus_class`` balance of training).

Features come from a working folder where the project's stages ran on the audio corpora alone:

    python scripts/voice_experiments.py extract WORK [--transforms noise reverb ...]
    python scripts/voice_experiments.py table WORK [--transforms noise reverb ...]

``extract`` runs the download, harmonise and audio_features stages with WORK/params.yaml (audio
corpora enabled, ``data.root`` pointing at the datasets) inside WORK, then the augmented copies.
``table`` prints accuracy per protocol for: the baseline (no CASIA), + CASIA in training, + speaker
normalisation, + each waveform transform alone, + the kept ones together; and the accuracy of
speaker-normalised test groups of k clips against the single-clip path (the threshold N).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np
import polars as pl
from sklearn.linear_model import LogisticRegression

from emotion_models.features.normalise import normalise_by_group
from emotion_models.params import CrossValidationConfig, load_params

PROTOCOLS = CrossValidationConfig(speaker_folds={"ravdess": 6, "savee": 2, "casia": 4}, leave_corpus_out=True)
ALL_TRANSFORMS = ["noise", "reverb", "telephone", "speed", "pitch", "gain", "mp3"]


def extract(work: Path, transforms: list[str]) -> None:
    """The manifest, clean features and augmented copies of the audio corpora in ``work``."""
    from emotion_models.nets.audio import AudioSpec
    from tasks.download import download_datasets
    from tasks.features import extract_augmented, extract_features
    from tasks.harmonise import harmonise

    params = load_params(work / "params.yaml")
    download_datasets(params)
    harmonise(params)
    start = time.time()
    print(f"clean features: {extract_features(AudioSpec(), params.model_copy(deep=True))} "
          f"in {time.time() - start:.0f} s", flush=True)
    for transform in transforms:
        start = time.time()
        print(f"{transform}: {extract_augmented(AudioSpec(), params, transforms=[transform])[transform]} "
              f"in {time.time() - start:.0f} s", flush=True)


def load_features(store) -> pl.DataFrame:
    """clip_id, corpus, speaker, label and the feature vector (embedding + statistics) of every row."""
    frames = []
    for table, arrays in store.iter_shards(["embedding", "stats"]):
        x = np.concatenate([np.stack(arrays["embedding"]), np.stack(arrays["stats"])], axis=1).astype(np.float32)
        frames.append(table.select("clip_id", "dataset", "speaker_id", "label").with_columns(
            pl.Series("x", x, dtype=pl.Array(pl.Float32, x.shape[1]))))
    return pl.concat(frames)


def balanced_weights(corpora: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Each corpus the same total weight and, within it, each class."""
    weights = np.zeros(len(labels))
    names = np.unique(corpora)
    for corpus in names:
        in_corpus = corpora == corpus
        classes = np.unique(labels[in_corpus])
        for label in classes:
            rows = in_corpus & (labels == label)
            weights[rows] = 1.0 / (len(names) * len(classes) * rows.sum())
    return weights * len(labels)


def fit_predict(train_x, train_y, train_w, test_x) -> np.ndarray:
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(train_x)
    model = LogisticRegression(C=0.05, max_iter=300).fit(scaler.transform(train_x), train_y, sample_weight=train_w)
    return model.predict(scaler.transform(test_x))


class Experiment:
    """The features of the work folder and the project's folds over them."""

    def __init__(self, work: Path, transforms: list[str]) -> None:
        from emotion_models.nets.audio import AudioSpec
        from tasks.cross_validate import corpus_speakers, protocol_folds

        params = load_params(work / "params.yaml")
        os.chdir(work)
        spec = AudioSpec()
        self.clean = load_features(spec.store(params))
        self.copies = {t: load_features(spec.augmented_store(params, t)) for t in transforms}
        manifest = pl.read_parquet("data/manifest.parquet")
        self.corpus_of = dict(zip(manifest["dataset"], manifest["corpus"]))
        self.folds = protocol_folds(corpus_speakers(manifest, "audio", params.seed), PROTOCOLS,
                                    params.data.split.val_fraction, params.data.split.min_speakers)

    def arrays(self, frame: pl.DataFrame, group_suffix: str = "") -> tuple:
        corpus = np.array([self.corpus_of[d] for d in frame["dataset"]])
        who = [(c, s, group_suffix) for c, s in zip(corpus, frame["speaker_id"])]
        return frame["x"].to_numpy(), frame["label"].to_numpy(), corpus, who

    def run(self, casia: bool, normalise: bool, transforms: list[str]) -> dict[str, float]:
        """Accuracy (mean over folds) per protocol, pooled test clips of each fold."""
        x, y, corpus, who = self.arrays(self.clean)
        speakers = np.array([f"{c}/{s}" for c, s, _ in who])
        if normalise:
            x, _ = normalise_by_group(x, who, 0.0, 1.0, 2)
        extra = []
        for transform in transforms:
            ax, ay, acorpus, awho = self.arrays(self.copies[transform], transform)
            if normalise:
                ax, _ = normalise_by_group(ax, awho, 0.0, 1.0, 2)
            extra.append((ax, ay, acorpus, np.array([f"{c}/{s}" for c, s, _ in awho])))
        results: dict[str, list[float]] = {}
        for fold in self.folds:
            trained = {f"{c}/{s}" for c, s in fold.train | fold.val if casia or c != "casia"}
            if not casia and any(c == "casia" for c, _ in fold.test):
                continue
            tested = {f"{c}/{s}" for c, s in fold.test}
            rows, test = np.isin(speakers, list(trained)), np.isin(speakers, list(tested))
            parts = [(x[rows], y[rows], corpus[rows])]
            parts += [(ax[np.isin(aspk, list(trained))], ay[np.isin(aspk, list(trained))],
                       ac[np.isin(aspk, list(trained))]) for ax, ay, ac, aspk in extra]
            tx, ty, tc = (np.concatenate(p) for p in zip(*parts))
            predicted = fit_predict(tx, ty, balanced_weights(tc, ty), x[test])
            name = "LOCO " + fold.name if fold.protocol == "leave_corpus_out" else fold.protocol
            results.setdefault(name, []).append(float((predicted == y[test]).mean()))
        return {name: statistics.mean(values) for name, values in results.items()}

    def threshold(self, sizes: list[int], repeats: int = 3) -> dict[int, tuple[float, float]]:
        """LOCO with CASIA, trained speaker-normalised: test clips normalised in random groups of k
        clips of one speaker, against the same clips alone (mapped by the training population's
        statistics, the single-clip path). Accuracy (grouped, alone) per k, over every corpus."""
        x, y, corpus, who = self.arrays(self.clean)
        speakers = np.array([f"{c}/{s}" for c, s, _ in who])
        rng = np.random.default_rng(0)
        grouped: dict[int, list[float]] = {k: [] for k in sizes}
        alone: list[float] = []
        for fold in [f for f in self.folds if f.protocol == "leave_corpus_out"]:
            trained = np.isin(speakers, [f"{c}/{s}" for c, s in fold.train | fold.val])
            tx, _ = normalise_by_group(x[trained], [w for w, t in zip(who, trained) if t], 0.0, 1.0, 2)
            mean, std = x[trained].mean(0), x[trained].std(0) + 1e-6
            model = LogisticRegression(C=0.05, max_iter=300).fit(
                tx, y[trained], sample_weight=balanced_weights(corpus[trained], y[trained]))
            test = np.flatnonzero(np.isin(speakers, [f"{c}/{s}" for c, s in fold.test]))
            alone.append(float((model.predict((x[test] - mean) / std) == y[test]).mean()))
            for k in sizes:
                for _ in range(repeats):
                    groups = np.empty(len(test), object)
                    for speaker in np.unique(speakers[test]):
                        order = rng.permutation(np.flatnonzero(speakers[test] == speaker))
                        groups[order] = [f"{speaker}:{i // k}" for i in range(len(order))]
                    normalised = normalise_by_group(x[test], list(groups), mean, std, k)[0]
                    grouped[k].append(float((model.predict((normalised - mean) / std) == y[test]).mean()))
        out = {k: (statistics.mean(v), statistics.mean(alone)) for k, v in grouped.items()}
        return out


def table(work: Path, transforms: list[str], recipes: bool = True, together: bool = False) -> None:
    experiment = Experiment(work, transforms)
    rows = {}
    if recipes:
        rows = {"baseline (no CASIA)": experiment.run(False, False, []),
                "+ CASIA": experiment.run(True, False, []),
                "+ CASIA + speaker norm": experiment.run(True, True, [])}
    if together:
        rows[f"+ CASIA + speaker norm + {' + '.join(transforms)}"] = experiment.run(True, True, transforms)
        transforms = []
    for transform in transforms:
        rows[f"+ CASIA + speaker norm + {transform}"] = experiment.run(True, True, [transform])
    columns = sorted({c for r in rows.values() for c in r})
    print("| recipe | " + " | ".join(columns) + " | LOCO mean |")
    print("|---" * (len(columns) + 2) + "|")
    for name, result in rows.items():
        loco = statistics.mean(v for c, v in result.items() if c.startswith("LOCO"))
        print(f"| {name} | " + " | ".join(f"{100 * result[c]:.1f}" if c in result else "-" for c in columns)
              + f" | {100 * loco:.1f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["extract", "table", "threshold"])
    parser.add_argument("work", type=Path, help="working folder with params.yaml (never the project's data/)")
    parser.add_argument("--transforms", nargs="*", default=ALL_TRANSFORMS)
    parser.add_argument("--no-recipes", action="store_true", help="table: only the rows with transforms")
    parser.add_argument("--together", action="store_true", help="table: the transforms together, not one at a time")
    options = parser.parse_args()
    work = options.work.resolve()
    if options.command == "extract":
        extract(work, options.transforms)
    elif options.command == "table":
        table(work, options.transforms, not options.no_recipes, options.together)
    else:
        for k, (grouped, alone) in Experiment(work, []).threshold([1, 2, 3, 5, 8, 12, 20, 40]).items():
            print(f"k={k}: grouped {100 * grouped:.1f}%, alone {100 * alone:.1f}%")


if __name__ == "__main__":
    main()
