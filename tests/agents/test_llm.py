"""The LLM policy against a real HTTP server on 127.0.0.1 that returns scripted tool calls."""

import json

import pytest

from liwi.agents import build_agent
from liwi.sample_photos import procedural_scene
from liwi.testing.chat_server import ChatServer, assistant_reply


def call(cid, name, **arguments):
    return {
        "id": cid,
        "type": "function",
        "function": {"name": name, "arguments": json.dumps(arguments)},
    }


SCRIPT = [
    [call("c1", "segment", max_candidates=2)],
    [
        call("c2", "select_objects", candidates=[0]),
        call("c3", "refine_alpha", candidate=0, band_px=4),
    ],
    [call("c4", "inpaint", method="ns"), call("c5", "extract_shadow", candidate=0)],
    [call("c6", "curate")],
    [call("c7", "finish")],
]


class ScriptedChat(ChatServer):
    """A chat-completions server replaying ``script``, one list of tool calls per request."""

    def __init__(self, script):
        self.script = list(script)
        super().__init__(
            lambda body: (
                200,
                assistant_reply(tool_calls=self.script.pop(0) if self.script else []),
            )
        )


@pytest.fixture(scope="module")
def photo():
    return procedural_scene(2, 128, 1).composite()


def test_llm_policy_sends_tool_schemas_and_runs_the_chosen_tools(photo, monkeypatch):
    monkeypatch.setenv("LIWI_TEST_LLM_KEY", "sk-test-123")
    with ScriptedChat(SCRIPT) as chat:
        config = {
            "policy": "llm",
            "llm": {
                "endpoint": chat.url,
                "model": "scripted",
                "api_key_env": "LIWI_TEST_LLM_KEY",
                "send_image": True,
            },
        }
        result = build_agent(config).run(photo, sample_id="p2")
    assert len(chat.requests) == 5
    first = chat.requests[0]
    assert first.path == "/v1/chat/completions"
    assert first.headers["Authorization"] == "Bearer sk-test-123"
    body = first.body
    assert body["model"] == "scripted" and body["tool_choice"] == "auto"
    tools = {t["function"]["name"]: t["function"] for t in body["tools"]}
    assert set(tools) == {
        "segment",
        "refine_alpha",
        "inpaint",
        "extract_shadow",
        "select_objects",
        "curate",
        "finish",
    }
    # the tools' own parameter schemas travel, plus the agent's arguments
    assert "band_px" in tools["refine_alpha"]["parameters"]["properties"]
    assert "candidate" in tools["refine_alpha"]["parameters"]["required"]
    assert "method" in tools["inpaint"]["parameters"]["properties"]
    assert "darkness" in tools["extract_shadow"]["parameters"]["properties"]
    assert body["messages"][0]["role"] == "system"
    user = body["messages"][1]["content"]  # the task as text plus the photo for a VLM
    assert json.loads(user[0]["text"])["image"] == {"width": 128, "height": 128, "sample_id": "p2"}
    assert user[1]["image_url"]["url"].startswith("data:image/png;base64,")
    # observations go back as tool messages with the matching ids
    second = chat.requests[1].body["messages"]
    assert second[-2]["role"] == "assistant" and second[-1]["role"] == "tool"
    assert second[-1]["tool_call_id"] == "c1"
    assert "candidates" in json.loads(second[-1]["content"])
    verdict_msg = chat.requests[4].body["messages"][-1]
    assert verdict_msg["tool_call_id"] == "c6" and "passed" in json.loads(verdict_msg["content"])
    # the loop executed exactly the chosen tools with the chosen parameters
    assert [e["tool"] for e in result.trace] == [
        "segment",
        "select_objects",
        "refine_alpha",
        "inpaint",
        "extract_shadow",
        "curate",
        "finish",
    ]
    assert all(e["outcome"] == "ok" for e in result.trace)
    assert result.trace[0]["params"] == {"max_candidates": 2}
    assert result.trace[2]["args"] == {"candidate": 0} and result.trace[2]["params"] == {
        "band_px": 4
    }
    assert result.trace[3]["params"] == {"method": "ns"}
    assert result.stack is not None and result.stack.n_layers == 2
    assert result.verdict.passed, result.reasons
    assert "sk-test-123" not in json.dumps(result.trace)


def test_bad_tool_calls_are_observations_and_a_dead_endpoint_ends_cleanly(photo):
    script = [[call("a", "refine_alpha", candidate=3)], [call("b", "teleport")], []]
    with ScriptedChat(script) as chat:
        result = build_agent({"policy": "llm", "llm": {"endpoint": chat.url}}).run(photo)
        errors = [
            json.loads(m["content"])
            for m in chat.requests[2].body["messages"]
            if m["role"] == "tool"
        ]
    assert [e["outcome"] for e in result.trace] == ["error", "error"]
    assert "not selected" in errors[0]["error"] and "unknown tool" in errors[1]["error"]
    assert result.stack is None
    dead = build_agent(
        {"policy": "llm", "llm": {"endpoint": "http://127.0.0.1:9/v1", "timeout_s": 2}}
    ).run(photo)
    assert dead.stack is None and "cannot reach" in dead.reasons[0]
