"""The shared training loop, checkpoints, feature loaders and augmentation."""
