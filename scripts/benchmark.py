"""Speed and memory of the pipeline on this machine; results go to reports/bench/.

    python scripts/benchmark.py audio        # audio feature clips/s (1 and all cores), seconds per audio epoch
    python scripts/benchmark.py scoring      # video-seconds per wall-second and peak RSS of the score
                                             # flow (60 s video, 20 short clips; transcription on and off)
    python scripts/benchmark.py scoring --long   # adds a 10-minute video (peak RSS target < 2 GB)

Every scenario runs in its own process, so its peak RSS is its own. Needs ../shared/datasets,
ffmpeg, and trained models (dvc repro) for scoring.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("EMOTION_SHARED_DATASETS", ROOT.parent / "shared" / "datasets"))
OUT = ROOT / "reports" / "bench"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def scenario_features(workers: int) -> dict:
    """The audio model's features (params.yaml's representation) of the 720 RAVDESS clips."""
    from emotion_models.features.shards import FeatureStore, extract
    from emotion_models.nets.audio import AudioSpec
    from emotion_models.params import load_params

    params = load_params(ROOT / "params.yaml")
    features = params.audio.features.model_copy(update={"workers": workers})
    featurise = AudioSpec().featuriser(params.model_copy(update={"audio": params.audio.model_copy(
        update={"features": features})}))
    clips = sorted((SHARED / "ravdess-speech-16k").rglob("*.wav"))
    rows = [{"clip_id": str(p), "path": str(p), "label": 0} for p in clips]
    featurise(rows[0])  # warm librosa's JIT caches (and load Whisper) outside the timing
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        extract(rows, featurise, FeatureStore(tmp, "bench", "parquet"), workers, 256)
        seconds = time.perf_counter() - start
    return {"clips": len(rows), "workers": workers, "representation": features.representation, "seconds": seconds,
            "clips_per_second": len(rows) / seconds}


def scenario_audio_epoch() -> dict:

    from torch import nn, optim

    from emotion_models.nets.audio import AudioSpec
    from emotion_models.params import load_params
    from emotion_models.training.data import ShardDataset, make_loader
    from emotion_models.training.loop import run_epoch, select_device

    params, spec = load_params(ROOT / "params.yaml"), AudioSpec()
    store = spec.store(params, ROOT / "data" / "features" / "audio")
    ids = store.index()["clip_id"].to_list()
    if not ids:
        raise SystemExit("no audio features: run `dvc repro audio_features` first")
    model = spec.build(spec.model_config(params))
    data = ShardDataset(store, spec.arrays(params), {i: 0 for i in ids[:480]}, shuffle=True,
                        transform=spec.train_transform(params, model))
    device = select_device()
    loader = make_loader(data, params.audio.train.batch_size, 0, device)
    start = time.perf_counter()
    run_epoch(model.to(device), loader, device, nn.CrossEntropyLoss(), optim.Adam(model.parameters()))
    return {"clips": len(data), "representation": params.audio.features.representation,
            "backbone": params.audio.backbone.name, "device": str(device),
            "seconds_per_epoch": time.perf_counter() - start}


def make_long_video(seconds: int, target: Path) -> Path:
    """Real CREMA-D clips concatenated (and re-encoded, H.264 + AAC) to ``seconds`` with ffmpeg."""
    clips = sorted((SHARED / "crema-d-video").glob("*.flv"))
    listing = target.with_suffix(".txt")
    repeats = seconds // 2 + 1
    listing.write_text("".join(f"file '{clips[i % len(clips)]}'\n" for i in range(repeats)))
    subprocess.run(["ffmpeg", "-y", "-loglevel", "error", "-f", "concat", "-safe", "0", "-i", str(listing),
                    "-t", str(seconds), "-c:v", "libx264", "-preset", "veryfast", "-c:a", "aac", str(target)],
                   check=True)
    listing.unlink()
    return target


def tagged_copy(clip: Path, target: Path, number: int) -> Path:
    """A stream copy of ``clip`` with its own metadata tag, so every copy has its own content hash."""
    subprocess.run(["ffmpeg", "-y", "-loglevel", "error", "-i", str(clip), "-c", "copy",
                    "-metadata", f"comment=benchmark copy {number}", str(target)], check=True)
    return target


def scenario_scoring(kind: str, transcription: bool, model_dir: str) -> dict:
    """Video-seconds per wall-second of the `score` flow as users run it (params.yaml's task runner),
    on a folder of fresh copies. The Prefect API is started before timing; the once-per-process
    startup (the first flow run, here over an empty folder: models, Whisper and library imports via
    `load_models` + `warm_up`, the Prefect client's handshake) is timed apart and included in
    ``realtime_factor_with_startup``."""
    import yaml
    from prefect.testing.utilities import prefect_test_harness

    from emotion_models.features.media import probe
    from flows.scoring import run_scoring

    with tempfile.TemporaryDirectory() as tmp, prefect_test_harness():
        raw = yaml.safe_load((ROOT / "params.yaml").read_text())
        raw["video"]["transcription"]["enabled"] = transcription
        params_path = Path(tmp) / "params.yaml"
        params_path.write_text(yaml.safe_dump(raw))
        folder = Path(tmp) / "in"
        folder.mkdir()
        if kind == "short20":
            clips = sorted((SHARED / "crema-d-video").glob("*.flv"))
            files = [tagged_copy(clips[i % len(clips)], folder / f"clip{i:02d}.flv", i) for i in range(20)]
        else:
            files = [make_long_video({"60s": 60, "600s": 600}[kind], folder / f"{kind}.mp4")]
        video_seconds = sum(probe(f).duration for f in files)
        start = time.perf_counter()
        empty = Path(tmp) / "empty"  # a run over no files: models, warm_up and the Prefect client's handshake
        empty.mkdir()
        run_scoring([str(empty)], str(Path(tmp) / "out-empty"), str(params_path), model_dir)
        loaded = time.perf_counter()
        counts = run_scoring([str(folder)], str(Path(tmp) / "out"), str(params_path), model_dir)
        done = time.perf_counter()
        assert counts["scored"] == len(files), counts
    return {"scenario": kind, "transcription": transcription, "videos": len(files), "video_seconds": video_seconds,
            "startup_seconds": loaded - start, "scoring_seconds": done - loaded,
            "realtime_factor": video_seconds / (done - loaded),
            "realtime_factor_with_startup": video_seconds / (done - start)}


def run_in_subprocess(*args: str) -> dict:
    result = subprocess.run([sys.executable, __file__, "_scenario", *args], capture_output=True, text=True, cwd=ROOT)
    if result.returncode:
        raise SystemExit(f"scenario {args} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def write(name: str, results: list[dict]) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    machine = {"cpu_cores": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()}
    (OUT / f"{name}.json").write_text(json.dumps({"machine": machine, "results": results}, indent=2) + "\n")
    keys = list(dict.fromkeys(k for r in results for k in r))
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(f"{r[k]:.2f}" if isinstance(r.get(k), float) else str(r.get(k, "")) for k in keys)
              + " |" for r in results]
    (OUT / f"{name}.md").write_text(f"# {name} benchmark ({os.cpu_count()} cores)\n\n" + "\n".join(lines) + "\n")
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["audio", "scoring", "_scenario"])
    parser.add_argument("args", nargs="*")
    parser.add_argument("--long", action="store_true", help="also score a 10-minute video")
    parser.add_argument("--model-dir", default="models")
    options = parser.parse_args()
    if options.what == "_scenario":
        name, *rest = options.args
        result = {"features": lambda: scenario_features(int(rest[0])), "epoch": scenario_audio_epoch,
                  "score": lambda: scenario_scoring(rest[0], rest[1] == "on", rest[2])}[name]()
        print(json.dumps({**result, "peak_rss_mb": peak_rss_mb()}))
    elif options.what == "audio":
        write("audio", [run_in_subprocess("features", "1"), run_in_subprocess("features", str(os.cpu_count())),
                        run_in_subprocess("epoch")])
    else:
        kinds = ["60s", "short20"] + (["600s"] if options.long else [])
        write("scoring", [run_in_subprocess("score", kind, flag, options.model_dir)
                          for kind in kinds for flag in ("on", "off")])


if __name__ == "__main__":
    main()
