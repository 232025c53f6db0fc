from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import jsonschema
import pytest

from bot.planner import (
    OUTPUT_MARKER,
    ConversationMessage,
    LLMSettings,
    OpenAIPlanner,
    Planner,
    PlannerAnswer,
    PlannerError,
    PlanningContext,
    answer_json_schema,
    prepare_conversation,
)
from engine.errors import ConfigError
from engine.plan import parse_plan, plan_json_schema
from engine.policy import ChannelPolicy, Policy
from tests.fake_llm import (
    FakeLLM,
    content,
    error,
    hang,
    raw,
    structured,
    tool_call,
    unsupported_response_format,
)

API_KEY = "sk-test-Zq8pL2mN4vR6tY1uW3xA5bC7dE9fG0hJ"
MODEL = "gpt-test"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
SLACK_TOKEN = "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"

PLAN: dict[str, Any] = {
    "summary": "Stop the staging web servers",
    "on_failure": "rollback",
    "commands": [
        {"id": "check", "cli": "aws ec2 describe-instances --filters Name=tag:env,Values=staging"},
        {
            "id": "stop",
            "cli": "aws ec2 stop-instances --instance-ids i-0abc1234",
            "rollback": [{"cli": "aws ec2 start-instances --instance-ids i-0abc1234"}],
        },
    ],
}

CONTEXT = PlanningContext(
    environment="staging",
    region="eu-west-1",
    aws_profile="staging-operator-profile",
    allow=["ec2:Describe*", "ec2:StopInstances", "ec2:StartInstances"],
    deny=["ec2:TerminateInstances"],
    max_commands=7,
    requester="alice",
)

REQUEST = [ConversationMessage(role="user", author="alice", text="stop the staging web servers")]


@pytest.fixture(autouse=True)
def _no_llm_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    for name in ("BASE_URL", "API_KEY", "MODEL", "TIMEOUT_SECONDS", "MAX_MESSAGES", "MAX_CHARS"):
        monkeypatch.delenv(f"CLOUDOPS_LLM_{name}", raising=False)
    # Settings read `.env` from the working directory; tests must not pick up a developer's file.
    monkeypatch.chdir(tmp_path)


@pytest.fixture
async def llm() -> AsyncIterator[FakeLLM]:
    async with FakeLLM(api_key=API_KEY, model=MODEL) as fake:
        yield fake


def settings_for(llm: FakeLLM, **overrides: Any) -> LLMSettings:
    return LLMSettings(**{"base_url": llm.base_url, "api_key": API_KEY, "model": MODEL, **overrides})


async def ask(
    llm: FakeLLM,
    conversation: list[ConversationMessage] = REQUEST,
    context: PlanningContext = CONTEXT,
    **overrides: Any,
) -> PlannerAnswer:
    async with aiohttp.ClientSession() as session:
        return await OpenAIPlanner(settings_for(llm, **overrides), session).plan(conversation, context)


def system_text(llm: FakeLLM, request: int = 0) -> str:
    first = llm.requests[request].body["messages"][0]
    assert first["role"] == "system"
    return first["content"]


# --- answers -------------------------------------------------------------------------------------------------


async def test_structured_answer_yields_a_plan_the_engine_accepts(llm: FakeLLM) -> None:
    llm.script(structured(PLAN, reply="Checking first, then stopping."))
    answer = await ask(llm)
    plan = parse_plan(answer.plan_text or "")
    assert [c.id for c in plan.commands] == ["check", "stop"]
    assert plan.commands[1].rollback[0].cli == "aws ec2 start-instances --instance-ids i-0abc1234"
    assert answer.reply == "Checking first, then stopping."
    assert llm.protocol_errors == []


async def test_request_asks_for_the_wrapper_schema_as_structured_output(llm: FakeLLM) -> None:
    llm.script(structured(PLAN))
    await ask(llm)
    response_format = llm.requests[0].body["response_format"]
    assert response_format["type"] == "json_schema"
    assert response_format["json_schema"]["name"] == "cloudops_plan"
    schema = response_format["json_schema"]["schema"]
    assert schema == answer_json_schema()
    validator = jsonschema.Draft202012Validator(schema)
    validator.validate({"reply": None, "plan": PLAN})
    validator.validate({"reply": "Which instances?", "plan": None})
    assert not validator.is_valid({"reply": None, "plan": {"summary": "x", "commands": []}})
    assert not validator.is_valid({"reply": 3, "plan": None})
    assert "tools" not in llm.requests[0].body


