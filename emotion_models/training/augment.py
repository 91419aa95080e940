"""Albumentations augmentation of face crops (training split only), configured in params.yaml.

Landmarks move with the image: their x, y (relative to the crop) are transformed as keypoints,
so a flipped or rotated face keeps a matching mesh; z is left as it is.
"""

from __future__ import annotations

import albumentations as A
import cv2
import numpy as np

from emotion_models.params import FaceAugmentConfig


def face_augmentation(config: FaceAugmentConfig) -> A.Compose:
    """Flip, rotation, noise, one of CLAHE/brightness-contrast/gamma, one of sharpen/blur/motion blur,
    hue-saturation, then the video-frame transforms: pose, motion blur, compression, low light, occlusion."""
    return A.Compose(
        [
            A.HorizontalFlip(p=config.hflip_p),
            A.Rotate(limit=config.rotate_limit, border_mode=cv2.BORDER_REPLICATE, p=config.rotate_p),
            A.GaussNoise(std_range=(0.02, 0.08), p=config.noise_p),
            A.OneOf([A.CLAHE(p=1.0), A.RandomBrightnessContrast(p=1.0), A.RandomGamma(p=1.0)], p=config.contrast_p),
            A.OneOf([A.Sharpen(p=1.0), A.Blur(blur_limit=3, p=1.0), A.MotionBlur(blur_limit=3, p=1.0)],
                    p=config.sharpen_blur_p),
            A.HueSaturationValue(p=config.hue_saturation_p),
            *video_frame_transforms(config),
        ],
        keypoint_params=A.KeypointParams(format="xy", remove_invisible=False),
        seed=None,
    )


def video_frame_transforms(config: FaceAugmentConfig) -> list[A.BasicTransform]:
    """What a face in a video frame goes through and a dataset face does not: a turned or tilted head
    and a looser or tighter crop (scale, shift, shear, perspective), motion blur, JPEG artefacts of a
    compressed stream, low light (darker, flatter, noisier) and a hand or object over part of the face."""
    return [
        A.OneOf([A.Affine(scale=(0.85, 1.15), translate_percent=(-0.06, 0.06), shear=(-8, 8),
                          border_mode=cv2.BORDER_REPLICATE, p=1.0),
                 A.Perspective(scale=(0.03, 0.08), border_mode=cv2.BORDER_REPLICATE, p=1.0)], p=config.pose_p),
        A.MotionBlur(blur_limit=(3, 7), p=config.motion_blur_p),
        A.ImageCompression(quality_range=(15, 60), p=config.compression_p),
        A.Sequential([A.RandomBrightnessContrast(brightness_limit=(-0.5, -0.2), contrast_limit=(-0.4, -0.1), p=1.0),
                      A.GaussNoise(std_range=(0.02, 0.06), p=1.0)], p=config.low_light_p),
        A.CoarseDropout(num_holes_range=(1, 2), hole_height_range=(0.15, 0.35), hole_width_range=(0.15, 0.35),
                        fill="random_uniform", p=config.occlusion_p),
    ]


def augment_face(pipeline: A.Compose, crop: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Augment one uint8 crop and its (1404,) landmarks; returns arrays of the same shape and dtype."""
    size = crop.shape[0]
    points = landmarks.reshape(-1, 3)
    pipeline.set_random_seed(int(rng.integers(0, 2**31 - 1)))
    if not np.any(points):  # all-zero landmarks mean "no mesh": keep them zero (and skip moving 468 points)
        result = pipeline(image=crop, keypoints=np.zeros((0, 2), np.float32))
        return result["image"].astype(np.uint8), landmarks.astype(np.float32)
    result = pipeline(image=crop, keypoints=points[:, :2] * size)
    out = points.copy()
    out[:, :2] = np.asarray(result["keypoints"], dtype=np.float32).reshape(-1, 2) / size
    return result["image"].astype(np.uint8), out.reshape(-1).astype(np.float32)
