"""One scrubber of tokens and credentials for every message that quotes user input or a
server's reply.

Anything that may echo a secret passes through `scrub` before it is shown, logged or
written: error messages that quote a configuration value (a token pasted into
``hub_repo_id`` or into a dataset URL), replies of the Hub or of Label Studio (a server
that echoes the ``Authorization`` header), command lines stored in a run directory, and
tracebacks printed by ``--debug``.

What is replaced by ``***`` (the shape of the text around it is kept, so the message still
reads):

* the current values of known secret environment variables (`SECRET_ENV_VARS`, and
  any variable whose name ends in ``TOKEN``, ``API_KEY``, ``SECRET``, ``PASSWORD`` ...),
  the tokens stored by ``hf auth login``, and any extra secrets passed in; also their
  URL-encoded forms;
* Hugging Face tokens (``hf_...``, ``api_org_...``), GitHub tokens, JWTs (Label Studio's
  personal access tokens are JWTs);
* ``Authorization:``/``Proxy-Authorization:`` header values, and ``Bearer ...``/
  ``Token ...`` credentials anywhere;
* the password (or the lone user name, which is then a token) of URL user-info
  (``https://user:secret@host``);
* query/form parameters and ``NAME=value`` assignments whose name ends in ``token``,
  ``key``, ``secret``, ``password``, ``signature`` ... (``?access_token=...``,
  ``api_key=...``);
* values of JSON/dict fields with such names (``"token": "..."``), and ``token: value``
  phrases whose value looks like a credential.

Over-redaction is preferred to a leak: a harmless value that looks like a credential is
hidden too.

>>> scrub("GET https://user:s3cret@hub.example/api?access_token=abc123&x=1")
'GET https://user:***@hub.example/api?access_token=***&x=1'
>>> scrub('{"detail": "bad", "headers": {"Authorization": "Token 0a1b2c3d4e5f60718293"}}')
'{"detail": "bad", "headers": {"Authorization": "Token ***"}}'
>>> scrub("repo id 'hf_AbCdEfGhIjKlMnOpQrStUvWxYz012345' is invalid")
"repo id 'hf_***' is invalid"
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable
from urllib.parse import quote

__all__ = ["SECRET_ENV_VARS", "error_text", "known_secrets", "scrub"]

MASK = "***"

#: Environment variables whose values are secrets, wherever they appear.
SECRET_ENV_VARS = (
    "HF_TOKEN",
    "HUGGING_FACE_HUB_TOKEN",
    "HUGGINGFACE_HUB_TOKEN",
    "HF_API_TOKEN",
    "HUGGINGFACEHUB_API_TOKEN",
    "LABEL_STUDIO_API_KEY",
    "LABEL_STUDIO_TOKEN",
    "LABEL_STUDIO_USER_TOKEN",
    "LABEL_STUDIO_PASSWORD",
    "WANDB_API_KEY",
    "COMET_API_KEY",
    "NEPTUNE_API_TOKEN",
    "MLFLOW_TRACKING_TOKEN",
    "MLFLOW_TRACKING_PASSWORD",
    "GITHUB_TOKEN",
    "GH_TOKEN",
    "OPENAI_API_KEY",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
)
# any other variable with such a name is treated as a secret too (values of 8+ characters)
_SECRET_ENV_NAME = re.compile(
    r"(TOKEN|API_?KEY|SECRET|SECRET_KEY|PASSWORD|PASSWD|ACCESS_KEY|PRIVATE_KEY|CREDENTIALS?)$", re.I
)
_MIN_SECRET = 4  # shorter "secrets" would blank ordinary words
_MIN_PATTERN_ENV_SECRET = 8

# names of parameters / fields that hold credentials: ..._token, api_key, secret, password
_NAME = (
    r"[A-Za-z0-9_.\-]*?(?:token|api[_\-]?key|apikey|access[_\-]?key|secret|secret[_\-]?key|"
    r"password|passwd|pwd|signature|credentials?|auth|authorization|session[_\-]?id|key)"
)

_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    # URL user-info: keep the user name when a password follows it, else hide the whole
    # user-info (a lone user name in a URL is usually a token: https://TOKEN@host)
    (
        re.compile(
            r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.\-]*://)(?P<user>[^/\s:@?#]+):(?P<pw>[^/\s@?#]+)@"
        ),
        r"\g<scheme>\g<user>:" + MASK + "@",
    ),
    (
        re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.\-]*://)(?P<user>[^/\s:@?#]+)@"),
        r"\g<scheme>" + MASK + "@",
    ),
    # Authorization headers, in HTTP, repr and JSON forms: keep the scheme word
    (
        re.compile(
            r"(?P<head>(?:proxy-)?authorization[\"']?\s*[:=]\s*[\"']?)"
            r"(?:(?P<scheme>bearer|token|basic|digest|jwt)\s+)?(?P<value>[^\s\"',;}\]]+)",
            re.I,
        ),
        lambda m: m.group("head") + (m.group("scheme") + " " if m.group("scheme") else "") + MASK,
    ),
    # JSON / Python-repr fields whose name is a credential: "token": "value"
    (
        re.compile(
            r"(?P<q>[\"'])(?P<name>" + _NAME + r")(?P=q)(?P<sep>\s*:\s*)(?P<vq>[\"'])"
            r"(?P<value>(?:\\.|(?!(?P=vq)).)+)(?P=vq)",
            re.I,
        ),
        lambda m: (
            m.group(0)
            if MASK in m.group("value")
            else f"{m.group('q')}{m.group('name')}{m.group('q')}{m.group('sep')}{m.group('vq')}{MASK}{m.group('vq')}"
        ),
    ),
    # query/form parameters and NAME=value assignments (--flag=value, env lines)
    (
        re.compile(
            r"(?P<head>(?:^|(?<=[\s?&;,(\[{\"'])|(?<=--))(?P<name>" + _NAME + r")=)"
            r"(?P<value>[^&\s#\"',;)\]}]+)",
            re.I,
        ),
        lambda m: m.group("head") + (m.group("value") if m.group("value") == MASK else MASK),
    ),
    # bearer credentials anywhere
    (
        re.compile(r"\b(?P<scheme>Bearer)\s+(?P<value>[A-Za-z0-9._~+/\-]{6,}=*)", re.I),
        r"\g<scheme> " + MASK,
    ),
    # "Token <credential>" and "token: <credential>" when the value looks like one
    (
        re.compile(
            r"\b(?P<head>(?:token|api[_ \-]?key|secret|password)(?:\s*[:=]\s*|\s+))"
            r"(?P<value>(?=[A-Za-z0-9._\-]*\d)[A-Za-z0-9._\-]{12,})",
            re.I,
        ),
        r"\g<head>" + MASK,
    ),
    # JSON Web Tokens (Label Studio personal access tokens, many OAuth tokens)
    (re.compile(r"\beyJ[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]*"), "eyJ" + MASK),
    # Hugging Face user and organisation tokens
    (re.compile(r"\bhf_[A-Za-z0-9]{10,}"), "hf_" + MASK),
    (re.compile(r"\bapi_org_[A-Za-z0-9]{10,}"), "api_org_" + MASK),
    # GitHub tokens
    (re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})"), MASK),
]


def known_secrets(extra: Iterable[str | None] = ()) -> list[str]:
    """The secrets to hide: ``extra``, known secret environment variables and the tokens
    stored by ``hf auth login``, longest first.

    >>> "s3cret-value" in known_secrets(["s3cret-value"])
    True
    """
    found: set[str] = set()
    for value in extra:
        if value and len(str(value)) >= _MIN_SECRET:
            found.add(str(value))
    for name, value in os.environ.items():
        if not value:
            continue
        if name in SECRET_ENV_VARS:
            if len(value) >= _MIN_SECRET:
                found.add(value)
        elif _SECRET_ENV_NAME.search(name) and len(value) >= _MIN_PATTERN_ENV_SECRET:
            found.add(value)
    found.update(_stored_hub_tokens())
    return sorted(found, key=len, reverse=True)


def _stored_hub_tokens() -> set[str]:
    """The token of ``hf auth login`` (and its other stored tokens), read from the file
    where ``huggingface_hub`` keeps them, without importing it."""
    out: set[str] = set()
    if "huggingface_hub" in sys.modules:
        try:
            from huggingface_hub import get_token

            out.add(get_token() or "")
        except Exception:  # noqa: BLE001 - scrubbing must never fail
            pass
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"),
        "huggingface",
    )
    token_file = os.environ.get("HF_TOKEN_PATH") or os.path.join(home, "token")
    for path in (token_file, os.path.join(os.path.dirname(token_file), "stored_tokens")):
        try:
            with open(path, encoding="utf-8") as fh:
                text = fh.read(1 << 16)
        except OSError:
            continue
        if path == token_file:
            out.add(text.strip())
        else:  # an INI file: "hf_token = <value>" per stored token
            out.update(
                line.split("=", 1)[1].strip()
                for line in text.splitlines()
                if "=" in line and "token" in line.split("=", 1)[0].lower()
            )
    return {t for t in out if len(t) >= _MIN_SECRET}


def scrub(text: object, secrets: Iterable[str | None] = ()) -> str:
    """``text`` (anything, as ``str``) with tokens and credentials replaced by ``***``.

    Args:
        text: the message, reply body, command line or traceback to show.
        secrets: extra secret values to hide (a token given as an argument), on top of
            the known secret environment variables.

    Returns:
        The scrubbed text. Idempotent: scrubbing twice gives the same text.

    >>> scrub("curl -H 'Authorization: Bearer abc.def.ghi' https://ls.local")
    "curl -H 'Authorization: Bearer ***' https://ls.local"
    """
    out = text if isinstance(text, str) else str(text)
    for secret in known_secrets(secrets):
        for form in {secret, quote(secret, safe=""), quote(secret, safe="/:")}:
            if form in out:
                out = out.replace(form, MASK)
    for pattern, repl in _PATTERNS:
        out = pattern.sub(repl, out)
    return out


def error_text(err: BaseException, secrets: Iterable[str | None] = ()) -> str:
    """``"<ExceptionName>: <message>"`` of ``err``, scrubbed; the message alone when the
    exception has none.

    >>> error_text(ValueError("bad token=abc123"))
    'ValueError: bad token=***'
    """
    message = str(err)
    if not message and getattr(err, "args", None):
        message = repr(err.args[0])
    name = type(err).__name__
    return scrub(f"{name}: {message}" if message else name, secrets)
