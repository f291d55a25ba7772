"""Independent clients for the LLM API peer: the official `anthropic` and `openai` SDKs.

Usage: sdk_check.py BASE_PORT API_KEY ANTHROPIC_BODY.json OPENAI_BODY.json
Each body is the request osiris built; it is sent through the SDK with the same parameters, so
the peer's log shows what the SDK itself puts on the wire. Prints one JSON object of results.
"""

import json
import sys

import anthropic
import openai

port, key, anthropic_body, openai_body = sys.argv[1:5]
results = {"versions": {"anthropic": anthropic.__version__, "openai": openai.__version__}}

a = anthropic.Anthropic(base_url=f"http://127.0.0.1:{port}", api_key=key, max_retries=0, timeout=10)
o = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=key, max_retries=0, timeout=10)


def record(name, fn):
    try:
        results[name] = fn()
    except Exception as err:  # the error class is what the test checks
        results[name] = {"error": type(err).__name__, "status": getattr(err, "status_code", None)}


def anthropic_plan():
    body = json.load(open(anthropic_body))
    message = a.messages.create(**body)
    tool = [b for b in message.content if b.type == "tool_use"]
    return {
        "stop_reason": message.stop_reason,
        "tool": tool[0].name,
        "input": tool[0].input,
        "input_tokens": message.usage.input_tokens,
        "output_tokens": message.usage.output_tokens,
    }


def openai_plan():
    body = json.load(open(openai_body))
    completion = o.chat.completions.create(**body)
    call = completion.choices[0].message.tool_calls[0]
    return {
        "finish_reason": completion.choices[0].finish_reason,
        "tool": call.function.name,
        "input": json.loads(call.function.arguments),
        "prompt_tokens": completion.usage.prompt_tokens,
        "completion_tokens": completion.usage.completion_tokens,
    }


def anthropic_simple():
    return a.messages.create(model="m", max_tokens=16, messages=[{"role": "user", "content": "hi"}]).stop_reason


def openai_simple():
    return o.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}]).choices[0].finish_reason


def script(steps):
    import urllib.request

    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/_script", data=json.dumps({"steps": steps}).encode(), method="POST"
    )
    urllib.request.urlopen(req).read()


record("anthropic_plan", anthropic_plan)
record("openai_plan", openai_plan)
script(["rate_limit"])
record("anthropic_429", anthropic_simple)
script(["rate_limit"])
record("openai_429", openai_simple)
script(["overloaded"])
record("anthropic_529", anthropic_simple)
script(["prose"])
record("anthropic_prose", anthropic_simple)
script(["truncated"])
record("openai_truncated", openai_simple)
wrong_a = anthropic.Anthropic(base_url=f"http://127.0.0.1:{port}", api_key="wrong", max_retries=0)
record("anthropic_bad_key", lambda: wrong_a.messages.create(model="m", max_tokens=16, messages=[{"role": "user", "content": "hi"}]).id)
wrong_o = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="wrong", max_retries=0)
record("openai_bad_key", lambda: wrong_o.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}]).id)
# The SDK's own retry honours the peer's retry-after and then succeeds.
retrying = anthropic.Anthropic(base_url=f"http://127.0.0.1:{port}", api_key=key, max_retries=2, timeout=10)
script(["overloaded", "plan"])
record("anthropic_retried", lambda: retrying.messages.create(model="m", max_tokens=16, messages=[{"role": "user", "content": "hi"}]).stop_reason)
print(json.dumps(results))