async def test_tool_call_is_used_after_the_endpoint_refuses_response_format(llm: FakeLLM) -> None:
    llm.script(unsupported_response_format(), tool_call(PLAN, content="Here is a plan."))
    answer = await ask(llm)
    assert len(llm.requests) == 2
    retry = llm.requests[1].body
    assert "response_format" not in retry
    assert retry["tools"][0]["function"]["name"] == "propose_plan"
    assert retry["tools"][0]["function"]["parameters"] == plan_json_schema()
    assert "propose_plan" in system_text(llm, 1)
    assert [c.id for c in parse_plan(answer.plan_text or "").commands] == ["check", "stop"]
    assert answer.reply == "Here is a plan."
    assert llm.protocol_errors == []


async def test_fallback_endpoint_may_answer_with_a_question_in_plain_text(llm: FakeLLM) -> None:
    llm.script(unsupported_response_format(), content("Which web servers: blue or green?"))
    answer = await ask(llm)
    assert answer == PlannerAnswer(plan_text=None, reply="Which web servers: blue or green?")


async def test_plain_content_with_a_fenced_plan_is_accepted(llm: FakeLLM) -> None:
    fenced = "summary: List buckets\ncommands:\n  - id: list\n    cli: aws s3 ls\n"
    llm.script(content(f"Here is my proposal:\n```yaml\n{fenced}```\nApprove when ready."))
    answer = await ask(llm)
    assert [c.cli for c in parse_plan(answer.plan_text or "").commands] == ["aws s3 ls"]
    assert answer.reply is not None
    assert "Here is my proposal" in answer.reply
    assert "Approve when ready." in answer.reply
    assert "summary:" not in answer.reply


async def test_json_answer_inside_a_fence_is_read_as_the_structured_answer(llm: FakeLLM) -> None:
    llm.script(content("```json\n" + json.dumps({"reply": None, "plan": PLAN}) + "\n```"))
    answer = await ask(llm)
    assert parse_plan(answer.plan_text or "").summary == PLAN["summary"]


async def test_clarifying_reply_has_no_plan(llm: FakeLLM) -> None:
    llm.script(structured(plan=None, reply="Which instances do you mean?"))
    answer = await ask(llm)
    assert answer.plan_text is None
    assert answer.reply == "Which instances do you mean?"


async def test_null_members_in_the_models_plan_read_as_absent(llm: FakeLLM) -> None:
    plan = {
        "summary": "List",
        "risk": None,
        "mode": None,
        "commands": [{"id": "a", "cli": "aws s3 ls", "sdk": None, "depends_on": None, "rollback": None}],
    }
    llm.script(structured(plan))
    answer = await ask(llm)
    assert [c.cli for c in parse_plan(answer.plan_text or "").commands] == ["aws s3 ls"]


async def test_refusal_is_passed_on_as_a_reply(llm: FakeLLM) -> None:
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": None, "refusal": "I can't help."}}],
    }
    llm.script(raw(json.dumps(body)))
    assert await ask(llm) == PlannerAnswer(reply="I can't help.")


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (raw("this is not json"), "The planner's answer was not valid JSON."),
        (raw('{"choices": "none"}'), "The planner's answer was not a chat completion"),
        (raw('{"id": "x", "object": "chat.completion"}'), "The planner's answer was not a chat completion"),
        (raw('{"choices": []}'), "The planner's answer held no choices."),
        (raw('{"choices": [{"message": {"role": "assistant", "content": ""}}]}'), "The planner's answer was empty."),
        (content('{"reply": "x", "plan": {"summary": '), "The planner's answer was not valid JSON"),
        (content('{"reply": 5, "plan": null}'), "The planner's answer was not a valid plan: reply"),
        (content('{"reply": null, "plan": null}'), "neither a plan nor a reply"),
        (structured({"summary": "x", "commands": []}), "The planner's answer was not a valid plan: commands"),
        (structured({"summary": "x", "commands": [{"id": "a"}]}), "exactly one of `cli` or `sdk`"),
        (content("```yaml\nsummary: x\ncommands: nope\n```"), "The planner's answer was not a valid plan"),
        (content('{"reply": "a', finish_reason="length"), "cut off"),
    ],
)
async def test_malformed_answers_raise_a_clear_planner_error(llm: FakeLLM, answer: Any, expected: str) -> None:
    llm.script(answer)
    with pytest.raises(PlannerError) as caught:
        await ask(llm)
    assert expected in str(caught.value)


