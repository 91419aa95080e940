"""Nine text features per window, as the original system: 7 emotion probabilities (anger,
disgust, fear, joy, neutral, sadness, surprise) and 2 sentiment probabilities (negative, positive).

Default backend ("lexicon", offline): words split as spaCy's English tokeniser splits them
(clitics such as "n't" and "'s" apart, hyphenated words in parts; :func:`content_words`), spaCy's
English stop words (read from its data file: importing spaCy imports thinc, and thinc imports
torch, ~2 s and ~0.5 GiB that scoring does not otherwise need) and the NRC Word-Emotion Association Lexicon
(EmoLex, Mohammad & Turney; shipped in the PyPI package ``nrclex``; free for research and
non-commercial use, commercial use needs a licence from the National Research Council Canada).
Each content word votes for its NRC emotions (split equally); content words without an emotion
vote "neutral"; the votes are normalised to a distribution. Sentiment (``sentiment``) is VADER's
compound score c (default; Hutto & Gilbert 2014, package ``vaderSentiment``, MIT; a rule-based
lexicon with negation, degree words and punctuation) or TextBlob's polarity, turned into
positive = (1 + c) / 2 and negative = 1 - positive. TextBlob was the default until its import
(NLTK, and through NLTK scipy.stats: 1.1 s) became the largest share of a scoring process's
start-up; VADER loads in 0.01 s.
A window without words gets :data:`NEUTRAL_VECTOR`. ``class_votes(text, classes, n)`` counts the
votes in a class space (word counts, not shares): scoring turns them into class evidence
(emotion_models.scoring.fusion).

The "transformers" backend runs the original system's DistilRoBERTa emotion classifier and
DistilBERT SST-2 sentiment classifier where ``transformers`` and their weights are available.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import re
from collections.abc import Callable
from importlib import resources
from pathlib import Path

import numpy as np

from emotion_models.params import TextFeatureConfig

EMOTIONS = ("anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise")
FEATURE_NAMES = (*EMOTIONS, "negative", "positive")
N_TEXT_FEATURES = len(FEATURE_NAMES)
NEUTRAL_VECTOR = np.array([0, 0, 0, 0, 1, 0, 0, 0.5, 0.5], dtype=np.float32)
# Suffix rewrites tried in order when a word is not in the lexicon (no lemmatiser).
_SUFFIXES = (("ied", "y"), ("ies", "y"), ("ed", "e"), ("ed", ""), ("ing", "e"), ("ing", ""), ("es", ""),
             ("s", ""), ("ly", ""))


@functools.lru_cache(maxsize=1)
def nrc_lexicon() -> dict[str, tuple[str, ...]]:
    """word -> its emotions among the 6 NRC emotions this product uses."""
    raw = json.loads(resources.files("nrclex").joinpath("data/nrc_en.json").read_text())
    wanted = set(EMOTIONS) - {"neutral"}
    return {word: tuple(e for e in emotions if e in wanted) for word, emotions in raw.items()
            if any(e in wanted for e in emotions)}


# A word: letters (digits kept, so "mp3" is not read as "mp"), then any clitic after an apostrophe.
_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")
_CLITIC = re.compile(r"(?i)^(.+?)(n['’]t|['’](?:s|d|ll|m|re|ve))$")


@functools.lru_cache(maxsize=1)
def stop_words() -> frozenset[str]:
    """spaCy's English stop words, read from its data file without importing spaCy."""
    spec = importlib.util.find_spec("spacy")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the lexicon text features need spaCy's English stop words: pip install spacy")
    source = (Path(spec.submodule_search_locations[0]) / "lang" / "en" / "stop_words.py").read_text(encoding="utf-8")
    return frozenset(re.search(r'"""(.*?)"""', source, re.S).group(1).split())


def content_words(text: str) -> list[str]:
    """The lower-cased alphabetic words of ``text`` that are not stop words, split as spaCy's English
    tokeniser splits them ("don't" -> "do" + "n't", "well-known" -> "well" + "known")."""
    words = []
    for match in _WORD.finditer(text):
        word = match.group(0)
        clitic = _CLITIC.match(word)
        word = (clitic.group(1) if clitic else word).lower()
        if word.isalpha() and word not in stop_words():
            words.append(word)
    return words


