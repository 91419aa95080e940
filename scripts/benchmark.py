"""Speed and memory of the pipeline on this machine; results go to reports/bench/.

    python scripts/benchmark.py audio      # audio feature clips/s (1 and all cores), seconds per audio epoch
    python scripts/benchmark.py scoring    # the score flow: start-up, video-seconds per wall-second,
                                           # peak RSS (60 s video, 20 short clips; transcription on/off)
    python scripts/benchmark.py scoring --long   # adds a 10-minute video (peak RSS target < 1.5 GiB)
    python scripts/benchmark.py scoring --runtimes onnx,torch   # the ONNX graphs beside the checkpoints
    python scripts/benchmark.py rescan     # rescan of 10,000 unchanged files (hard links), a no-op
                                           # scheduled run of the served deployment
    python scripts/benchmark.py scaleout   # one folder by threads, a Dask LocalCluster, and a
                                           # `dask scheduler` + 2 `dask worker` processes

Scoring benchmarks run against a Prefect server the benchmark starts (`prefect server start --host
127.0.0.1`, telemetry off). ``--baseline DIR`` runs the same scenarios with the code in DIR too
(e.g. ``git archive e9f5bcc | tar -x -C /tmp/base``), on the same inputs and models, and puts
each figure beside its baseline. ``--repeat N`` runs each scenario N times; tables give medians.
Every scenario runs in its own process, so its peak RSS is its own. Needs ../shared/datasets
(or EMOTION_SHARED_DATASETS), ffmpeg, and trained models (``--model-dir``).
"""

from __future__ import annotations

import json
import os
import platform
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Annotated, Literal

import typer

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
    featurise(rows[0])  # load Whisper outside the timing
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


def savee_sentences() -> list[Path]:
    """SAVEE clips in an order that changes speaker, emotion and sentence from one clip to the next:
    the two speakers alternate, the second one 7 sentences ahead. Sentences 1-3 of each emotion,
    the same three for every emotion, are left out."""
    def sentence(p: Path) -> tuple[str, int]:
        code = p.stem.split("_")[1]
        return code.rstrip("0123456789"), int(code.lstrip("adfhnsu"))

    speakers = [sorted((p for p in (SHARED / "savee-audio-16k").glob(f"{s}_*.flac") if sentence(p)[1] > 3),
                       key=lambda p: sentence(p)[::-1]) for s in ("DC", "JE")]
    first, second = speakers[0], speakers[1][7:] + speakers[1][:7]
    return [clip for pair in zip(first, second) for clip in pair]


