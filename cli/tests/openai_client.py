"""Drives the Agora gateway with the official `openai` client: models, chat (plain and
streamed) and completions. Prints what it saw as JSON for the Rust test to check."""
import json
import os
import sys

import openai

client = openai.OpenAI(base_url=sys.argv[1], api_key=os.environ.get("AGORA_GATEWAY_API_KEY", "not-needed"), max_retries=0, timeout=600)
model = sys.argv[2]
question = [{"role": "user", "content": "What is the capital of France?"}]
out = {"openai_version": openai.__version__, "models": [m.id for m in client.models.list().data]}

raw = client.chat.completions.with_raw_response.create(model=model, messages=question, max_tokens=16)
chat = raw.parse()
out["chat"] = chat.choices[0].message.content
out["chat_finish"] = chat.choices[0].finish_reason
out["chat_request"] = raw.headers.get("x-agora-request-id")
out["chat_output_hash"] = raw.headers.get("x-agora-output-hash")
out["chat_usage"] = [chat.usage.prompt_tokens, chat.usage.completion_tokens]

parts, chunks = [], 0
with client.chat.completions.with_streaming_response.create(model=model, messages=question, max_tokens=16, stream=True) as response:
    out["stream_request"] = response.headers.get("x-agora-request-id")
    for chunk in response.parse():
        chunks += 1
        if chunk.choices and chunk.choices[0].delta.content:
            parts.append(chunk.choices[0].delta.content)
out["stream"] = "".join(parts)
out["stream_chunks"] = chunks

completion = client.completions.create(model=model, prompt="The capital of France is", max_tokens=8)
out["completion"] = completion.choices[0].text

try:
    client.chat.completions.create(model="no-such-model", messages=question, max_tokens=4)
    out["unknown_model"] = "accepted"
except openai.NotFoundError as e:
    out["unknown_model"] = str(e)

print(json.dumps(out))
