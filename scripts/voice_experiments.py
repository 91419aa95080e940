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

The logistic regression and the model's head did not always agree about a transform, so the
choice is made with the head itself (the training and folds of tasks/cross_validate.py):

    python scripts/voice_experiments.py seeds WORK --recipes none reverb pitch+speed --seeds 42 43 44 45 46

trains the head on every leave-one-corpus-out fold for each recipe (waveform transforms joined by
``+``; ``none``: clean clips only) and seed (the seed also draws the folds' validation speakers),
on one thread, and prints each recipe's per-corpus means and its paired difference from the first
recipe (mean and standard error over the seeds); WORK/seeds.json keeps every fold's accuracy.
The corpora are all clean studio speech, so a left-out corpus never tests a room: with
``--unseen-rooms`` each fold's test speakers are also scored on reverberated copies made with
another seed and longer reverberation (``--rooms-seed 1 --rooms-rt60 0.3 1.2``: rooms the training
copies never drew), extracted once into WORK/data/features/unseen_rooms and speaker-normalised as
a video's windows are.
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


def unseen_rooms_store(params, seed: int, rt60: tuple[float, float]):
    """Every clip reverberated in rooms the training copies never drew (the reverb transform with
    another ``seed`` and ``rt60`` seconds), extracted once into the working folder's
    data/features/unseen_rooms and normalised as the clean store."""
    from emotion_models.features.audio_augment import transform_key
    from emotion_models.nets.audio import AudioSpec
    from tasks.features import extract_copies, manifest_rows

    spec = AudioSpec()
    rooms = params.audio.waveform_augment.model_copy(update={"seed": seed, "reverb_rt60": rt60})
    rooms_params = params.model_copy(update={"audio": params.audio.model_copy(update={"waveform_augment": rooms})})
    # the model's own store rule (normalised as audio.normalise says), at a root of the script's
    store = spec._store(rooms_params, Path("data/features/unseen_rooms").resolve(),
                        transform_key(params.audio.features, rooms, "reverb"))
    extracted, rejected = extract_copies(spec, rooms_params, "reverb", store,
                                         manifest_rows(spec, pl.read_parquet("data/manifest.parquet")))
    print(f"unseen rooms: {extracted} copies extracted, {rejected} rejected", flush=True)
    return store


def head_seeds(work: Path, recipes: list[str], seeds: list[int],
               rooms: tuple[int, tuple[float, float]] | None = None) -> None:
    """The model's own head on the leave-one-corpus-out folds, per recipe and seed; with ``rooms``
    (seed, RT60 range) each fold's test speakers are also scored in unseen rooms (see the module's doc)."""
    import json

    import torch

    from emotion_models.features.audio_augment import copy_id
    from emotion_models.nets.audio import AudioSpec
    from tasks.cross_validate import corpus_speakers, fold_labels, protocol_folds, train_fold
    from tasks.evaluate import score_store

    params = load_params(work / "params.yaml")
    os.chdir(work)
    torch.set_num_threads(1)
    spec = AudioSpec()
    room_store = unseen_rooms_store(params, *rooms) if rooms else None
    manifest = pl.read_parquet("data/manifest.parquet").filter(~pl.col("composed"))
    clips = manifest.filter(pl.col("modality") == "audio")
    datasets = dict(zip(clips["clip_id"], clips["dataset"]))
    room_datasets = {copy_id(clip, "reverb"): dataset for clip, dataset in datasets.items()}
    tests = ["clean"] + (["unseen rooms"] if rooms else [])
    runs: dict[str, dict[int, dict[str, dict[str, float]]]] = {}  # recipe -> seed -> test -> corpus -> accuracy
    for recipe in recipes:
        transforms = [] if recipe == "none" else recipe.split("+")
        audio = params.audio.model_copy(update={"waveform_augment": params.audio.waveform_augment.model_copy(
            update={"transforms": transforms})})
        for seed in seeds:
            run = params.model_copy(update={"seed": seed, "audio": audio})
            folds = protocol_folds(corpus_speakers(manifest, "audio", seed), CrossValidationConfig(leave_corpus_out=True),
                                   params.data.split.val_fraction, params.data.split.min_speakers)
            result = runs.setdefault(recipe, {}).setdefault(seed, {test: {} for test in tests})
            for fold in folds:
                labels = fold_labels(clips, fold)
                model, meta, _ = train_fold(spec, run, labels, lambda _: None)
                result["clean"][fold.name] = score_store(spec, run, spec.store(run), labels["test"], datasets,
                                                         model, meta)[0]["accuracy"]
                if room_store is not None:  # the same features of other waveforms: its key, not the clean one
                    result["unseen rooms"][fold.name] = score_store(
                        spec, run, room_store, {copy_id(c, "reverb"): y for c, y in labels["test"].items()},
                        room_datasets, model, {**meta, "feature_key": room_store.key})[0]["accuracy"]
            print(f"{recipe} seed {seed}: " + "; ".join(
                f"{test} " + ", ".join(f"{c} {100 * a:.1f}" for c, a in result[test].items()) for test in tests), flush=True)
            (work / "seeds.json").write_text(json.dumps(runs, indent=1))
    for test in tests:
        first = runs[recipes[0]]
        corpora = sorted(first[seeds[0]][test])
        print(f"\nleave one corpus out, {test}:")
        print("| recipe | " + " | ".join(corpora) + f" | mean | paired difference from {recipes[0]} |")
        print("|---" * (len(corpora) + 3) + "|")
        for recipe, by_seed in runs.items():
            means = [statistics.mean(by_seed[s][test][c] for s in seeds) for c in corpora]
            differences = [100 * (statistics.mean(by_seed[s][test].values()) - statistics.mean(first[s][test].values()))
                           for s in seeds]
            spread = statistics.stdev(differences) / len(seeds) ** 0.5 if len(seeds) > 1 else 0.0
            print(f"| {recipe} | " + " | ".join(f"{100 * m:.1f}" for m in means) +
                  f" | {100 * statistics.mean(means):.1f} | {statistics.mean(differences):+.1f} ± {spread:.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["extract", "table", "threshold", "seeds"])
    parser.add_argument("work", type=Path, help="working folder with params.yaml (never the project's data/)")
    parser.add_argument("--transforms", nargs="*", default=ALL_TRANSFORMS)
    parser.add_argument("--no-recipes", action="store_true", help="table: only the rows with transforms")
    parser.add_argument("--together", action="store_true", help="table: the transforms together, not one at a time")
    parser.add_argument("--recipes", nargs="+", default=["none", "reverb"],
                        help="seeds: transform sets, joined by + ('none': clean clips only); the first is the reference")
    parser.add_argument("--seeds", nargs="+", type=int, default=[42, 43, 44, 45, 46], help="seeds: the seeds")
    parser.add_argument("--unseen-rooms", action="store_true",
                        help="seeds: also score each left-out corpus reverberated in rooms training never drew")
    parser.add_argument("--rooms-seed", type=int, default=1, help="seeds --unseen-rooms: the rooms' seed")
    parser.add_argument("--rooms-rt60", nargs=2, type=float, default=[0.3, 1.2], metavar=("MIN", "MAX"),
                        help="seeds --unseen-rooms: the rooms' reverberation times (s)")
    options = parser.parse_args()
    work = options.work.resolve()
    if options.command == "extract":
        extract(work, options.transforms)
    elif options.command == "seeds":
        rooms = (options.rooms_seed, tuple(options.rooms_rt60)) if options.unseen_rooms else None
        head_seeds(work, options.recipes, options.seeds, rooms)
    elif options.command == "table":
        table(work, options.transforms, not options.no_recipes, options.together)
    else:
        for k, (grouped, alone) in Experiment(work, []).threshold([1, 2, 3, 5, 8, 12, 20, 40]).items():
            print(f"k={k}: grouped {100 * grouped:.1f}%, alone {100 * alone:.1f}%")


if __name__ == "__main__":
    main()
