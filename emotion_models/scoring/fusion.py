"""One estimate per window from the views present: late fusion by default, the learned fusion where
it proved better, and no estimate where there is no person.

Views of a window (each a distribution over the 5 classes, or missing):
- ``audio``: the audio model, where speech was heard (Whisper's words; with transcription off,
  wherever there is audio: speech cannot then be told from other sound);
- ``face``: the face model, mean over the window's frames with a face;
- ``text``: class evidence from the transcript's emotion words (:func:`text_evidence`), where some
  were heard: each content word with NRC emotions gives one vote, split equally among the classes
  its emotions fall in (anger -> Angry, sadness and fear -> Sad/Fear, joy -> Happy, surprise and
  disgust -> Surprise/Disgust); ``video.fusion.text_prior_votes`` uniform pseudo-votes are added
  and the sum normalised. Words without an emotion are no evidence (CREMA-D and RAVDESS say
  emotionally neutral sentences in every emotion). Nothing here is fitted to data: the NRC tags
  overlap heavily (half the anger words are also disgust words), so this view is weak and its
  weight a small prior;
- ``video``: the learned fusion (the combined model), where there is a person.
A window with neither a face nor speech has no person: every view and the fused estimate are missing.

**Late fusion** is a weighted log-linear pool, a weighted geometric mean of the views present,
renormalised: ``fused(c) ∝ prod_v p_v(c) ** (w_v / sum of the present views' w)``. A missing view
drops out and the others' weights are renormalised, so a window with one view gets exactly that
view's distribution; a uniform view changes nothing but the others' exponent. The weights come from
``video.fusion.weights``; for audio and face, null means the model's validation skill recorded in
its checkpoint, ``(val_macro_f1 - 0.2) / 0.8`` (macro-F1 above the 0.2 of guessing among 5
classes), at least :data:`MIN_WEIGHT`; a checkpoint without a validation score (older ones, or no
validation clips) counts as :data:`FALLBACK_WEIGHT`, so two such models weigh the same.

**The learned fusion** (the combined model) replaces late fusion only where its speaker-independent
validation beats late fusion on the same windows: ``models/video/fusion.json`` records both numbers
and the choice (:func:`choose_fusion`).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Protocol

import numpy as np

from emotion_models.labels import EMOTION_TO_LABEL, NUM_CLASSES
from emotion_models.params import FusionConfig

FUSED_VIEWS = ("audio", "face", "text")
METHODS = ("late", "learned")
CHANCE = 1.0 / NUM_CLASSES
MIN_WEIGHT = 0.05
FALLBACK_WEIGHT = 0.5
FLOOR = 1e-6  # probabilities are clipped here before the logarithm
# The transcript's emotions (NRC / the emotion classifier) in the 5-class label space; "neutral"
# (a word without an emotion) is no evidence of any class.
TEXT_EMOTION_CLASSES = {"anger": EMOTION_TO_LABEL["anger"], "disgust": EMOTION_TO_LABEL["disgust"],
                        "fear": EMOTION_TO_LABEL["fear"], "joy": EMOTION_TO_LABEL["happy"],
                        "sadness": EMOTION_TO_LABEL["sad"], "surprise": EMOTION_TO_LABEL["surprise"]}
CHOICE_FILE = "fusion.json"


class TextVoter(Protocol):
    """The text featuriser's vote counter (emotion_models.features.text)."""

    def class_votes(self, text: str, classes: dict[str, int], n_classes: int) -> np.ndarray: ...


def validation_skill(meta: dict) -> float | None:
    """The model's macro-F1 above chance on its validation clips (from checkpoint meta), or None."""
    score = meta.get("val_macro_f1")
    if score is None or not math.isfinite(score):
        return None
    return max(MIN_WEIGHT, (float(score) - CHANCE) / (1.0 - CHANCE))


def resolve_weights(config: FusionConfig, metas: dict[str, dict]) -> dict[str, float]:
    """The late-fusion weight of each view: params.yaml, else the checkpoint's validation skill."""
    weights = {"text": config.weights.text}
    for view in ("audio", "face"):
        given = getattr(config.weights, view)
        skill = validation_skill(metas.get(view, {}))
        weights[view] = given if given is not None else FALLBACK_WEIGHT if skill is None else skill
    return {view: float(weights[view]) for view in FUSED_VIEWS}


def text_evidence(votes: np.ndarray, prior_votes: float) -> np.ndarray | None:
    """A transcript's class evidence from its (5,) class votes (each emotion word one vote, split
    among the classes of its emotions; words without one give none) plus ``prior_votes`` spread
    evenly, normalised. None without any vote (no evidence). One emotion word among
    ``prior_votes`` = 2 gives its class 0.47 and the others 0.13; three give 0.68."""
    total = float(votes.sum())
    if total <= 0:
        return None
    return (votes + prior_votes / NUM_CLASSES) / (total + prior_votes)