async def test_tool_call_with_broken_arguments_is_refused(llm: FakeLLM) -> None:
    body = {
        "choices": [
            {
                "message": {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {"id": "c1", "type": "function", "function": {"name": "propose_plan", "arguments": "{oops"}}
                    ],
                },
                "finish_reason": "tool_calls",
            }
        ]
    }
    llm.script(raw(json.dumps(body)))
    with pytest.raises(PlannerError, match="arguments are not valid JSON"):
        await ask(llm)


async def test_call_to_an_undeclared_function_is_refused(llm: FakeLLM) -> None:
    llm.script(unsupported_response_format(), tool_call(PLAN, name="delete_everything"))
    with pytest.raises(PlannerError, match="unknown function"):
        await ask(llm)


async def test_server_error_becomes_a_planner_error_with_the_status(llm: FakeLLM) -> None:
    llm.script(error(500, "The server had an error while processing your request."))
    with pytest.raises(PlannerError) as caught:
        await ask(llm)
    assert str(caught.value) == (
        "The planner failed (HTTP 500): The server had an error while processing your request."
    )


async def test_other_client_errors_do_not_trigger_the_fallback(llm: FakeLLM) -> None:
    llm.script(error(400, "This model's maximum context length is 8192 tokens."))
    with pytest.raises(PlannerError, match=r"refused the request \(HTTP 400\): This model's maximum context"):
        await ask(llm)
    assert len(llm.requests) == 1


async def test_rate_limit_is_reported_as_such(llm: FakeLLM) -> None:
    llm.script(error(429, "Rate limit reached."))
    with pytest.raises(PlannerError, match=r"rate-limited or out of quota \(HTTP 429\)"):
        await ask(llm)


async def test_timeout_raises_quickly(llm: FakeLLM) -> None:
    llm.script(hang(30))
    started = time.monotonic()
    with pytest.raises(PlannerError) as caught:
        await ask(llm, timeout_seconds=0.3)
    assert str(caught.value) == "The planner did not answer within 0.3 s."
    assert time.monotonic() - started < 5


async def test_timeout_covers_the_fallback_request_too(llm: FakeLLM) -> None:
    llm.script(unsupported_response_format(), hang(30))
    started = time.monotonic()
    with pytest.raises(PlannerError, match=r"did not answer within 0\.5 s"):
        await ask(llm, timeout_seconds=0.5)
    assert time.monotonic() - started < 5


async def test_unreachable_endpoint_is_a_planner_error() -> None:
    async with FakeLLM() as fake:
        url = fake.base_url
    settings = LLMSettings(base_url=url, api_key=API_KEY, model=MODEL, timeout_seconds=5)
    async with aiohttp.ClientSession() as session:
        with pytest.raises(PlannerError) as caught:
            await OpenAIPlanner(settings, session).plan(REQUEST, CONTEXT)
    assert str(caught.value).startswith("Could not reach the planner at 127.0.0.1:")
    assert API_KEY not in str(caught.value)


# --- what is sent ------------------------------------------------------------------------------------------


async def test_system_prompt_carries_schema_environment_and_policy(llm: FakeLLM) -> None:
    llm.script(structured(PLAN))
    await ask(llm)
    system = system_text(llm)
    assert json.dumps(plan_json_schema(), separators=(",", ":")) in system
    assert "environment: staging" in system
    assert "region: eu-west-1" in system
    assert "ec2:Describe*, ec2:StopInstances, ec2:StartInstances" in system
    assert "denied: ec2:TerminateInstances" in system
    assert "at most 7 commands" in system
    assert "Requested by: alice" in system
    assert "--profile" in system and "--region" in system and "--endpoint-url" in system
    assert "ask a question" in system
    # The profile selects local credentials; the model has no use for its name.
    assert "staging-operator-profile" not in llm.requests[0].raw_body


