"""What every vlmpipe HTML page shares: the autoescaping Jinja2 environment and the Content-Security-Policy.

Pages are self-contained files: the policy forbids every remote load (``default-src 'none'``), allows only inline
styles and ``data:`` images, and allows a page's one inline script by its SHA-256 hash (or no script at all), so even
text that escaped escaping could not run. The shared stylesheet is ``templates/_base.css``, included by each template.
"""

from __future__ import annotations

import base64
import hashlib

from jinja2 import Environment, PackageLoader


def environment() -> Environment:
    """Templates from ``vlmpipe/templates``, every value HTML-escaped."""
    return Environment(loader=PackageLoader("vlmpipe", "templates"), autoescape=True)


def content_security_policy(script: str | None = None) -> str:
    """The policy for a page whose only script is ``script`` (``None``: a page without scripts)."""
    if script is None:
        scripts = "'none'"
    else:
        scripts = "'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"
    return (f"default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src {scripts}; "
            "base-uri 'none'; form-action 'none'")
