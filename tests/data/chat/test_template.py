from __future__ import annotations

import pytest

from superlab.data.chat import CHAT_TEMPLATE, render_chat

from .conftest import CONVERSATIONS


def test_render_chat_format() -> None:
    msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    assert render_chat(msgs) == "<|system|>Be brief.<|end|><|user|>Hi<|end|>"
    assert render_chat(msgs, add_generation_prompt=True).endswith("<|end|><|assistant|>")


@pytest.mark.parametrize("messages", CONVERSATIONS)
@pytest.mark.parametrize("gen", [False, True])
@pytest.mark.parametrize("hf_env", [False, True])
def test_jinja_template_equals_render_chat(messages, gen, hf_env) -> None:
    jinja2 = pytest.importorskip("jinja2")
    # transformers renders with trim_blocks and lstrip_blocks; both must give the same text
    env = jinja2.Environment(trim_blocks=hf_env, lstrip_blocks=hf_env)
    rendered = env.from_string(CHAT_TEMPLATE).render(messages=messages, add_generation_prompt=gen)
    assert rendered == render_chat(messages, add_generation_prompt=gen)


def test_jinja_template_refuses_an_unknown_role() -> None:
    jinja2 = pytest.importorskip("jinja2")

    def raise_exception(msg: str) -> None:  # transformers gives templates this function
        raise ValueError(msg)

    template = jinja2.Environment().from_string(CHAT_TEMPLATE)
    with pytest.raises(ValueError, match="unknown role: human"):
        template.render(
            messages=[{"role": "human", "content": "x"}], raise_exception=raise_exception
        )
