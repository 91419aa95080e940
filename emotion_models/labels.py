"""The one place where dataset emotions become the product's 5-class label space.

Every dataset names its emotions differently; adapters translate them to the 7 classic
emotions (``CLASSIC_EMOTIONS``), and :func:`harmonise_emotion` maps those to the 5 classes.
RAVDESS "calm", CK+ "contempt" and EmoDB "boredom" are not classic emotions: what happens to
them is the ``data.labels`` parameter (map to a classic emotion, or ``drop``), never a silent guess.
"""

from __future__ import annotations

CLASSIC_EMOTIONS: tuple[str, ...] = ("anger", "disgust", "fear", "happy", "neutral", "sad", "surprise")
EXTRA_EMOTIONS: tuple[str, ...] = ("calm", "contempt", "boredom")

CLASS_NAMES: tuple[str, ...] = ("Sad/Fear", "Neutral", "Happy", "Angry", "Surprise/Disgust")
NUM_CLASSES = len(CLASS_NAMES)
SLUGS: tuple[str, ...] = ("sad_fear", "neutral", "happy", "angry", "surprise_disgust")  # the classes in column names

EMOTION_TO_LABEL: dict[str, int] = {
    "sad": 0,
    "fear": 0,
    "neutral": 1,
    "happy": 2,
    "anger": 3,
    "surprise": 4,
    "disgust": 4,
}

DROP = "drop"

# Label folder names (lower case) of the labelled-folder adapter -> classic or extra emotion, or
# "drop": the default of data.folder_labels in params.yaml.
FOLDER_LABELS: dict[str, str] = {
    "angry": "anger", "anger": "anger", "disgust": "disgust", "disgusted": "disgust",
    "fear": "fear", "fearful": "fear", "happy": "happy", "happiness": "happy", "joy": "happy",
    "neutral": "neutral", "calm": "calm", "sad": "sad", "sadness": "sad",
    "surprise": "surprise", "surprised": "surprise",
}


class DroppedEmotion(ValueError):
    """The emotion is excluded from the label space by the label rules."""


def harmonise_emotion(emotion: str, extra_rules: dict[str, str]) -> tuple[str, int]:
    """Return ``(classic_emotion, label)`` for a dataset emotion.

    ``extra_rules`` maps each non-classic emotion ("calm", "contempt", "boredom") to a classic emotion
    or to ``"drop"``; a dropped or unknown emotion raises :class:`DroppedEmotion`.
    """
    if emotion in EMOTION_TO_LABEL:
        return emotion, EMOTION_TO_LABEL[emotion]
    if emotion in EXTRA_EMOTIONS:
        target = extra_rules.get(emotion, DROP)
        if target == DROP:
            raise DroppedEmotion(f"emotion '{emotion}' is dropped by data.labels.{emotion}")
        return target, EMOTION_TO_LABEL[target]
    raise DroppedEmotion(f"unknown emotion '{emotion}'")
