"""Early fusion: placeholders take the tower's rows, no loss on images, cache = full forward."""

import pytest
import torch
import torch.nn.functional as F

from superlab.config.recipe import AttentionConfig, ModelConfig
from superlab.config.vision import VisionConfig
from superlab.model.transformer import Transformer

IMG, BOI, EOI = 60, 61, 62
VISION = VisionConfig(
    image_size=16,
    patch_size=4,
    d_model=32,
    n_layers=2,
    n_heads=2,
    ffn_hidden=64,
    projector_dim=48,
    image_token_id=IMG,
    image_start_id=BOI,
    image_end_id=EOI,
)
P = VISION.tokens_per_image  # 4
IMAGE = [BOI] + [IMG] * P + [EOI]


def _cfg(vision: VisionConfig | None = VISION, **kw) -> ModelConfig:
    base = dict(d_model=32, n_layers=2, n_heads=4, n_kv_heads=2, vocab_size=64, max_seq_len=64)
    return ModelConfig(**(base | kw), vision=vision)


def _model(vision: VisionConfig | None = VISION, **kw) -> Transformer:
    torch.manual_seed(0)
    return Transformer(_cfg(vision, **kw)).eval()


# Two images, one at the very start and one in the middle, text between and after.
ROW = [*IMAGE, 3, 4, 5, *IMAGE, 6, 7, 8, 9]


def _pixels(n: int, seed: int = 1) -> torch.Tensor:
    return torch.randn(n, 3, 16, 16, generator=torch.Generator().manual_seed(seed))


