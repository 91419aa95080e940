"""Nine text features per window, as the original system: 7 emotion probabilities (anger,
disgust, fear, joy, neutral, sadness, surprise) and 2 sentiment probabilities (negative, positive).

Default backend ("lexicon", offline): spaCy's ``blank("en")`` tokeniser (and lemmas when a
packaged pipeline with a lemmatiser is installed) and the NRC Word-Emotion Association Lexicon
(EmoLex, Mohammad & Turney; shipped in the PyPI package ``nrclex``; free for research and
non-commercial use, commercial use needs a licence from the National Research Council Canada).
Each content word votes for its NRC emotions (split equally); content words without an emotion
vote "neutral"; the votes are normalised to a distribution. Sentiment is TextBlob's polarity p
turned into positive = (1 + p) / 2 and negative = 1 - positive.
A window without words gets :data:`NEUTRAL_VECTOR`.

The "transformers" backend runs the original system's DistilRoBERTa emotion classifier and
DistilBERT SST-2 sentiment classifier where ``transformers`` and their weights are available.
"""

from __future__ import annotations

import functools
import json
from importlib import resources

import numpy as np

from emotion_models.params import TextFeatureConfig

EMOTIONS = ("anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise")
FEATURE_NAMES = (*EMOTIONS, "negative", "positive")
N_TEXT_FEATURES = len(FEATURE_NAMES)
NEUTRAL_VECTOR = np.array([0, 0, 0, 0, 1, 0, 0, 0.5, 0.5], dtype=np.float32)
# Suffix rewrites tried in order when a word is not in the lexicon (blank("en") has no lemmatiser).
_SUFFIXES = (("ied", "y"), ("ies", "y"), ("ed", "e"), ("ed", ""), ("ing", "e"), ("ing", ""), ("es", ""),
             ("s", ""), ("ly", ""))


@functools.lru_cache(maxsize=1)
def nrc_lexicon() -> dict[str, tuple[str, ...]]:
    """word -> its emotions among the 6 NRC emotions this product uses."""
    raw = json.loads(resources.files("nrclex").joinpath("data/nrc_en.json").read_text())
    wanted = set(EMOTIONS) - {"neutral"}
    return {word: tuple(e for e in emotions if e in wanted) for word, emotions in raw.items()
            if any(e in wanted for e in emotions)}


class LexiconTextFeatures:
    def __init__(self) -> None:
        import spacy

        try:
            self._nlp = spacy.load("en_core_web_sm", disable=["parser", "ner"])
        except OSError:
            self._nlp = spacy.blank("en")
        self._lexicon = nrc_lexicon()

    def _emotions(self, token) -> tuple[str, ...] | None:
        for candidate in (token.lemma_.lower(), token.lower_):
            if candidate in self._lexicon:
                return self._lexicon[candidate]
        word = token.lower_
        for suffix, replacement in _SUFFIXES:
            if word.endswith(suffix) and (stem := word[: -len(suffix)] + replacement) in self._lexicon:
                return self._lexicon[stem]
        return None

    def __call__(self, text: str) -> np.ndarray:
        from textblob import TextBlob

        tokens = [t for t in self._nlp(text) if t.is_alpha and not t.is_stop]
        if not text.strip() or not tokens:
            return NEUTRAL_VECTOR.copy()
        votes = dict.fromkeys(EMOTIONS, 0.0)
        for token in tokens:
            emotions = self._emotions(token)
            if emotions:
                for emotion in emotions:
                    votes[emotion] += 1.0 / len(emotions)
            else:
                votes["neutral"] += 1.0
        total = sum(votes.values())
        positive = (1.0 + TextBlob(text).sentiment.polarity) / 2.0
        return np.array([votes[e] / total for e in EMOTIONS] + [1.0 - positive, positive], dtype=np.float32)


class TransformerTextFeatures:
    def __init__(self, config: TextFeatureConfig) -> None:
        try:
            from transformers import pipeline
        except ImportError as exc:
            raise RuntimeError("the transformers text backend needs `pip install transformers`") from exc
        self._emotion = pipeline("text-classification", model=config.emotion_model, top_k=None)
        self._sentiment = pipeline("text-classification", model=config.sentiment_model, top_k=None)

    def __call__(self, text: str) -> np.ndarray:
        if not text.strip():
            return NEUTRAL_VECTOR.copy()
        emotion = {d["label"].lower(): d["score"] for d in self._emotion(text)[0]}
        sentiment = {d["label"].lower(): d["score"] for d in self._sentiment(text)[0]}
        return np.array([emotion.get(e, 0.0) for e in EMOTIONS]
                        + [sentiment.get("negative", 0.0), sentiment.get("positive", 0.0)], dtype=np.float32)


@functools.lru_cache(maxsize=2)
def text_featuriser(config: TextFeatureConfig):
    """A callable text -> (9,) features for the configured backend (one per process)."""
    return LexiconTextFeatures() if config.backend == "lexicon" else TransformerTextFeatures(config)