def transcript_evidence(featuriser: TextVoter, transcripts: list[str], prior_votes: float) -> np.ndarray:
    """(windows, 5) class evidence of each window's transcript; NaN rows where it has no emotion word."""
    evidence = np.full((len(transcripts), NUM_CLASSES), np.nan)
    for index, transcript in enumerate(transcripts):
        found = text_evidence(featuriser.class_votes(transcript, TEXT_EMOTION_CLASSES, NUM_CLASSES), prior_votes)
        if found is not None:
            evidence[index] = found
    return evidence


def late_fusion(views: dict[str, np.ndarray], weights: dict[str, float]) -> np.ndarray:
    """(windows, 5) weighted log-linear pool of ``views`` ((windows, 5) each, NaN rows where missing);
    NaN rows where no view is present. Present views with all-zero weights count equally."""
    stacked = np.stack([views[v] for v in FUSED_VIEWS])  # (views, windows, 5)
    present = ~np.isnan(stacked).any(2)  # (views, windows)
    w = np.array([weights[v] for v in FUSED_VIEWS])[:, None] * present
    total = w.sum(0)
    w = np.where(total > 0, w / np.where(total > 0, total, 1.0), present / np.maximum(present.sum(0), 1))
    logs = np.log(np.clip(np.nan_to_num(stacked, nan=1.0), FLOOR, 1.0))
    pooled = (w[:, :, None] * logs).sum(0)
    pooled = np.exp(pooled - pooled.max(1, keepdims=True))
    fused = pooled / pooled.sum(1, keepdims=True)
    fused[~present.any(0)] = np.nan
    return fused


def window_views(probabilities: dict[str, np.ndarray], text: np.ndarray, has_face: np.ndarray,
                 speech: np.ndarray, weights: dict[str, float], method: str) -> dict[str, np.ndarray]:
    """Every view of each window and the fused estimate, all NaN where there is no person.

    ``probabilities``: the audio, face and video (learned) models' (windows, 5) outputs, NaN where
    their stream is missing; ``text``: (windows, 5) transcript evidence, NaN without emotion words;
    ``speech``: whether speech was heard (with transcription off: whether there is audio)."""
    if method not in METHODS:
        raise ValueError(f"unknown fusion method '{method}'; choose one of {', '.join(METHODS)}")
    person = has_face | speech

    def only(mask: np.ndarray, values: np.ndarray) -> np.ndarray:
        return np.where(mask[:, None], values, np.nan)

    views = {"audio": only(speech, probabilities["audio"]), "face": only(has_face, probabilities["face"]),
             "text": only(speech, text), "video": only(person, probabilities["video"])}
    views["fused"] = views["video"] if method == "learned" else late_fusion(views, weights)
    return views


def choose_fusion(late: dict, learned: dict, speakers: int, min_speakers: int) -> tuple[str, str]:
    """("late" | "learned", why) from both fusions' validation metrics on the same windows."""
    if late.get("n", 0) == 0:
        return "late", "no real validation clips: the learned fusion cannot be compared with late fusion"
    if speakers < min_speakers:
        return "late", (f"validation clips of {speakers} speaker(s), fewer than "
                        f"video.fusion.min_validation_speakers ({min_speakers})")
    if learned["macro_f1"] > late["macro_f1"]:
        return "learned", (f"learned fusion's validation macro-F1 {learned['macro_f1']:.3f} beats "
                           f"late fusion's {late['macro_f1']:.3f}")
    return "late", (f"late fusion's validation macro-F1 {late['macro_f1']:.3f} is at least the "
                    f"learned fusion's {learned['macro_f1']:.3f}")


def read_choice(model_dir: Path) -> dict:
    """``models/video/fusion.json``, or a late-fusion record saying why there is none."""
    path = Path(model_dir) / "video" / CHOICE_FILE
    if not path.is_file():
        return {"choice": "late", "reason": f"{path} not found: the learned fusion was never validated "
                                            f"against late fusion (dvc repro video_fusion)"}
    record = json.loads(path.read_text())
    if record.get("choice") not in METHODS:
        raise ValueError(f"{path}: 'choice' must be one of {', '.join(METHODS)}, not {record.get('choice')!r}")
    return record


def fusion_in_use(model_dir: Path, config: FusionConfig, runtime: str = "onnx") -> tuple[dict, dict[str, float]]:
    """The fusion choice and the late-fusion weights of the models in ``model_dir`` (the audio and
    face models' validation scores, from the exported graphs' meta or, ``runtime="torch"``, the
    checkpoints)."""
    if runtime == "onnx":
        from emotion_models.scoring.runtime import read_meta

        metas = read_meta(model_dir)
    else:
        from emotion_models.training.loop import load_checkpoint

        metas = {view: load_checkpoint(Path(model_dir) / view / "model.pt")[1] for view in ("audio", "face")}
    return read_choice(model_dir), resolve_weights(config, {view: metas[view] for view in ("audio", "face")})