def make_long_video(seconds: int, target: Path) -> Path:
    """A talking-head video of ``seconds`` with varied speech (H.264 + AAC, 480x360): the CREMA-D
    actor's face clips looped under SAVEE sentences of two speakers, one after another (different
    sentences, emotions and voices; the lips do not match the words, which no model here reads)."""
    faces = sorted((SHARED / "crema-d-video").glob("*.flv"))
    sentences = savee_sentences()
    voices, video = target.with_suffix(".voices.txt"), target.with_suffix(".faces.txt")
    voices.write_text("".join(f"file '{sentences[i % len(sentences)]}'\n" for i in range(seconds // 2 + 1)))
    video.write_text("".join(f"file '{faces[i % len(faces)]}'\n" for i in range(seconds // 2 + 1)))
    subprocess.run(["ffmpeg", "-y", "-loglevel", "error", "-f", "concat", "-safe", "0", "-i", str(video),
                    "-f", "concat", "-safe", "0", "-i", str(voices), "-map", "0:v", "-map", "1:a",
                    "-t", str(seconds), "-c:v", "libx264", "-preset", "veryfast", "-c:a", "aac", str(target)],
                   check=True)
    voices.unlink()
    video.unlink()
    return target


def tagged_copy(clip: Path, target: Path, number: int) -> Path:
    """A stream copy of ``clip`` with its own metadata tag, so every copy has its own content hash."""
    target.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["ffmpeg", "-y", "-loglevel", "error", "-i", str(clip), "-c", "copy",
                    "-metadata", f"comment=benchmark copy {number}", str(target)], check=True)
    return target


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# --- scenarios: each runs in its own process, with the code under test first on PYTHONPATH ------


def scenario_score(folder: str, params: str, model_dir: str, warm: str) -> dict:
    """Wall and CPU seconds of one run of the score flow over ``folder``, after a first run over
    ``warm`` (one other clip) has paid this process's start-up (imports, models, Whisper)."""
    from emotion_models.features.media import probe
    from flows.scoring import run_scoring

    tmp = Path(tempfile.mkdtemp(prefix="bench-"))
    try:
        run_scoring([warm], str(tmp / "out-warm"), params, model_dir)
        start, cpu = time.perf_counter(), cpu_seconds()
        counts = run_scoring([folder], str(tmp / "out"), params, model_dir)
        seconds, cpu = time.perf_counter() - start, cpu_seconds() - cpu
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    files = sorted(Path(folder).iterdir())
    assert counts["scored"] == len(files), counts
    video_seconds = sum(probe(f).duration for f in files)
    return {"videos": len(files), "video_seconds": video_seconds, "scoring_seconds": seconds,
            "realtime_factor": video_seconds / seconds, "cpu_seconds_per_video_second": cpu / video_seconds}


def scenario_startup(params: str, model_dir: str, first: str, second: str, spawned_at: str) -> dict:
    """Start-up to the first video: from the process's spawn to the end of its first run (one short
    clip), less what the same clip costs a warm process (a second run, over another copy)."""
    from flows.scoring import run_scoring

    tmp = Path(tempfile.mkdtemp(prefix="bench-"))
    try:
        run_scoring([first], str(tmp / "out-1"), params, model_dir)
        first_done, first_cpu = time.time(), cpu_seconds()
        run_scoring([second], str(tmp / "out-2"), params, model_dir)
        warm, warm_cpu = time.time() - first_done, cpu_seconds() - first_cpu
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"startup_seconds": first_done - float(spawned_at) - warm, "startup_cpu_seconds": first_cpu - warm_cpu,
            "warm_clip_seconds": warm}


def scenario_rescan(folder: str, links: str, out: str, params: str, model_dir: str) -> dict:
    """Score ``folder`` into ``out``, then scan ``links`` (hard links of the same files) twice: the
    first scan meets the links for the first time, the second is a rescan of unchanged files."""
    from flows.scoring import run_scoring

    run_scoring([folder], out, params, model_dir)
    result = {}
    for name in ("first_scan", "rescan"):
        start, cpu = time.perf_counter(), cpu_seconds()
        counts = run_scoring([links], out, params, model_dir)
        result |= {f"{name}_seconds": time.perf_counter() - start, f"{name}_cpu_seconds": cpu_seconds() - cpu}
        assert counts["scored"] == 0, counts
    return {"files": sum(1 for _ in Path(links).rglob("*.flv")), **result}


SCENARIOS = {"score": scenario_score, "startup": scenario_startup, "rescan": scenario_rescan}


def run_scenario(code: Path, env: dict, name: str, *args: str) -> dict:
    """One scenario in a fresh process running ``code``; its result plus the process's peak RSS."""
    env = {**env, "PYTHONPATH": str(code)}
    command = [sys.executable, str(Path(__file__).resolve()), "_scenario", name, *args]
    result = subprocess.run(command, capture_output=True, text=True, cwd=code, env=env)
    if result.returncode:
        raise SystemExit(f"scenario {name} {args} failed:\n{result.stderr[-4000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


# --- the setting: a Prefect server, the code versions, the inputs ------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def prefect_server(home: Path) -> Iterator[dict]:
    """`prefect server start --host 127.0.0.1` in a temporary home, telemetry off; yields the
    environment that points clients at it."""
    url = f"http://127.0.0.1:{free_port()}/api"
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_API_URL": url, "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "DO_NOT_TRACK": "1", "EMOTION_SHARED_DATASETS": str(SHARED)}
    home.mkdir(parents=True, exist_ok=True)
    with (home / "server.log").open("w") as log:
        server = subprocess.Popen([str(Path(sys.executable).parent / "prefect"), "server", "start", "--host",
                                   "127.0.0.1", "--port", url.split(":")[2].split("/")[0]], env=env, stdout=log,
                                  stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit(f"the Prefect server did not start: see {home / 'server.log'}") from None
                time.sleep(1)
        yield env
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(30)


def code_versions(baseline: str | None) -> dict[str, Path]:
    return {"new": ROOT, **({"baseline": Path(baseline).resolve()} if baseline else {})}


def params_file(code: Path, target: Path, transcription: bool = True, runtime: str | None = None) -> str:
    """The params.yaml of ``code`` with transcription on or off (and ``scoring.runtime`` when given)."""
    import yaml

    raw = yaml.safe_load((code / "params.yaml").read_text())
    raw["video"]["transcription"]["enabled"] = transcription
    if runtime:
        raw["scoring"]["runtime"] = runtime
    target.write_text(yaml.safe_dump(raw))
    return str(target)


def short_clips(folder: Path, count: int, first_tag: int = 0) -> Path:
    """``count`` tagged copies of the CREMA-D clips (each its own content hash)."""
    clips = sorted((SHARED / "crema-d-video").glob("*.flv"))
    for i in range(count):
        tagged_copy(clips[i % len(clips)], folder / f"clip{i:02d}.flv", first_tag + i)
    return folder


def medians(rows: list[dict], keys: tuple[str, ...]) -> list[dict]:
    """One row per (keys) group: the median of every numeric column, and the repeat count."""
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault(tuple(row.get(k) for k in keys), []).append(row)
    table = []
    for group, members in groups.items():
        numeric = [k for k, v in members[0].items() if isinstance(v, (int, float)) and not isinstance(v, bool)
                   and k not in keys]
        table.append({**dict(zip(keys, group)), "runs": len(members),
                      **{k: statistics.median(m[k] for m in members) for k in numeric}})
    return table


# --- the benchmarks -----------------------------------------------------------------------------


def bench_scoring(options) -> None:
    kinds = {"60s": 60, "short20": None, **({"600s": 600} if options.long else {})}
    rows = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        for kind in kinds:
            (tmp / kind).mkdir()
        inputs = {kind: (make_long_video(seconds, tmp / kind / f"{kind}.mp4").parent if seconds
                         else short_clips(tmp / kind, 20)) for kind, seconds in kinds.items()}
        warm = short_clips(tmp / "warm", 1, 100)
        startup = [short_clips(tmp / "startup-1", 1, 101), short_clips(tmp / "startup-2", 1, 102)]
        keys = ("scenario", "transcription", "code", "runtime")
        with prefect_server(tmp / "prefect") as env:
            for repeat in range(options.repeat):
                for code_name, code in code_versions(options.baseline).items():
                    for runtime in (options.runtimes.split(",") if code_name == "new" else [None]):
                        params = {flag: params_file(code, tmp / f"params-{code_name}-{runtime}-{flag}.yaml",
                                                    flag == "on", runtime) for flag in ("on", "off")}
                        rows.append({"scenario": "startup", "code": code_name, "runtime": runtime, **run_scenario(
                            code, env, "startup", params["on"], options.model_dir, str(startup[0]), str(startup[1]),
                            str(time.time()))})
                        print(json.dumps(rows[-1]), flush=True)
                        for kind in kinds:
                            for flag in ("on", "off"):
                                result = run_scenario(code, env, "score", str(inputs[kind]), params[flag],
                                                      options.model_dir, str(warm))
                                rows.append({"scenario": kind, "transcription": flag, "code": code_name,
                                             "runtime": runtime, **result})
                                print(json.dumps(rows[-1]), flush=True)
                                write("scoring", rows, medians(rows, keys))
    write("scoring", rows, medians(rows, keys))


def bench_rescan(options) -> None:
    """Rescans of hard links of 20 scored clips, and no-op runs of the served deployment."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        clips = short_clips(tmp / "clips", 20)
        with prefect_server(tmp / "prefect") as env:
            for code_name, code in code_versions(options.baseline).items():
                files = options.files if code_name == "new" else options.baseline_files
                links = tmp / f"links-{code_name}"
                for i in range(files):
                    target = links / f"folder{i // 100:03d}" / f"link{i:05d}.flv"
                    target.parent.mkdir(parents=True, exist_ok=True)
                    os.link(clips / f"clip{i % 20:02d}.flv", target)
                params = params_file(code, tmp / f"params-{code_name}.yaml")
                for repeat in range(options.repeat):
                    out = tmp / f"out-{code_name}-{repeat}"
                    rows.append({"scenario": "rescan", "code": code_name, **run_scenario(
                        code, env, "rescan", str(clips), str(links), str(out), params, options.model_dir)})
                    start = time.perf_counter()
                    subprocess.run([str(Path(sys.executable).parent / "emotion"), "score", str(links), "--out", str(out),
                                    "--params", params, "--model-dir", options.model_dir], cwd=code, check=True,
                                   env={**env, "PYTHONPATH": str(code)}, capture_output=True)
                    rows[-1]["rescan_command_seconds"] = time.perf_counter() - start
                    print(json.dumps(rows[-1]), flush=True)
                    write("rescan", rows, medians(rows, ("scenario", "code")))
                for folder in ([clips, links] if code_name == "new" else [clips]):
                    rows += [{"scenario": f"no-op scheduled run, {sum(1 for _ in folder.rglob('*.flv'))} files",
                              "code": code_name, **run} for run in scheduled_runs(code, env, folder, tmp / f"out-{code_name}-0",
                                                                                params, options)]
                    print(json.dumps(rows[-1]), flush=True)
                    write("rescan", rows, medians(rows, ("scenario", "code")))
    write("rescan", rows, medians(rows, ("scenario", "code")))


def bench_scaleout(options) -> None:
    """20 short clips (transcription on) by 2 threads, by a Dask LocalCluster of 2 one-thread worker
    processes (started by each flow run), and by a `dask scheduler` with 2 `dask worker` processes
    on 127.0.0.1 (started once; the warm-up run of 2 clips loads the models on both workers, a
    LocalCluster starts afresh, models and all, with every flow run)."""
    import yaml

    rows = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        clips, warm = short_clips(tmp / "clips", 20), short_clips(tmp / "warm", 2, 100)
        with prefect_server(tmp / "prefect") as env:
            env = {**env, "PYTHONPATH": str(ROOT)}
            port = free_port()
            dask = str(Path(sys.executable).parent / "dask")
            cluster = [subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", str(port),
                                         "--no-dashboard"], env=env, cwd=ROOT, start_new_session=True,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
            time.sleep(5)
            cluster += [subprocess.Popen([dask, "worker", f"tcp://127.0.0.1:{port}", "--nthreads", "1",
                                          "--no-dashboard"], env=env, cwd=ROOT, start_new_session=True,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(2)]
            try:
                runners = {"2 threads": {"task_runner": "thread", "thread_workers": 2},
                           "Dask LocalCluster, 2 workers": {"task_runner": "dask", "dask_workers": 2},
                           "dask scheduler + 2 dask worker": {"task_runner": "dask",
                                                              "dask_address": f"tcp://127.0.0.1:{port}"}}
                for repeat in range(options.repeat):
                    for name, scoring in runners.items():
                        raw = yaml.safe_load(Path(params_file(ROOT, tmp / "params.yaml")).read_text())
                        raw["scoring"].update(scoring)
                        params = tmp / f"params-{len(rows)}.yaml"
                        params.write_text(yaml.safe_dump(raw))
                        rows.append({"runner": name, **run_scenario(ROOT, env, "score", str(clips), str(params),
                                                                    options.model_dir, str(warm))})
                        print(json.dumps(rows[-1]), flush=True)
            finally:
                for process in reversed(cluster):
                    os.killpg(process.pid, signal.SIGTERM)
                    process.wait(30)
    write("scaleout", rows, medians(rows, ("runner",)))


def scheduled_runs(code: Path, env: dict, folder: Path, out: Path, params: str, options) -> list[dict]:
    """Serve the deployment over ``folder`` (all scored already), schedule runs 20 s ahead (the
    runner sees them coming, as cron runs) and time each from its scheduled start to its end."""
    import asyncio

    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings
    from prefect.states import Scheduled

    log = out.parent / f"serve-{code.name}.log"
    with log.open("w") as handle:
        serving = subprocess.Popen([str(Path(sys.executable).parent / "emotion"), "serve", str(folder), "--out", str(out),
                                    "--interval-minutes", "600", "--params", params, "--model-dir", options.model_dir],
                                   cwd=code, env={**env, "PYTHONPATH": str(code)}, stdout=handle,
                                   stderr=subprocess.STDOUT, start_new_session=True)

    async def measure() -> list[dict]:
        async with get_client() as client:
            deadline = time.monotonic() + 300
            while True:
                try:
                    deployment = await client.read_deployment_by_name("score/score-folders")
                    if deployment.parameters.get("folders") == [str(folder)]:
                        break
                except Exception:
                    pass
                if time.monotonic() > deadline or serving.poll() is not None:
                    raise SystemExit(f"the deployment was not served: see {log}")
                await asyncio.sleep(1)
            runs = []
            for _ in range(options.repeat + 1):  # the first one also starts the runner's machinery: not counted
                when = time.time() + 20
                run = await client.create_flow_run_from_deployment(
                    deployment.id, state=Scheduled(scheduled_time=datetime.fromtimestamp(when, timezone.utc)))
                while not (run := await client.read_flow_run(run.id)).state.is_final():
                    await asyncio.sleep(0.5)
                assert run.state.is_completed(), run.state
                runs.append({"scheduled_to_end_seconds": run.end_time.timestamp() - when,
                             "run_seconds": (run.end_time - run.start_time).total_seconds()})
            return runs[1:]

    try:
        with temporary_settings(updates={PREFECT_API_URL: env["PREFECT_API_URL"]}):
            return asyncio.run(measure())
    finally:
        os.killpg(serving.pid, signal.SIGTERM)
        serving.wait(60)


def write(name: str, rows: list[dict], summary: list[dict] | None = None) -> None:
    """reports/bench/NAME.json (every run) and NAME.md (the summary table: medians)."""
    OUT.mkdir(parents=True, exist_ok=True)
    machine = {"cpu_cores": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
               "load_average_at_end": os.getloadavg()}
    (OUT / f"{name}.json").write_text(json.dumps({"machine": machine, "results": rows, "medians": summary},
                                                 indent=2) + "\n")
    table = summary or rows
    keys = list(dict.fromkeys(k for r in table for k in r))
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(f"{r[k]:.2f}" if isinstance(r.get(k), float) else str(r.get(k, "")) for k in keys)
              + " |" for r in table]
    (OUT / f"{name}.md").write_text(f"# {name} benchmark ({os.cpu_count()} cores; medians)\n\n" + "\n".join(lines) + "\n")
    print("\n".join(lines))


def main(
    what: Annotated[Literal["audio", "scoring", "rescan", "scaleout", "_scenario"], typer.Argument(
        help="the benchmark (_scenario: one scenario in this process, as the benchmarks run them)")],
    args: Annotated[list[str] | None, typer.Argument(help="_scenario: its name and arguments")] = None,
    long: Annotated[bool, typer.Option("--long", help="also score a 10-minute video")] = False,
    model_dir: Annotated[Path, typer.Option(help="the trained models")] = ROOT / "models",
    baseline: Annotated[str | None, typer.Option(help="a checkout of the code to compare with")] = None,
    repeat: Annotated[int, typer.Option(help="runs of each scenario (tables give medians)")] = 2,
    runtimes: Annotated[str, typer.Option(
        help="scoring: the new code's scoring.runtime values to run, comma-separated (onnx,torch)")] = "onnx",
    files: Annotated[int, typer.Option(help="hard links in the rescan")] = 10_000,
    baseline_files: Annotated[int, typer.Option(help="hard links in the baseline's rescan")] = 1_000,
) -> None:
    """Speed and memory of the pipeline on this machine (the module docstring lists the benchmarks)."""
    options = SimpleNamespace(long=long, model_dir=str(model_dir.resolve()), baseline=baseline, repeat=repeat,
                              runtimes=runtimes, files=files, baseline_files=baseline_files)
    if what == "_scenario":
        name, *rest = args or []
        if name in SCENARIOS:
            result = SCENARIOS[name](*rest)
        else:
            result = {"features": lambda: scenario_features(int(rest[0])), "epoch": scenario_audio_epoch}[name]()
        print(json.dumps({**result, "peak_rss_mb": peak_rss_mb()}))
    elif what == "audio":
        env = dict(os.environ)
        write("audio", [run_scenario(ROOT, env, "features", "1"),
                        run_scenario(ROOT, env, "features", str(os.cpu_count())), run_scenario(ROOT, env, "epoch")])
    else:
        {"scoring": bench_scoring, "rescan": bench_rescan, "scaleout": bench_scaleout}[what](options)


if __name__ == "__main__":
    typer.run(main)