def test_text_weights_and_text_only_logits_match_a_text_model():
    text, vision = _model(None), _model()
    state = text.state_dict()
    assert all(torch.equal(state[k], v) for k, v in vision.state_dict().items() if k in state)
    idx_BT = torch.randint(0, 60, (2, 12), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(
            vision(idx_BT).logits_BTV, text(idx_BT).logits_BTV, rtol=0, atol=0
        )


def test_images_change_only_positions_from_the_first_image_on():
    model = _model()
    idx_BT = torch.tensor([[3, 4, 5, *IMAGE, 6, 7]])
    with torch.no_grad():
        a = model(idx_BT, pixels_NCHW=_pixels(1, 1)).logits_BTV
        b = model(idx_BT, pixels_NCHW=_pixels(1, 2)).logits_BTV
    first = 4  # BOI at 3, the first placeholder at 4
    torch.testing.assert_close(a[:, :first], b[:, :first], rtol=0, atol=0)
    assert (a[:, first:] - b[:, first:]).abs().amax(-1).min() > 1e-4


def test_several_images_per_row_and_rows_of_a_batch_are_independent():
    model = _model()
    other = [7] + IMAGE + [8] * (len(ROW) - len(IMAGE) - 1)  # one image, at position 1
    px = _pixels(3)
    with torch.no_grad():
        both = model(torch.tensor([ROW, other]), pixels_NCHW=px).logits_BTV
        first = model(torch.tensor([ROW]), pixels_NCHW=px[:2]).logits_BTV
        second = model(torch.tensor([other]), pixels_NCHW=px[2:]).logits_BTV
    torch.testing.assert_close(both[:1], first, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(both[1:], second, rtol=1e-5, atol=1e-5)
    # Swapping the two images of row 0 changes its logits: images go in order.
    with torch.no_grad():
        swapped = model(torch.tensor([ROW]), pixels_NCHW=px[[1, 0]]).logits_BTV
    assert (swapped - first).abs().max() > 1e-4


def test_no_loss_at_image_positions():
    model = _model()
    idx_BT = torch.tensor([ROW])
    targets_BT = torch.tensor([[*ROW[1:], 0]])
    px = _pixels(2)
    with torch.no_grad():
        out = model(idx_BT, targets_BT, pixels_NCHW=px)
    image_T = (idx_BT[0] == IMG) | (targets_BT[0] == IMG)
    assert int(image_T.sum()) == 2 * (P + 1)  # BOI -> first placeholder, each placeholder
    keep_T = ~image_T
    want = F.cross_entropy(out.logits_BTV[0][keep_T], targets_BT[0][keep_T])
    torch.testing.assert_close(out.loss, want)
    # Whatever the targets say at image positions, the loss is the same.
    noisy_BT = targets_BT.masked_fill(image_T[None] & (targets_BT != IMG), 5)
    with torch.no_grad():
        torch.testing.assert_close(model(idx_BT, noisy_BT, pixels_NCHW=px).loss, out.loss)


def test_loss_trains_the_tower_and_not_the_placeholder_embedding():
    model = _model(tie_embeddings=False).train()  # tied, the LM head would train the row
    idx_BT = torch.tensor([ROW])
    model(idx_BT, torch.tensor([[*ROW[1:], 0]]), pixels_NCHW=_pixels(2)).loss.backward()
    assert model.vision is not None
    assert model.vision.encoder.patch_emb.weight.grad.abs().sum() > 0
    assert model.vision.projector.out.weight.grad.abs().sum() > 0
    assert model.tok_emb.weight.grad[IMG].abs().sum() == 0


@pytest.mark.parametrize(
    "attention", [AttentionConfig(), AttentionConfig(kind="chunked", chunk_size=8)]
)
def test_kv_cache_decoding_equals_the_full_forward_with_images(attention):
    model = _model(attention=attention)
    idx_BT = torch.tensor([ROW])
    px = _pixels(2)
    with torch.no_grad():
        full = model(idx_BT, pixels_NCHW=px).logits_BTV
        cache = model.new_cache()
        split = len(IMAGE) + 3  # the first call holds image 1, the second image 2
        parts = [model(idx_BT[:, :split], cache=cache, pixels_NCHW=px[:1]).logits_BTV]
        end = split + len(IMAGE)
        parts.append(model(idx_BT[:, split:end], cache=cache, pixels_NCHW=px[1:]).logits_BTV)
        for t in range(end, len(ROW)):  # then one text token per call
            parts.append(model(idx_BT[:, t : t + 1], cache=cache).logits_BTV)
    torch.testing.assert_close(torch.cat(parts, dim=1), full, rtol=1e-5, atol=1e-5)


def test_bad_image_inputs_are_refused():
    model = _model()
    idx_BT = torch.tensor([ROW])
    with pytest.raises(ValueError, match="8 image placeholder tokens for 1 images"):
        model(idx_BT, pixels_NCHW=_pixels(1))
    with pytest.raises(ValueError, match="placeholder tokens but no pixels"):
        model(idx_BT)
    with pytest.raises(ValueError, match=r"pixels: shape \(2, 3, 8, 8\)"):
        model(idx_BT, pixels_NCHW=torch.zeros(2, 3, 8, 8))
    with pytest.raises(ValueError, match="text-only model"):
        _model(None)(idx_BT, pixels_NCHW=_pixels(2))
    unset = VISION.model_copy(update={"image_token_id": None})
    with pytest.raises(ValueError, match="image_token_id is None"):
        _model(unset)(idx_BT, pixels_NCHW=_pixels(2))


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"patch_size": 5}, "patch_size"),
        ({"n_heads": 4}, "n_heads"),  # head dim 8: fine; 32 / 3 is not
        ({"image_size": 12}, "pixel_shuffle_ratio"),  # a 3x3 grid cannot be halved
        ({"pixel_shuffle_ratio": 0.4}, "pixel_shuffle_ratio"),
    ],
)
def test_vision_config_checks_name_the_field(change, field):
    args = VISION.model_dump() | change
    if field == "n_heads":
        args["n_heads"] = 3
    with pytest.raises(ValueError, match=field):
        VisionConfig(**args)
    assert VisionConfig(**(VISION.model_dump() | {"n_heads": 4})).tokens_per_image == P


def test_save_and_load_keep_the_tower(tmp_path):
    from superlab.model.io import load_model, save_model

    model = _model()
    save_model(model, tmp_path)
    back = load_model(tmp_path).eval()
    assert back.cfg.vision == VISION
    idx_BT, px = torch.tensor([ROW]), _pixels(2)
    with torch.no_grad():
        torch.testing.assert_close(
            back(idx_BT, pixels_NCHW=px).logits_BTV,
            model(idx_BT, pixels_NCHW=px).logits_BTV,
            rtol=0,
            atol=0,
        )
