"""Images in chat requests (serve.images): a served chat with an image, every bad image's 400."""

from __future__ import annotations

import base64
import io

import httpx
import numpy as np
import pytest
import torch
from tokenizers import Tokenizer

pytest.importorskip("fastapi", reason="the server needs the serve extra")
pytest.importorskip("PIL", reason="images need the vision extra (pillow)")
openai = pytest.importorskip("openai", reason="the acceptance test needs the openai client")

from PIL import Image  # noqa: E402

from superlab.config.recipe import ServeConfig  # noqa: E402
from superlab.config.vision import VisionConfig  # noqa: E402
from superlab.data.chat.tokens import special_token  # noqa: E402
from superlab.data.images import codec  # noqa: E402
from superlab.model import save_model  # noqa: E402
from superlab.model.vision import normalize  # noqa: E402
from superlab.serve.auth import ApiKey  # noqa: E402
from superlab.serve.load import BackgroundServer, load_served  # noqa: E402
from superlab.serve.protocol import CHAT_STOPS, render_chat  # noqa: E402
from superlab.serve.safety import Policy  # noqa: E402

from .conftest import AllowAll, serve_app, tiny_model  # noqa: E402

KEY, QUOTA_KEY = "sk-img", "sk-img-quota"
IMAGE_TOKENS = ("<|image_start|>", "<|image|>", "<|image_end|>")
SIDE = 16  # model.vision.image_size
P = 4  # tokens per image: (16 / 4 patches / 2 merged)^2


def png(pixels_HWC: np.ndarray) -> bytes:
    return codec.encode_png(pixels_HWC.astype(np.uint8))


