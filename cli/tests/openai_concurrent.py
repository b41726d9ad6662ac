"""Sends N chat completions at once through the Agora gateway with the official `openai`
client, each streamed, and prints what each saw (its request id, answer, pieces, seconds to the
first piece and to the end) and the whole batch's wall time, as JSON for the Rust test."""
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import openai

base, model, calls = sys.argv[1], sys.argv[2], int(sys.argv[3])
client = openai.OpenAI(base_url=base, api_key=os.environ.get("AGORA_GATEWAY_API_KEY", "not-needed"), max_retries=0, timeout=600)
question = [{"role": "user", "content": "What is the capital of France?"}]


def call(_):
    started = time.monotonic()
    first, parts = None, []
    try:
        with client.chat.completions.with_streaming_response.create(model=model, messages=question, max_tokens=16, stream=True) as response:
            ticket = response.headers.get("x-agora-ticket-id")
            request = response.headers.get("x-agora-request-id") or (ticket and "ticket-" + ticket)
            for chunk in response.parse():
                if chunk.choices and chunk.choices[0].delta.content:
                    first = first if first is not None else time.monotonic() - started
                    parts.append(chunk.choices[0].delta.content)
        return {"request": request, "text": "".join(parts), "pieces": len(parts), "first_piece_s": first, "total_s": time.monotonic() - started}
    except openai.APIError as e:
        return {"error": str(e), "total_s": time.monotonic() - started}


started = time.monotonic()
with ThreadPoolExecutor(max_workers=calls) as pool:
    results = list(pool.map(call, range(calls)))
print(json.dumps({"calls": results, "wall_s": time.monotonic() - started}))
