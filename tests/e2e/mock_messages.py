"""mock_messages.py - a stand-in for Anthropic's Messages API, enough for
Claude Code's agent loop: POST /v1/messages answers in SSE (or JSON when the
request does not stream). A request whose last user turn asks for a file
("write the file PATH containing TEXT") and carries no tool_result yet gets a
tool_use turn of the Write tool (TEXT on ~96 KiB of lines); the turn after the tool's result gets a final
text answer. Anything else (titles, summaries) gets a short text. Every
request is recorded: path, size, whether tools were offered."""
import json
import os
import re
import secrets
import threading

import pytest

from conftest import QuietHandler, make_ca, serve_http

WRITE = re.compile(r"write the file (\S+) containing (\S+)")


def last_user_text(messages):
    for m in reversed(messages):
        if m.get("role") != "user":
            continue
        content = m.get("content")
        if isinstance(content, str):
            return content, False
        texts, result = [], False
        for block in content or []:
            if block.get("type") == "text":
                texts.append(block.get("text", ""))
            elif block.get("type") == "tool_result":
                result = True
        return "\n".join(texts), result
    return "", False


def plan(body):
    """The content blocks and stop reason of the reply to one request."""
    tools = {t.get("name") for t in body.get("tools") or []}
    text, after_tool = last_user_text(body.get("messages") or [])
    m = WRITE.search(json.dumps(body.get("messages") or []))
    if "Write" in tools and after_tool and m:
        return [{"type": "text", "text": f"Wrote {m.group(1)}. WARREN-AGENT-DONE"}], "end_turn"
    m = WRITE.search(text)
    if "Write" in tools and m:
        # ~96 KiB of content: the next request carries it back, so the agent's
        # second call is well over 64 KiB, as real ones are
        line = m.group(2) + "\n"
        args = {"file_path": m.group(1), "content": line * (98304 // len(line) + 1)}
        return [{"type": "tool_use", "id": "toolu_warren_1", "name": "Write",
                 "input": args}], "tool_use"
    return [{"type": "text", "text": "ok"}], "end_turn"


def sse_events(blocks, stop, model, usage_in):
    yield "message_start", {"type": "message_start", "message": {
        "id": "msg_warren", "type": "message", "role": "assistant", "model": model,
        "content": [], "stop_reason": None, "stop_sequence": None,
        "usage": {"input_tokens": usage_in, "output_tokens": 1}}}
    for i, b in enumerate(blocks):
        if b["type"] == "text":
            yield "content_block_start", {"type": "content_block_start", "index": i,
                                          "content_block": {"type": "text", "text": ""}}
            for part in re.findall(r".{1,8}", b["text"], re.S):
                yield "content_block_delta", {"type": "content_block_delta", "index": i,
                                              "delta": {"type": "text_delta", "text": part}}
        else:
            yield "content_block_start", {"type": "content_block_start", "index": i,
                                          "content_block": dict(b, input={})}
            raw = json.dumps(b["input"])
            for k in range(0, len(raw), 16):
                yield "content_block_delta", {"type": "content_block_delta", "index": i,
                                              "delta": {"type": "input_json_delta",
                                                        "partial_json": raw[k:k + 16]}}
        yield "content_block_stop", {"type": "content_block_stop", "index": i}
    yield "message_delta", {"type": "message_delta",
                            "delta": {"stop_reason": stop, "stop_sequence": None},
                            "usage": {"output_tokens": 12}}
    yield "message_stop", {"type": "message_stop"}


class Handler(QuietHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(n)
        path = self.path.split("?")[0]
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = {}
        rec = {"path": path, "bytes": len(raw), "tools": len(body.get("tools") or []),
               "stream": bool(body.get("stream")), "headers": dict(self.headers)}
        self.server.requests.append(rec)
        if path.endswith("/count_tokens"):
            return self.reply_json({"input_tokens": max(1, len(raw) // 4)})
        if not path.endswith("/v1/messages"):
            return self.reply_json({"type": "error", "error": {"type": "not_found_error",
                                                               "message": path}}, 404)
        blocks, stop = plan(body)
        rec["reply"] = blocks[0]["type"]
        model = body.get("model", "claude-mock")
        if not body.get("stream"):
            return self.reply_json({"id": "msg_warren", "type": "message", "role": "assistant",
                                    "model": model, "content": blocks, "stop_reason": stop,
                                    "stop_sequence": None,
                                    "usage": {"input_tokens": len(raw) // 4,
                                              "output_tokens": 12}})
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for i, (name, data) in enumerate(sse_events(blocks, stop, model, len(raw) // 4)):
            chunk = f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.flush()
            if i == 0 and b"WARREN-HOLD" in raw:
                # the test checks the first event arrived before the rest exists
                self.server.hold.wait(30)
        self.wfile.write(b"0\r\n\r\n")

    def do_GET(self):
        self.server.requests.append({"path": self.path, "bytes": 0, "tools": 0})
        self.reply_json({"ok": True})

    do_HEAD = do_GET

    def reply_json(self, obj, status=200):
        self.reply(json.dumps(obj).encode(), "application/json", status)


def serve(host="127.0.0.1", port=0, tls_ctx=None):
    return serve_http(Handler, host, port, tls_ctx, requests=[], hold=threading.Event())


def serve_tls(base, host):
    """The mock on host over TLS, its certificate from a throw-away CA in
    base; (CA path, server). Skips when host cannot be listened on."""
    ca, ctx = make_ca(base, host)
    try:
        return ca, serve(host, 0, ctx)
    except OSError as e:
        pytest.skip(f"cannot listen on {host}: {e}")


def operator_key(path):
    """A fresh API key written as an operator would: root-only (0600)."""
    key = "sk-ant-REAL-" + secrets.token_hex(16)
    with open(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
        f.write(key + "\n")
    return key