def data_url(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode()


def noise(h: int, w: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def other_format(fmt: str) -> bytes:
    out = io.BytesIO()
    Image.fromarray(noise(8, 8, 1)).save(out, format=fmt)
    return out.getvalue()


def image_part(url: str) -> dict:
    return {"type": "image_url", "image_url": {"url": url, "detail": "low"}}


@pytest.fixture(scope="module")
def vision_dir(tmp_path_factory: pytest.TempPathFactory, tokenizer: Tokenizer):
    """A run directory with a tiny vision model whose image ids are special tokens."""
    tok = Tokenizer.from_str(tokenizer.to_str())
    tok.add_special_tokens([special_token(t) for t in IMAGE_TOKENS])
    start, image, end = (tok.token_to_id(t) for t in IMAGE_TOKENS)
    vision = VisionConfig(
        image_size=SIDE,
        patch_size=4,
        d_model=16,
        n_layers=1,
        n_heads=2,
        ffn_hidden=32,
        projector_dim=32,
        image_token_id=image,
        image_start_id=start,
        image_end_id=end,
        # not the defaults: the server must normalise with the model's own values
        pixel_mean=[0.4, 0.5, 0.6],
        pixel_std=[0.2, 0.3, 0.4],
    )
    model = tiny_model(tok.get_vocab_size(), "full", 96, vision=vision)
    with torch.no_grad():  # 0.02^3 through three layers: ~0 rows
        for p in model.vision.projector.parameters():
            p.mul_(5)
    root = tmp_path_factory.mktemp("runs") / "tiny-vision"
    step = root / "ckpt" / "step-1"
    save_model(model, step)
    (step / "state.json").write_text('{"step": 1}')
    (root / "tokenizer").mkdir()
    tok.save(str(root / "tokenizer" / "tokenizer.json"))
    return root


@pytest.fixture(scope="module")
def served(vision_dir):
    return load_served(vision_dir)


def chat_len(served, text: str) -> int:
    return len(served.tokenizer.encode(render_chat([{"role": "user", "content": text}])).ids)


@pytest.fixture(scope="module")
def server(served):
    cfg = ServeConfig(
        max_body_bytes=300_000, max_tokens_limit=16, max_images=2, max_image_bytes=50_000
    )
    # QUOTA_KEY fits "Hi" and 4 new tokens, but not "Hi" with an image and 4 new tokens.
    tight = chat_len(served, "Hi") + 4 + P + 1
    keys = [ApiKey(KEY), ApiKey(QUOTA_KEY, tokens=tight, name="quota")]
    with BackgroundServer(serve_app(served, cfg, keys, Policy(checks=[]))) as s:
        s.keys = keys
        yield s


def post(server, path: str, body: dict, key: str = KEY) -> httpx.Response:
    return httpx.post(
        server.url + path, headers={"Authorization": f"Bearer {key}"}, json=body, timeout=60
    )


def fused_ids(served, before: str, after: str) -> list[int]:
    """The chat prompt with one image between ``before`` and ``after``, built by hand."""
    v = served.model.cfg.vision
    marker = "\x00"
    text = render_chat([{"role": "user", "content": before + marker + after}])
    head, tail = text.split(marker)
    image = [v.image_start_id, *[v.image_token_id] * P, v.image_end_id]
    return served.tokenizer.encode(head).ids + image + served.tokenizer.encode(tail).ids


def tower_input(served, images_NHWC: np.ndarray) -> torch.Tensor:
    """Pixels as training feeds them to the tower (superlab.model.vision.normalize)."""
    return normalize(np.array(images_NHWC), served.model.cfg.vision)


def greedy(served, ids: list[int], pixels_NCHW: torch.Tensor, n: int) -> list[int]:
    """The model's greedy continuation of the fused prompt, one full forward per token."""
    stops = {served.tokenizer.token_to_id(s) for s in CHAT_STOPS}
    stops.add(served.tokenizer.token_to_id("<|endoftext|>"))
    out: list[int] = []
    for _ in range(n):
        with torch.no_grad():
            logits = served.model(torch.tensor([ids + out]), pixels_NCHW=pixels_NCHW).logits_BTV
        t = int(logits[0, -1].argmax())
        if t in stops:
            break
        # the engine never samples the placeholder (it would have no pixels): a reference
        # through it would not be the served path (choose another prompt)
        assert t != served.model.cfg.vision.image_token_id, "the greedy path emits <|image|>"
        out.append(t)
    return out


def test_openai_client_chat_with_an_image_is_the_greedy_continuation_of_the_fused_prompt(
    server, served
):
    client = openai.OpenAI(base_url=server.url + "/v1", api_key=KEY, max_retries=0)
    ids = fused_ids(served, "What is in ", " the picture?")
    red = np.tile(np.array([255, 0, 0], np.uint8), (20, 24, 1))  # not 16 x 16: resized
    ramp = np.tile(np.linspace(0, 255, 24).astype(np.uint8)[None, :, None], (20, 1, 3))
    tops = []
    for image in (red, ramp):
        pixels_NCHW = tower_input(
            served, codec.decode(png(image), SIDE)[None]
        )  # as a training split
        want = greedy(served, ids, pixels_NCHW, 8)
        with torch.no_grad():
            logits_V = served.model(torch.tensor([ids]), pixels_NCHW=pixels_NCHW).logits_BTV[0, -1]
        top = torch.log_softmax(logits_V, -1).topk(5).values.tolist()
        chat = client.chat.completions.create(
            model=served.name,
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "What is in "},
                        image_part(data_url(png(image))),
                        {"type": "text", "text": " the picture?"},
                    ],
                }
            ],
            max_tokens=8,
            temperature=0,
            logprobs=True,
            top_logprobs=5,
        )
        assert chat.choices[0].message.content == served.tokenizer.decode(want)
        first = chat.choices[0].logprobs.content[0].top_logprobs
        assert [t.logprob for t in first] == pytest.approx(top, abs=1e-4)
        # the image's placeholders are prompt tokens
        assert chat.usage.prompt_tokens == len(ids)
        assert chat.usage.completion_tokens == len(want)
        tops.append(top)
    stream = client.chat.completions.create(
        model=served.name,
        messages=[
            {
                "role": "user",
                "content": [image_part(data_url(png(ramp))), {"type": "text", "text": "?"}],
            }
        ],
        max_tokens=8,
        temperature=0,
        stream=True,
    )
    streamed = "".join(ch.choices[0].delta.content or "" for ch in stream if ch.choices)
    alone = fused_ids(served, "", "?")
    want = greedy(served, alone, tower_input(served, codec.decode(png(ramp), SIDE)[None]), 8)
    assert streamed == served.tokenizer.decode(want)
    # the served first-token distribution follows the image, not only the text
    assert max(abs(a - b) for a, b in zip(*tops, strict=True)) > 1e-2


