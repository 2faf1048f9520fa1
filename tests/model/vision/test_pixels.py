"""``normalize``: uint8 images -> the tower's input with the model's mean and std."""

import numpy as np
import pytest
import torch

from superlab.config.vision import VisionConfig
from superlab.model.vision import normalize


def test_normalize_uses_the_configs_mean_and_std_per_channel():
    images = np.zeros((2, 4, 4, 3), np.uint8)
    images[1, 0, 0] = (255, 0, 51)
    llama4 = normalize(images, VisionConfig())  # mean = std = 0.5: [-1, 1]
    assert llama4.shape == (2, 3, 4, 4) and llama4.dtype == torch.float32
    assert llama4[0].eq(-1).all() and llama4[1, :, 0, 0].tolist() == pytest.approx([1, -1, -0.6])
    unit = normalize(images, VisionConfig(pixel_mean=[0, 0, 0], pixel_std=[1, 1, 1]))
    assert unit[0].eq(0).all() and unit[1, :, 0, 0].tolist() == pytest.approx([1, 0, 0.2])


def test_normalize_refuses_other_inputs_and_configs_name_the_field():
    with pytest.raises(ValueError, match="expected uint8"):
        normalize(np.zeros((1, 4, 4, 3), np.float32), VisionConfig())
    with pytest.raises(ValueError, match="pixel_std"):
        VisionConfig(pixel_std=[0.5, 0.0, 0.5])
    with pytest.raises(ValueError, match="pixel_mean"):
        VisionConfig(pixel_mean=[0.5])
