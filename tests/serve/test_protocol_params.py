"""A bad request's 400 names its field as the server names fields everywhere else
(``messages[1].content[0].type``), never pydantic's location with union tags in it."""

import pytest

from superlab.serve.protocol import ApiError, ChatRequest, CompletionRequest, parse

USER = {"role": "user", "content": "hi"}


@pytest.mark.parametrize(
    ("body", "param", "says"),
    [
        # content is a string or a list of parts: the error of the list's bad part, not
        # "should be a valid string" from the other member of the union
        (
            {"messages": [USER, {"role": "user", "content": [{"text": "x"}]}]},
            "messages[1].content[0].type",
            "Field required",
        ),
        ({"messages": [{"role": "robot", "content": "x"}]}, "messages[0].role", "'system'"),
        ({"messages": [{"role": "user"}]}, "messages[0].content", "Field required"),
        ({"messages": [USER], "temperature": 5}, "temperature", "less than or equal to 2"),
        ({"messages": [USER], "logit_bias": {"50256": "a"}}, "logit_bias.50256", "number"),
    ],
)
def test_a_chat_field_is_named_with_brackets_and_without_union_tags(body, param, says):
    with pytest.raises(ApiError) as err:
        parse(ChatRequest, body)
    assert (err.value.status, err.value.param, err.value.code) == (400, param, "invalid_value")
    assert err.value.message.startswith(f"{param}: ") and says in err.value.message


def test_a_completion_prompt_of_lists_names_the_bad_id():
    with pytest.raises(ApiError) as err:
        parse(CompletionRequest, {"prompt": [[1, 2], [3, "x"]]})
    assert err.value.param == "prompt[1][1]"