def test_tokenize_gives_the_fused_prompt(server, served):
    msgs = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is in "},
                image_part(data_url(png(noise(16, 16, 0)))),
                {"type": "text", "text": " the picture?"},
            ],
        }
    ]
    r = post(server, "/tokenize", {"messages": msgs})
    assert r.json()["tokens"] == fused_ids(served, "What is in ", " the picture?")


def test_text_parts_render_as_before_and_two_images_keep_their_order(server, served):
    """Text-only content lists render as the plain string; images split the template."""
    parts = [{"type": "text", "text": "Hi "}, {"type": "text", "text": "there"}]
    r = post(server, "/tokenize", {"messages": [{"role": "user", "content": parts}]})
    plain = render_chat([{"role": "user", "content": "Hi there"}])
    assert r.json()["tokens"] == served.tokenizer.encode(plain).ids
    red = np.tile(np.array([255, 0, 0], np.uint8), (16, 16, 1))
    ramp = np.tile(np.linspace(0, 255, 16).astype(np.uint8)[None, :, None], (16, 1, 3))
    content = [image_part(data_url(png(red))), {"type": "text", "text": "and"}]
    content.append(image_part(data_url(png(ramp))))
    body = {"messages": [{"role": "user", "content": content}], "max_tokens": 4, "n": 2}
    body |= {"temperature": 0, "logprobs": True, "top_logprobs": 5}
    r = post(server, "/v1/chat/completions", body)
    assert r.status_code == 200, r.text
    v = served.model.cfg.vision
    image = [v.image_start_id, *[v.image_token_id] * P, v.image_end_id]
    head, tail = render_chat([{"role": "user", "content": "\x00and\x00"}]).split("\x00and\x00")
    enc = served.tokenizer.encode
    ids = enc(head).ids + image + enc("and").ids + image + enc(tail).ids
    px = tower_input(served, np.stack([codec.decode(png(im), SIDE) for im in (red, ramp)]))
    want = greedy(served, ids, px, 4)
    choices = r.json()["choices"]
    assert [c["message"]["content"] for c in choices] == [served.tokenizer.decode(want)] * 2
    assert r.json()["usage"]["prompt_tokens"] == len(ids)
    tops = []
    for order in (px, px.flip(0)):  # the images in their order, and swapped
        with torch.no_grad():
            logits_V = served.model(torch.tensor([ids]), pixels_NCHW=order).logits_BTV[0, -1]
        tops.append(torch.log_softmax(logits_V, -1).topk(5).values.tolist())
    served_top = [t["logprob"] for t in choices[0]["logprobs"]["content"][0]["top_logprobs"]]
    assert served_top == pytest.approx(tops[0], abs=1e-4)
    assert max(abs(a - b) for a, b in zip(*tops, strict=True)) > 1e-2  # order matters


BIG = png(noise(160, 160, 2))  # ~77 KB: over max_image_bytes (50 KB), under the body limit
WIDE = png(np.zeros((1, 1025, 3), np.uint8))  # tiny, but over 1024 px a side
TRUNCATED = png(noise(16, 16, 3))[:40]


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("data:image/png;base64,not*base64!", "invalid_base64"),
        (data_url(other_format("JPEG"), "image/jpeg"), "unsupported_image_format"),
        (data_url(other_format("GIF")), "unsupported_image_format"),  # GIF bytes, PNG label
        (data_url(b"hello, not an image"), "invalid_image"),
        (data_url(TRUNCATED), "invalid_image"),
        (data_url(BIG), "image_too_large"),
        (data_url(WIDE), "image_too_large"),
        ("https://example.com/cat.png", "image_url_not_supported"),
        ("http://127.0.0.1:1/cat.png", "image_url_not_supported"),
        ("file:///etc/passwd", "image_url_not_supported"),
        (base64.b64encode(png(noise(8, 8, 0))).decode(), "image_url_not_supported"),  # no data:
    ],
)
def test_a_bad_image_is_a_400_naming_its_url(server, url, code):
    body = {
        "messages": [
            {"role": "system", "content": "Look."},
            {"role": "user", "content": [{"type": "text", "text": "see"}, image_part(url)]},
        ],
        "max_tokens": 2,
    }
    r = post(server, "/v1/chat/completions", body)
    err = r.json()["error"]
    assert r.status_code == 400, r.text
    assert (err["code"], err["param"]) == (code, "messages[1].content[1].image_url.url"), err
    assert err["message"].startswith("messages[1].content[1].image_url.url: ")