class LexiconTextFeatures:
    def __init__(self, sentiment: str = "vader") -> None:
        self._lexicon = nrc_lexicon()
        self._polarity = _vader_polarity() if sentiment == "vader" else _textblob_polarity

    def _emotions(self, word: str) -> tuple[str, ...] | None:
        if word in self._lexicon:
            return self._lexicon[word]
        for suffix, replacement in _SUFFIXES:
            if word.endswith(suffix) and (stem := word[: -len(suffix)] + replacement) in self._lexicon:
                return self._lexicon[stem]
        return None

    def word_emotions(self, text: str) -> list[tuple[str, ...]]:
        """The NRC emotions of each content word of ``text`` (an empty tuple: a word without one)."""
        return [self._emotions(word) or () for word in content_words(text)]

    def class_votes(self, text: str, classes: dict[str, int], n_classes: int) -> np.ndarray:
        """(n_classes,) votes: each content word with an emotion in ``classes`` (emotion -> class)
        gives one vote, split equally among the classes its emotions fall in, so a class that pools
        two emotions (NRC tags "angry" anger and disgust) gains nothing from that alone."""
        votes = np.zeros(n_classes)
        for emotions in self.word_emotions(text):
            hit = {classes[e] for e in emotions if e in classes}
            for index in hit:
                votes[index] += 1.0 / len(hit)
        return votes

    def __call__(self, text: str) -> np.ndarray:
        words = self.word_emotions(text)
        if not text.strip() or not words:
            return NEUTRAL_VECTOR.copy()
        votes = dict.fromkeys(EMOTIONS, 0.0)
        for emotions in words:
            for emotion in emotions or ("neutral",):
                votes[emotion] += 1.0 / max(len(emotions), 1)
        total = sum(votes.values())
        positive = (1.0 + self._polarity(text)) / 2.0
        return np.array([votes[e] / total for e in EMOTIONS] + [1.0 - positive, positive], dtype=np.float32)


def _vader_polarity() -> Callable[[str], float]:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    analyser = SentimentIntensityAnalyzer()
    return lambda text: analyser.polarity_scores(text)["compound"]


def _textblob_polarity(text: str) -> float:
    from textblob import TextBlob

    return TextBlob(text).sentiment.polarity


class TransformerTextFeatures:
    def __init__(self, config: TextFeatureConfig) -> None:
        try:
            from transformers import pipeline
        except ImportError as exc:
            raise RuntimeError("the transformers text backend needs `pip install transformers`") from exc
        self._emotion = pipeline("text-classification", model=config.emotion_model, top_k=None)
        self._sentiment = pipeline("text-classification", model=config.sentiment_model, top_k=None)

    def class_votes(self, text: str, classes: dict[str, int], n_classes: int) -> np.ndarray:
        """(n_classes,) votes: the emotion classifier's probabilities summed per class (``classes``:
        emotion -> class; others, "neutral" among them, ignored): one vote in all."""
        votes = np.zeros(n_classes)
        if text.strip():
            for d in self._emotion(text)[0]:
                if d["label"].lower() in classes:
                    votes[classes[d["label"].lower()]] += d["score"]
        return votes

    def __call__(self, text: str) -> np.ndarray:
        if not text.strip():
            return NEUTRAL_VECTOR.copy()
        emotion = {d["label"].lower(): d["score"] for d in self._emotion(text)[0]}
        sentiment = {d["label"].lower(): d["score"] for d in self._sentiment(text)[0]}
        return np.array([emotion.get(e, 0.0) for e in EMOTIONS]
                        + [sentiment.get("negative", 0.0), sentiment.get("positive", 0.0)], dtype=np.float32)


@functools.lru_cache(maxsize=2)
def text_featuriser(config: TextFeatureConfig) -> LexiconTextFeatures | TransformerTextFeatures:
    """A callable text -> (9,) features for the configured backend (one per process); its
    ``class_votes`` counts emotion votes per class."""
    return LexiconTextFeatures(config.sentiment) if config.backend == "lexicon" else TransformerTextFeatures(config)
