"""Images in a chat request: OpenAI's ``image_url`` content parts -> prompt tokens and pixels.

An image travels inline, as a content part ``{"type": "image_url", "image_url": {"url":
"data:image/png;base64,...", "detail": ...}}`` (``detail`` is accepted and ignored: an
image is one square tile). The server fetches nothing: any other URL (``http``, ``https``,
``file``, a bare base64 string) is refused. Decoding is the data pipeline's
(``superlab.data.images.codec``: base64 -> PNG -> RGB, resized to ``model.vision.image_size``
as a training split is) and so is the tower's input (``superlab.model.vision.normalize``,
with the model's ``pixel_mean`` / ``pixel_std``).

Each bad image, and each part of a type the server does not take, is a 400 naming its field
and a code; the cheap checks (``parts``, then ``check``) run before anything is tokenized
or decoded, the decoding (``pixels``) in a worker thread. ``parts`` refuses whatever the
model (a text-only one too):

- on ``messages[i].content[j].type``: ``content_part_not_supported`` (a part other than
  ``text`` or ``image_url``: ``input_audio``, ``file``, ...; ``protocol.content_parts``);
- on ``messages[i].content[j]``: ``image_role_not_supported`` (an image in a message whose
  role is not ``user``; OpenAI takes images in user messages only);
- on ``...image_url``: ``invalid_value`` (not ``{"url": "..."}``).

Then ``check`` and ``pixels``:

- on ``messages[i].content[j]``: ``image_input_not_supported`` (the model has no
  ``model.vision``, or no image token ids), ``too_many_images`` (over ``serve.max_images``);
- on ``...image_url.url``: ``image_url_not_supported`` (not a ``data:`` URL: remote URLs
  are not fetched), ``unsupported_image_format`` (a data URL other than
  ``data:image/png;base64,``, or bytes of another format: JPEG, GIF, ...),
  ``invalid_base64``, ``image_too_large`` (over ``serve.max_image_bytes``, or over 1024 px
  a side), ``invalid_image`` (bytes that do not decode: truncated, not an image).

In the prompt an image is ``image_start_id``, ``tokens_per_image`` x ``image_token_id``,
``image_end_id`` where its part was (``chat_ids``); the text around it is rendered by the
chat template exactly as without images. The images' pixels go to the engine in that
order (``GenRequest.pixels_NCHW``). The placeholders are prompt tokens: they count in
``usage``, against the context, and in the key's worst-case token reservation. Text that
itself tokenizes to the placeholder id is refused (``image_token_in_text``): the model
would have no pixels for it.

Legend: N images, C channels (3, RGB), H = W = ``model.vision.image_size``.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from superlab.config.vision import VisionConfig
from superlab.data.images import codec
from superlab.model.vision import normalize
from superlab.serve.admission import Ctx, chat_prompt, off_loop
from superlab.serve.protocol import ApiError, Message, content_parts


@dataclass(frozen=True)
class ImagePart:
    """One ``image_url`` part: where it is (``messages[i].content[j]``) and its URL."""

    param: str
    url: str


def parts(messages: Sequence[Message]) -> list[ImagePart]:
    """The request's image parts in prompt order; a part of an unknown type, an image outside
    a user message, or one not shaped ``{"url": str}`` is a 400, whatever the model."""
    out = []
    for param, role, p in content_parts(messages):
        if p.type != "image_url":
            continue
        if role != "user":  # as OpenAI: system, developer, assistant and tool take text only
            raise ApiError(
                400,
                f"{param}: an image_url part in a {role!r} message; images go in user messages",
                param,
                "image_role_not_supported",
            )
        obj = p.image_url
        url = obj.get("url") if isinstance(obj, dict) else None
        if not isinstance(url, str):
            raise ApiError(
                400,
                f'{param}.image_url: expected {{"url": "data:image/png;base64,..."}}',
                f"{param}.image_url",
                "invalid_value",
            )
        out.append(ImagePart(param, url))
    return out


def check(ctx: Ctx, images: list[ImagePart]) -> None:
    """The checks that need no decoding: a model that reads images, the count, data URLs."""
    if not images:
        return
    v, first = ctx.vision, images[0].param
    if v is None or None in (v.image_token_id, v.image_start_id, v.image_end_id):
        why = "has no model.vision" if v is None else "has no image token ids in model.vision"
        raise ApiError(
            400,
            f"{first}: model {ctx.name!r} reads text only ({why}); send text parts",
            first,
            "image_input_not_supported",
        )
    if v.channels != 3:
        raise ApiError(
            400,
            f"{first}: model.vision.channels is {v.channels}; images are decoded to RGB (3)",
            first,
            "image_input_not_supported",
        )
    if len(images) > ctx.cfg.max_images:
        over = images[ctx.cfg.max_images].param
        raise ApiError(
            400,
            f"{over}: {len(images)} images; this server takes at most {ctx.cfg.max_images} "
            "per request (serve.max_images)",
            over,
            "too_many_images",
        )
    for im in images:
        if not im.url.startswith("data:"):
            param = f"{im.param}.image_url.url"
            shown = im.url[:40] + ("..." if len(im.url) > 40 else "")
            raise ApiError(
                400,
                f"{param}: {shown!r} is not a data URL; the server fetches nothing (no network):"
                f" send the image inline as {codec.DATA_URL}...",
                param,
                "image_url_not_supported",
            )


def placeholder_ids(v: VisionConfig) -> list[int]:
    """One image in the prompt: start, ``tokens_per_image`` placeholders, end."""
    assert v.image_start_id is not None and v.image_token_id is not None
    assert v.image_end_id is not None  # check() refused a model without them
    return [v.image_start_id, *[v.image_token_id] * v.tokens_per_image, v.image_end_id]


async def chat_ids(ctx: Ctx, messages: Sequence[Message], n_images: int) -> list[int]:
    """The chat prompt's token ids, each image's placeholders where its part is.

    Without images this is the template's text, encoded whole. With images the template is
    rendered with a fresh random marker in place of each image and split there, and each
    piece is encoded on its own: the text is the same, the images are hard token boundaries.
    """
    if not n_images:
        return (await off_loop(ctx, ctx.tokenizer.encode, chat_prompt(messages))).ids
    mark = f"\x00image-{secrets.token_hex(16)}\x00"
    pieces = chat_prompt(messages, image=mark).split(mark)
    if len(pieces) != n_images + 1:  # a text part holding the marker: not by chance
        raise ApiError(400, "messages: the text holds an image marker", "messages", "invalid_value")
    encoded = await off_loop(ctx, ctx.tokenizer.encode_batch, pieces)
    assert ctx.vision is not None  # check() refused images for a text-only model
    image = placeholder_ids(ctx.vision)
    ids: list[int] = []
    for k, enc in enumerate(encoded):
        ids += enc.ids if k == 0 else image + enc.ids
    return ids


def decode(ctx: Ctx, image: ImagePart) -> np.ndarray:
    """(H, W, 3) uint8 pixels of one part, resized to the model's size, or a 400 naming it."""
    assert ctx.vision is not None
    pixels = codec.read(image.url, ctx.vision.image_size, ctx.cfg.max_image_bytes)
    if isinstance(pixels, codec.Reject):
        param = f"{image.param}.image_url.url"
        raise ApiError(400, f"{param}: {pixels}", param, pixels.code)
    return pixels


async def pixels(ctx: Ctx, images: list[ImagePart]) -> torch.Tensor | None:
    """The images decoded in a worker thread, in order, as the tower's input (None: none)."""
    if not images:
        return None

    def run() -> torch.Tensor:
        assert ctx.vision is not None
        return normalize(np.stack([decode(ctx, im) for im in images]), ctx.vision)

    return await off_loop(ctx, run)