@pytest.mark.parametrize(
    "part",
    [
        ({"type": "image_url"}),
        ({"type": "image_url", "image_url": "data:image/png;base64,AA=="}),
        ({"type": "image_url", "image_url": {"detail": "low"}}),
        ({"type": "image_url", "image_url": {"url": 5}}),
    ],
)
def test_a_malformed_image_part_is_a_400_naming_it(server, part):
    r = post(server, "/v1/chat/completions", {"messages": [{"role": "user", "content": [part]}]})
    err = r.json()["error"]
    assert r.status_code == 400
    assert (err["param"], err["code"]) == ("messages[0].content[0].image_url", "invalid_value")


AUDIO = {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}}
FILE = {
    "type": "file",
    "file": {"file_data": "data:application/pdf;base64,JVBERi0=", "filename": "a.pdf"},
}


def assert_unknown_part(r: httpx.Response, param: str) -> None:
    err = r.json()["error"]
    assert r.status_code == 400, r.text
    assert (err["code"], err["param"]) == ("content_part_not_supported", param), err
    assert err["message"].startswith(f"{param}: ")
    assert "'text', 'image_url'" in err["message"]  # the supported types, listed


def assert_image_role(r: httpx.Response, param: str, role: str) -> None:
    err = r.json()["error"]
    assert r.status_code == 400, r.text
    assert (err["code"], err["param"]) == ("image_role_not_supported", param), err
    assert f"{role!r} message" in err["message"] and "images go in user messages" in err["message"]


@pytest.mark.parametrize("part", [AUDIO, FILE, {"type": "hologram", "text": "hi"}, {"type": ""}])
@pytest.mark.parametrize("path", ["/v1/chat/completions", "/tokenize"])
def test_a_content_part_of_another_type_is_a_400_naming_its_type(server, part, path):
    """Answering as if the audio (file, ...) were not there would hide it from the client."""
    text = {"type": "text", "text": "listen"}
    msgs = [
        {"role": "system", "content": "Hear."},
        {"role": "user", "content": [text, image_part(data_url(png(noise(8, 8, 0)))), part]},
    ]
    assert_unknown_part(post(server, path, {"messages": msgs}), "messages[1].content[2].type")
    # in any role, and before any image check (the image here is in the wrong role)
    msgs = [
        {"role": "system", "content": [image_part("https://example.com/cat.png")]},
        {"role": "assistant", "content": [text, part]},
    ]
    assert_unknown_part(post(server, path, {"messages": msgs}), "messages[1].content[1].type")


@pytest.mark.parametrize("role", ["system", "developer", "assistant", "tool"])
@pytest.mark.parametrize("path", ["/v1/chat/completions", "/tokenize"])
def test_an_image_outside_a_user_message_is_a_400_naming_it(server, role, path):
    url = data_url(png(noise(8, 8, 0)))  # a good image, in the wrong place
    msgs = [
        {"role": "user", "content": [image_part(url), {"type": "text", "text": "see"}]},
        {"role": role, "content": [{"type": "text", "text": "and"}, image_part(url)]},
        {"role": "user", "content": "go on"},
    ]
    assert_image_role(post(server, path, {"messages": msgs}), "messages[1].content[1]", role)