async def test_request_follows_the_protocol_with_bearer_auth(llm: FakeLLM) -> None:
    llm.script(structured(PLAN))
    await ask(llm)
    request = llm.requests[0]
    assert request.method == "POST"
    assert request.path == "/v1/chat/completions"
    assert request.headers["Authorization"] == f"Bearer {API_KEY}"
    assert request.body["model"] == MODEL
    assert [m["role"] for m in request.body["messages"]] == ["system", "user"]
    assert request.body["messages"][1]["content"] == "alice: stop the staging web servers"


async def test_wrong_api_key_error_never_repeats_the_key() -> None:
    async with FakeLLM(api_key="sk-the-right-one", model=MODEL) as strict:
        with pytest.raises(PlannerError) as caught:
            await ask(strict)
    assert str(caught.value) == "The planner refused the credentials (HTTP 401); check CLOUDOPS_LLM_API_KEY."


# The second key has no well-known shape, so only the planner's own scrubbing can catch it.
@pytest.mark.parametrize("key", [API_KEY, "gateway-7f3a9c2e41d8b605"])
async def test_endpoint_echoing_the_key_in_an_error_is_scrubbed(key: str) -> None:
    async with FakeLLM(api_key=key, model=MODEL) as fake:
        fake.script(error(400, f"Organization for key {key} has no access to model {MODEL}"))
        with pytest.raises(PlannerError) as caught:
            await ask(fake, api_key=key)
    assert key not in str(caught.value)
    assert "has no access to model" in str(caught.value)


def test_api_key_is_not_shown_by_the_settings() -> None:
    settings = LLMSettings(base_url="https://api.example.com/v1/", api_key=API_KEY, model=MODEL)
    assert API_KEY not in repr(settings)
    assert API_KEY not in str(settings.model_dump())
    assert settings.base_url == "https://api.example.com/v1"


async def test_secrets_in_the_conversation_never_reach_the_endpoint(llm: FakeLLM) -> None:
    conversation = [
        ConversationMessage(role="user", author="alice", text="stop the staging web servers"),
        ConversationMessage(role="user", author="bob", text=f"use aws_secret_access_key = {AWS_SECRET} if you need it"),
        ConversationMessage(role="user", author="carol", text=f"our bot token is {SLACK_TOKEN}"),
    ]
    llm.script(structured(PLAN))
    await ask(llm, conversation)
    body = llm.requests[0].raw_body
    assert AWS_SECRET not in body
    assert SLACK_TOKEN not in body
    assert "stop the staging web servers" in body


async def test_command_output_is_reduced_to_a_marker_and_its_first_line(llm: FakeLLM) -> None:
    output = "Plan 3f2a finished: 1 succeeded, 1 failed\ni-0abc1234 running 10.0.3.17 internal-db-host\n"
    conversation = [
        *REQUEST,
        ConversationMessage(role="assistant", text=output, kind="output"),
        ConversationMessage(role="user", author="alice", text="retry the failed one"),
    ]
    llm.script(structured(PLAN))
    await ask(llm, conversation)
    messages = llm.requests[0].body["messages"]
    assert messages[2] == {
        "role": "assistant",
        "content": f"{OUTPUT_MARKER} Plan 3f2a finished: 1 succeeded, 1 failed",
    }
    assert "internal-db-host" not in llm.requests[0].raw_body


