"""Stand-ins for batch engines: answer an OpenAI batch input file (what OpenAI's Batch API or ``vllm run-batch`` do)
by sending each request's body to a local stand-in server, and a local stand-in of the OpenAI files and batches
endpoints for ``vlmpipe batch submit``."""

from __future__ import annotations

import email.parser
import email.policy
import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx


def answer_line(i: int, custom_id: str, status: int, body: Any) -> dict[str, Any]:
    """One line of OpenAI's batch output format."""
    return {"id": f"batch_req_{i}", "custom_id": custom_id,
            "response": {"status_code": status, "request_id": f"req_{i}", "body": body}, "error": None}


def answer_file(requests: Path, results: Path, base_url: str,
                override: Callable[[dict[str, Any]], dict[str, Any] | None] | None = None) -> int:
    """Send every request of ``requests`` to ``base_url`` (its ``url`` path, its body as is) and write the answers
    in OpenAI's batch output format; ``override(line)`` may return a results line of its own (an error...)."""
    lines = [json.loads(x) for x in requests.read_text(encoding="utf-8").splitlines() if x.strip()]
    out = []
    with httpx.Client(timeout=30) as client:
        for i, line in enumerate(lines):
            own = override(line) if override else None
            if own is not None:
                out.append(own)
                continue
            url = base_url.rstrip("/").removesuffix("/v1") + line["url"]
            resp = client.post(url, json=line["body"])
            out.append(answer_line(i, line["custom_id"], resp.status_code, resp.json()))
    results.write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in out), encoding="utf-8")
    return len(out)


class BatchAPI:
    """A local stand-in of OpenAI's ``/v1/files`` and ``/v1/batches``: an uploaded batch goes ``validating`` →
    ``in_progress`` → ``completed`` over successive retrieves (counted, not timed); on completion each request's body
    is answered by ``answer(body) -> chat.completion body``."""

    def __init__(self, answer: Callable[[dict[str, Any]], dict[str, Any]], *, polls_to_complete: int = 2) -> None:
        self.answer = answer
        self.polls_to_complete = polls_to_complete
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, payload: Any, raw: bytes | None = None) -> None:
                data = raw if raw is not None else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/octet-stream" if raw is not None else "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with api.lock:
                    api.calls.append(("POST", self.path))
                    if self.path == "/v1/files":
                        self._send(200, api._upload(self.headers.get("Content-Type", ""), body))
                    elif self.path == "/v1/batches":
                        self._send(200, api._create(json.loads(body)))
                    else:
                        self._send(404, {"error": {"message": f"no {self.path}"}})

            def do_GET(self) -> None:
                with api.lock:
                    api.calls.append(("GET", self.path))
                    parts = self.path.strip("/").split("/")
                    if parts[:2] == ["v1", "batches"] and len(parts) == 3:
                        self._send(200, api._retrieve(parts[2]))
                    elif parts[:2] == ["v1", "files"] and len(parts) == 4 and parts[3] == "content":
                        self._send(200, None, api.files[parts[2]])
                    else:
                        self._send(404, {"error": {"message": f"no {self.path}"}})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self) -> BatchAPI:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def count(self, method: str, path: str) -> int:
        return sum(1 for m, p in self.calls if m == method and p == path)

    def _upload(self, content_type: str, body: bytes) -> dict[str, Any]:
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            f"Content-Type: {content_type}\r\n\r\n".encode() + body)
        fields = {part.get_param("name", header="content-disposition"): part for part in message.iter_parts()}
        assert fields["purpose"].get_content().strip() == "batch"
        data = fields["file"].get_payload(decode=True)
        file_id = f"file-{len(self.files) + 1}"
        self.files[file_id] = data
        return {"id": file_id, "object": "file", "bytes": len(data), "created_at": int(time.time()),
                "filename": fields["file"].get_filename() or "input.jsonl", "purpose": "batch", "status": "processed"}

    def _create(self, params: dict[str, Any]) -> dict[str, Any]:
        assert params["endpoint"] == "/v1/chat/completions" and params["completion_window"] == "24h"
        lines = [json.loads(x) for x in self.files[params["input_file_id"]].decode().splitlines() if x.strip()]
        batch_id = f"batch_{len(self.batches) + 1}"
        self.batches[batch_id] = {"id": batch_id, "object": "batch", "endpoint": params["endpoint"],
                                  "input_file_id": params["input_file_id"], "completion_window": "24h",
                                  "status": "validating", "created_at": int(time.time()),
                                  "metadata": params.get("metadata"),
                                  "request_counts": {"total": len(lines), "completed": 0, "failed": 0},
                                  "_lines": lines, "_polls": 0}
        return self._public(batch_id)

    def _retrieve(self, batch_id: str) -> dict[str, Any]:
        batch = self.batches[batch_id]
        batch["_polls"] += 1
        total = batch["request_counts"]["total"]
        if batch["_polls"] >= self.polls_to_complete and batch["status"] != "completed":
            out = [json.dumps({"id": f"batch_req_{i}", "custom_id": line["custom_id"],
                               "response": {"status_code": 200, "request_id": f"req_{i}",
                                            "body": self.answer(line["body"])}, "error": None})
                   for i, line in enumerate(batch["_lines"])]
            file_id = f"file-{len(self.files) + 1}"
            self.files[file_id] = ("\n".join(out) + "\n").encode()
            batch.update(status="completed", output_file_id=file_id,
                         request_counts={"total": total, "completed": total, "failed": 0})
        elif batch["status"] == "validating":
            batch.update(status="in_progress", request_counts={"total": total, "completed": total // 2, "failed": 0})
        return self._public(batch_id)

    def _public(self, batch_id: str) -> dict[str, Any]:
        return {k: v for k, v in self.batches[batch_id].items() if not k.startswith("_")}
