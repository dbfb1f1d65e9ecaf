"""Schemathesis hooks for the gateway's API contract check (ops/ci/schemathesis.sh).

A credit-list upload is `application/x-ndjson` (one JSON entry per line), a media type
schemathesis has no serializer for: generated bodies are sent as their text, as the line-based
format is text.
"""

import json

import schemathesis


@schemathesis.serializer("application/x-ndjson")
def ndjson(ctx, value):
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    return (json.dumps(value, ensure_ascii=False) + "\n").encode("utf-8")