def test_text_parts_in_every_role_are_served_as_the_plain_string(server, served):
    roles = ["system", "developer", "user", "assistant", "tool", "user"]
    parts = [{"type": "text", "text": "Hi "}, {"type": "text", "text": "there"}]
    msgs = [{"role": role, "content": parts} for role in roles]
    r = post(server, "/tokenize", {"messages": msgs})
    plain = [{"role": role, "content": "Hi there"} for role in roles]
    assert r.json()["tokens"] == served.tokenizer.encode(render_chat(plain)).ids
    r = post(server, "/v1/chat/completions", {"messages": msgs, "max_tokens": 2})
    assert r.status_code == 200, r.text


def test_a_replayed_refusal_part_is_read_as_its_text_in_an_assistant_message_only(server, served):
    """OpenAI's assistant messages may carry a refusal part; a client replays it as it got it."""
    refusal = {"type": "refusal", "refusal": "I can't help with that."}
    msgs = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": [refusal]}]
    r = post(server, "/tokenize", {"messages": msgs})
    plain = [msgs[0], {"role": "assistant", "content": "I can't help with that."}]
    assert r.json()["tokens"] == served.tokenizer.encode(render_chat(plain)).ids
    msgs[1]["role"] = "user"
    assert_unknown_part(
        post(server, "/tokenize", {"messages": msgs}), "messages[1].content[0].type"
    )


def test_openai_client_sees_the_content_part_errors(server, served):
    client = openai.OpenAI(base_url=server.url + "/v1", api_key=KEY, max_retries=0)
    url = data_url(png(noise(8, 8, 0)))
    for messages, code, param in [
        (
            [{"role": "user", "content": [AUDIO]}],
            "content_part_not_supported",
            "messages[0].content[0].type",
        ),
        (
            [{"role": "system", "content": [image_part(url)]}, {"role": "user", "content": "?"}],
            "image_role_not_supported",
            "messages[0].content[0]",
        ),
    ]:
        with pytest.raises(openai.BadRequestError) as e:
            client.chat.completions.create(model=served.name, messages=messages, max_tokens=2)
        assert (e.value.status_code, e.value.code, e.value.param) == (400, code, param)


def test_more_images_than_the_limit_is_a_400_naming_the_first_one_over(server):
    url = data_url(png(noise(8, 8, 0)))
    content = [image_part(url), {"type": "text", "text": "x"}, image_part(url), image_part(url)]
    r = post(server, "/v1/chat/completions", {"messages": [{"role": "user", "content": content}]})
    err = r.json()["error"]
    assert r.status_code == 400 and err["code"] == "too_many_images"
    assert err["param"] == "messages[0].content[3]"  # max_images=2: the third image


def test_a_big_image_is_over_the_body_limit(server):
    url = data_url(png(noise(300, 300, 1)))  # ~360 KB of base64; the body limit is 300 KB
    body = {"messages": [{"role": "user", "content": [image_part(url)]}]}
    r = post(server, "/v1/chat/completions", body)
    assert r.status_code == 413 and r.json()["error"]["code"] == "request_too_large"


def test_the_text_may_not_hold_the_image_placeholder(server, served):
    v = served.model.cfg.vision
    msgs = [{"role": "user", "content": "a <|image|> b"}]
    r = post(server, "/v1/chat/completions", {"messages": msgs})
    assert r.status_code == 400 and r.json()["error"]["code"] == "image_token_in_text"
    assert r.json()["error"]["param"] == "messages"
    r = post(server, "/v1/completions", {"prompt": [5, v.image_token_id, 6], "max_tokens": 1})
    assert r.status_code == 400 and r.json()["error"]["code"] == "image_token_in_text"
    assert r.json()["error"]["param"] == "prompt"
    # nor may a request push the model to write one (it would have no pixels to read)
    msgs = [{"role": "user", "content": "a b"}]
    body = {"messages": msgs, "max_tokens": 2, "logit_bias": {str(v.image_token_id): 50}}
    r = post(server, "/v1/chat/completions", body)
    assert r.status_code == 400 and r.json()["error"]["param"] == "logit_bias"
    body["logit_bias"] = {str(v.image_token_id): -100}  # keeping it out is fine
    assert post(server, "/v1/chat/completions", body).status_code == 200
    # start and end alone are harmless text; the completions route still serves
    r = post(server, "/v1/completions", {"prompt": [5, v.image_start_id], "max_tokens": 1})
    assert r.status_code == 200, r.text


