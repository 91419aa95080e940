"""/predict: one image, recording or video through the trained models, with what explains the answer."""

import hashlib
import tempfile
from pathlib import Path

import streamlit as st

from app import charts
from app.common import app_config, confidence_text, show_probabilities, show_timeline, show_windows
from emotion_models.contract import EMOTION_OF_SLUG, VIEW_TITLES
from emotion_models.data.datasets.base import AUDIO_EXTENSIONS
from emotion_models.labels import CLASS_NAMES, SLUGS
from emotion_models.params import load_params
from emotion_models.predict.interactive import (
    CANNOT_SCORE,
    IMAGE_SUFFIXES,
    browser_video,
    kind_of,
    predict_audio,
    predict_image,
    predict_video,
    window_frames,
)
from emotion_models.scoring.model_identity import ModelsUnavailable
from emotion_models.scoring.results import estimate_view, mean_probabilities

UPLOADS = Path(tempfile.gettempdir()) / "emotion-app-uploads"
FRAMES_PER_ROW = 4

config = app_config()
st.title("Predict one file")
st.write("An **image** goes through the face model, a **recording** through the audio model, a **video** is scored "
         "window by window as `emotion score` scores it.")
video_types = [e.lstrip(".") for e in config.params.scoring.extensions]
uploaded = st.file_uploader("Upload a file", type=sorted({*(e.lstrip(".") for e in (*IMAGE_SUFFIXES, *AUDIO_EXTENSIONS)),
                                                         *video_types}))
typed = st.text_input("…or the path of a file on this machine", placeholder="/videos/inbox/interview.mp4")


def chosen_file() -> tuple[Path, str] | None:
    """The file to score and the name to show for it; an upload is stored under its content hash."""
    if uploaded is not None:
        data = uploaded.getvalue()
        folder = UPLOADS / hashlib.sha256(data).hexdigest()[:24]
        target = folder / Path(uploaded.name).name
        if not target.is_file():
            folder.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        return target, uploaded.name
    if typed.strip():
        path = Path(typed.strip()).expanduser()
        if not path.is_file():
            st.error(f"{path}: file not found")
            st.stop()
        return path, str(path)
    return None


@st.cache_data(show_spinner=False, max_entries=8)
def run_prediction(path: str, stamp: int, params_path: str, model_dir: str):
    """The prediction for one file (cached by path and modification time) and, for a video, its window
    frames and a copy the browser can play."""
    params, file, models = load_params(params_path), Path(path), Path(model_dir)
    kind = kind_of(file)
    if kind == "image":
        return predict_image(file, models, explain=True), None, None
    if kind == "audio":
        return predict_audio(file, models), None, None
    video = predict_video(file, params, models)
    frames = window_frames(file, video.windows, params)
    playable = browser_video(file, file.with_name(f"{file.stem}.browser.webm"))
    return video, frames, str(playable)


def headline(label: str | None, detail: str) -> None:
    st.subheader(f"Prediction: {label}" if label else "Prediction: no person")
    st.caption(detail)


def show_image(result) -> None:
    headline(result.label, f"face model · {confidence_text(float(result.probabilities.max()))}")
    left, middle, right = st.columns([1.2, 1, 1.4])
    left.image(result.boxed(), caption="the face the model saw (green box)")
    middle.image(result.overlay(), caption="Grad-CAM: where the face model looked for its answer", width=220)
    right.altair_chart(charts.probability_bars(dict(zip(CLASS_NAMES, result.probabilities.tolist()))),
                       width="stretch")


def show_audio(result, path: Path) -> None:
    headline(result.label, f"audio model · {confidence_text(float(result.probabilities.max()))}")
    st.audio(str(path))
    left, right = st.columns(2)
    left.altair_chart(charts.probability_bars(dict(zip(CLASS_NAMES, result.probabilities.tolist()))),
                      width="stretch")
    right.altair_chart(charts.waveform_chart(result.waveform()), width="stretch", height=220)


def format_seconds(seconds: float) -> str:
    return f"{int(seconds // 60)}:{seconds % 60:04.1f}"


def show_video(result, frames, playable: str) -> None:
    summary, windows = result.summary, result.windows
    estimate = estimate_view(windows)
    headline(result.label, f"{VIEW_TITLES[estimate]} of {summary['windows']} windows · "
             f"{summary['duration']:.1f} s · mean {confidence_text(summary['mean_confidence'])}")
    if result.fusion.get("method"):
        st.caption(f"Fusion of the views: {result.fusion['method']} ({result.fusion.get('reason', '')}).")
    missing = [f"{summary[key]} without {what}" for key, what in
               (("windows_no_face", "a face"), ("windows_no_speech", "speech"), ("windows_no_person", "a person"))
               if summary.get(key)]
    if missing:
        st.caption("Windows " + ", ".join(missing) + " (those views are left out there).")
    player, overview = st.columns([1.3, 1])
    start = st.session_state.get("play_from", 0.0)
    player.video(playable, start_time=int(start), autoplay=start > 0)
    player.caption(f"Playing from {format_seconds(start)}. Press a window's button below to jump to it.")
    show_probabilities(overview, mean_probabilities(summary, windows))
    st.markdown("#### Timeline")
    show_timeline(st, windows)
    st.markdown("#### Windows")
    by_window = {row["window"]: row for row in windows.iter_rows(named=True)}
    for offset in range(0, len(frames), FRAMES_PER_ROW):
        columns = st.columns(FRAMES_PER_ROW)
        for column, frame in zip(columns, frames[offset:offset + FRAMES_PER_ROW]):
            row = by_window[frame.window]
            probabilities = {s: row.get(f"{estimate}_{s}") for s in SLUGS}
            best = max((s for s in SLUGS if probabilities[s] is not None), key=probabilities.get, default=None)
            label = f"{EMOTION_OF_SLUG[best]} {probabilities[best]:.2f}" if best else "no person"
            column.image(frame.boxed(), caption=f"{format_seconds(row['start'])}–{format_seconds(row['end'])} · "
                         f"{label} · {'face' if frame.box else 'no face'}")
            column.button(f"▶ play from {format_seconds(row['start'])}", key=f"play-{frame.window}",
                          on_click=st.session_state.__setitem__, args=("play_from", float(row["start"])))
    show_windows(st, windows)


choice = chosen_file()
if choice is None:
    st.info("Upload a file or type a path to see its emotion.")
    st.stop()
path, name = choice
if st.session_state.get("predicted") != str(path):
    st.session_state["predicted"], st.session_state["play_from"] = str(path), 0.0
with st.spinner(f"Scoring {Path(name).name} with the {'face' if kind_of(path) == 'image' else kind_of(path)} "
                "model…"):
    try:
        prediction, window_images, browser_copy = run_prediction(str(path), path.stat().st_mtime_ns,
                                                                 str(config.params_path), str(config.model_dir))
    except CANNOT_SCORE as exc:
        st.error(f"Cannot score {Path(name).name}: {str(exc).replace(str(path), Path(name).name)}")
        st.stop()
    except ModelsUnavailable as exc:
        st.error(f"No trained models: {exc}")
        st.stop()
kind = kind_of(path)
if kind == "image":
    show_image(prediction)
elif kind == "audio":
    show_audio(prediction, path)
else:
    show_video(prediction, window_images, browser_copy)