async def test_long_conversations_are_trimmed_keeping_the_first_request(llm: FakeLLM) -> None:
    conversation = [ConversationMessage(role="user", author="alice", text="FIRST REQUEST: stop staging web")]
    for n in range(120):
        role = "assistant" if n % 2 else "user"
        conversation.append(ConversationMessage(role=role, author="bob", text=f"message {n:03d} " + "x" * 900))
    llm.script(structured(PLAN))
    await ask(llm, conversation)
    messages = llm.requests[0].body["messages"][1:]
    assert len(messages) <= 30
    assert sum(len(m["content"]) for m in messages) <= 24_000
    assert messages[0]["content"] == "alice: FIRST REQUEST: stop staging web"
    assert messages[-1]["content"].startswith("message 119 ")
    numbers = [int(m["content"].removeprefix("bob: ").split()[1]) for m in messages[1:]]
    assert numbers == list(range(numbers[0], 120))
    assert f"{120 - len(numbers)} earlier message(s) of this thread were left out" in system_text(llm)


def test_trimming_drops_the_oldest_messages_first() -> None:
    conversation = [ConversationMessage(role="user", text=f"m{n}") for n in range(10)]
    messages, omitted = prepare_conversation(conversation, max_messages=4, max_chars=1000)
    assert [m["content"] for m in messages] == ["m0", "m7", "m8", "m9"]
    assert omitted == 6


def test_trimming_respects_the_character_budget() -> None:
    conversation = [ConversationMessage(role="user", text="a" * 300)] + [
        ConversationMessage(role="assistant", text=str(n) * 300) for n in range(1, 6)
    ]
    messages, omitted = prepare_conversation(conversation, max_messages=30, max_chars=1000)
    assert [m["content"][0] for m in messages] == ["a", "4", "5"]
    assert omitted == 3


def test_a_huge_single_message_is_clipped() -> None:
    messages, _ = prepare_conversation([ConversationMessage(role="user", text="y" * 100_000)], max_chars=24_000)
    assert len(messages[0]["content"]) <= 8000


# --- settings and construction -------------------------------------------------------------------------------


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOUDOPS_LLM_BASE_URL", "https://llm.internal/v1")
    monkeypatch.setenv("CLOUDOPS_LLM_API_KEY", "k")
    monkeypatch.setenv("CLOUDOPS_LLM_MODEL", "m")
    monkeypatch.setenv("CLOUDOPS_LLM_TIMEOUT_SECONDS", "12.5")
    settings = LLMSettings()
    assert settings.configured
    assert settings.base_url == "https://llm.internal/v1"
    assert settings.api_key is not None and settings.api_key.get_secret_value() == "k"
    assert settings.timeout_seconds == 12.5


def test_settings_without_url_or_model_are_not_configured() -> None:
    assert LLMSettings().timeout_seconds == 60
    assert not LLMSettings().configured
    assert not LLMSettings(base_url="https://x.io/v1").configured
    assert not LLMSettings(model="m").configured
    with pytest.raises(ConfigError, match="CLOUDOPS_LLM_BASE_URL"):
        OpenAIPlanner(LLMSettings(model="m"))


def test_base_url_must_be_http() -> None:
    with pytest.raises(ValueError, match="http"):
        LLMSettings(base_url="ftp://x.io", model="m")


async def test_planner_without_a_session_opens_and_closes_its_own(llm: FakeLLM) -> None:
    llm.script(structured(plan=None, reply="Which ones?"))
    async with OpenAIPlanner(settings_for(llm)) as planner:
        assert isinstance(planner, Planner)
        assert (await planner.plan(REQUEST, CONTEXT)).reply == "Which ones?"
        session = planner._session
    assert session is not None and session.closed


async def test_empty_conversation_is_refused_before_any_request(llm: FakeLLM) -> None:
    with pytest.raises(PlannerError, match="conversation is empty"):
        await ask(llm, [ConversationMessage(role="user", text="   ")])
    assert llm.requests == []


def test_context_is_built_from_policy_and_channel() -> None:
    policy = Policy(allow=["s3:*"], deny=["s3:DeleteBucket"], max_commands=5)
    context = PlanningContext.from_policy(
        policy, ChannelPolicy(environment="prod", region="us-east-1", aws_profile="p"), requester="U1"
    )
    assert context == PlanningContext(
        environment="prod",
        region="us-east-1",
        aws_profile="p",
        allow=["s3:*"],
        deny=["s3:DeleteBucket"],
        max_commands=5,
        requester="U1",
    )


def test_an_answer_needs_a_plan_or_a_reply() -> None:
    with pytest.raises(ValueError):
        PlannerAnswer()