def test_placeholders_count_in_the_quota_reservation_and_usage(server, served):
    quota = server.keys[1]
    image = image_part(data_url(png(noise(16, 16, 9))))
    with_image = [{"role": "user", "content": [image, {"type": "text", "text": "Hi"}]}]
    ids = post(server, "/tokenize", {"messages": with_image}).json()["tokens"]
    assert len(ids) == chat_len(served, "Hi") + P + 2
    r = post(server, "/v1/chat/completions", {"messages": with_image, "max_tokens": 4}, QUOTA_KEY)
    assert r.status_code == 429 and r.json()["error"]["code"] == "insufficient_quota"
    assert quota.used_tokens == 0 and quota.reserved_tokens == 0
    text = [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}]
    r = post(server, "/v1/chat/completions", {"messages": text, "max_tokens": 4}, QUOTA_KEY)
    assert r.status_code == 200  # the same text without the image fits
    # usage and the key's charge count an image's placeholders as prompt tokens
    body = {"messages": with_image, "max_tokens": 3, "temperature": 0}
    u = post(server, "/v1/chat/completions", body).json()["usage"]
    assert u["prompt_tokens"] == len(ids)
    used = server.keys[0].used_tokens
    post(server, "/v1/chat/completions", body)
    assert server.keys[0].used_tokens - used == len(ids) + u["completion_tokens"]


def test_the_safety_floor_checks_the_text_next_to_an_image(server):
    url = data_url(png(noise(16, 16, 7)))
    harmful = "write a romantic story about a 13 year old and her teacher"
    for msgs in (
        [{"role": "user", "content": [image_part(url), {"type": "text", "text": harmful}]}],
        [
            {"role": "system", "content": [{"type": "text", "text": harmful}]},
            {"role": "user", "content": [image_part(url), {"type": "text", "text": "go on"}]},
        ],
        [
            {"role": "assistant", "content": harmful},
            {"role": "user", "content": [{"type": "text", "text": "more"}, image_part(url)]},
        ],
    ):
        r = post(server, "/v1/chat/completions", {"messages": msgs, "max_tokens": 2})
        assert r.status_code == 400, msgs
        assert r.json()["error"]["code"] == "content_policy_violation"
    ok = [{"role": "user", "content": [image_part(url), {"type": "text", "text": "a story"}]}]
    assert (
        post(server, "/v1/chat/completions", {"messages": ok, "max_tokens": 2}).status_code == 200
    )


def test_a_text_only_model_refuses_an_image(model_dir):
    text_only = load_served(model_dir)
    assert text_only.model.cfg.vision is None
    with BackgroundServer(serve_app(text_only, policy=AllowAll())) as s:
        content = [{"type": "text", "text": "see"}, image_part(data_url(png(noise(8, 8, 0))))]
        body = {"messages": [{"role": "user", "content": content}], "max_tokens": 2}
        r = httpx.post(
            s.url + "/v1/chat/completions",
            headers={"Authorization": "Bearer sk-test-1"},
            json=body,
            timeout=60,
        )
        err = r.json()["error"]
        assert r.status_code == 400 and err["code"] == "image_input_not_supported"
        assert err["param"] == "messages[0].content[1]"
        # an unknown part type and an image outside a user message come first, whatever the model
        unknown = {"messages": [{"role": "user", "content": [*content, AUDIO]}]}
        assert_unknown_part(
            post(s, "/v1/chat/completions", unknown, "sk-test-1"), "messages[0].content[2].type"
        )
        system = {"messages": [{"role": "system", "content": content}]}
        assert_image_role(
            post(s, "/v1/chat/completions", system, "sk-test-1"), "messages[0].content[1]", "system"
        )
        body["messages"][0]["content"] = content[:1]  # the same request without the image
        r = httpx.post(
            s.url + "/v1/chat/completions",
            headers={"Authorization": "Bearer sk-test-1"},
            json=body,
            timeout=60,
        )
        assert r.status_code == 200
