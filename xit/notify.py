"""The sweep's exit notification (the chart's `notify` onExit template): one JSON POST to a webhook.

The body is Slack-compatible (``text``: one line for the sweep, one per failed node) and carries the
same facts as fields for other receivers (``workflow``, ``namespace``, ``status``, ``failures``).
Argo fills the arguments: ``{{workflow.name}}``, ``{{workflow.status}}`` and ``{{workflow.failures}}``,
a JSON list of the failed nodes (displayName, message, templateName, phase, podName, finishedAt).
The webhook URL is a secret (a Slack webhook URL lets anyone post), so it comes from the environment
(``XIT_WEBHOOK_URL``, from a Kubernetes Secret), never from an argument.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from typing import Any

from xit.errors import WorkError, XitError

ENV_URL = "XIT_WEBHOOK_URL"
TIMEOUT_S = 10.0
MAX_FAILURES_LISTED = 10


def message(workflow: str, namespace: str, status: str, failures: list[dict[str, Any]]) -> dict[str, Any]:
    """The webhook body for a finished sweep."""
    lines = [f"xit sweep {workflow} in {namespace}: {status}"]
    for f in failures[:MAX_FAILURES_LISTED]:
        lines.append(f"• {f.get('displayName', '?')} ({f.get('templateName', '?')}): {f.get('message', '')}".rstrip())
    if len(failures) > MAX_FAILURES_LISTED:
        lines.append(f"… and {len(failures) - MAX_FAILURES_LISTED} more (xit status {workflow} -n {namespace})")
    return {"text": "\n".join(lines), "workflow": workflow, "namespace": namespace, "status": status,
            "failures": failures}


def parse_failures(text: str) -> list[dict[str, Any]]:
    """Argo's ``{{workflow.failures}}``: a JSON list, or empty/``null`` when nothing failed."""
    if not text.strip() or text.strip() == "null":
        return []
    try:
        value = json.loads(text)
    except ValueError:
        raise XitError(f"--failures: not JSON (expected Argo's workflow.failures list): {text[:80]!r}") from None
    if not isinstance(value, list) or not all(isinstance(f, dict) for f in value):
        raise XitError("--failures: expected a JSON list of objects (Argo's workflow.failures)")
    return value


def send(workflow: str, namespace: str, status: str, failures_text: str, url: str | None = None) -> dict[str, Any]:
    """POST the notification; bad input raises XitError (exit 2), a receiver that fails WorkError (exit 1)."""
    url = url or os.environ.get(ENV_URL) or ""
    if not url.startswith(("http://", "https://")):
        raise XitError(f"${ENV_URL}: expected the webhook's http(s) URL (from the chart's notify Secret)")
    body = message(workflow, namespace, status, parse_failures(failures_text))
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT_S) as resp:  # noqa: S310 - http(s) checked above
            resp.read()
    except urllib.error.HTTPError as e:
        raise WorkError(f"webhook answered HTTP {e.code} to the notification of {workflow}") from None
    except (urllib.error.URLError, OSError) as e:
        raise WorkError(f"webhook unreachable for the notification of {workflow}: {getattr(e, 'reason', e)}") from None
    return body
