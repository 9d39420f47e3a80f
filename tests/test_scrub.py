"""One scrubber for every message that quotes user input or a server's reply."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from energizer_hf.scrub import error_text, known_secrets, scrub

HF = "hf_AbCdEfGhIjKlMnOpQrStUvWxYz012345"
LS_KEY = "0a1b2c3d4e5f60718293a4b5c6d7e8f901234567"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJ0b2tlbl90eXBlIjoicmVmcmVzaCJ9.c2lnbmF0dXJlLXZhbHVl"

# (text, secret that must disappear, text that must survive)
CASES = [
    # Hugging Face tokens pasted where an id is expected (issue 14)
    (f"hub_repo_id '{HF}' is not a valid Hub repository id", HF, "hub_repo_id"),
    (f"Could not load dataset 'https://huggingface.co/datasets/x?token={HF}'", HF, "?token=***"),
    ("token hf_abcdefghij in text", "hf_abcdefghij", "token"),
    (f"api_org_{'x1' * 10} refused", "x1x1x1x1x1", "refused"),
    # URL user-info
    ("GET https://alice:pa55word@hub.example/api", "pa55word", "https://alice:***@hub.example"),
    (f"git+https://{HF}@huggingface.co/x", HF, "@huggingface.co"),
    ("dataset https://ghost-token-1234@data.example/a.csv", "ghost-token-1234", "***@data.example"),
    # query / form parameters and NAME=value
    ("https://s3.example/a.csv?X-Amz-Signature=deadbeef1234&x=1", "deadbeef1234", "x=1"),
    ("POST /login password=hunter2 user=bob", "hunter2", "user=bob"),
    ("api_key=sk-live-998877 and access_token=abc.def", "998877", "api_key=***"),
    (
        "LABEL_STUDIO_API_KEY=secretvalue99 energizer-hf annotate runs/x",
        "secretvalue99",
        "annotate",
    ),
    ("--hf-token=tok123456 --rounds 3", "tok123456", "--rounds 3"),
    # Authorization headers: HTTP, repr and JSON forms
    (f"Authorization: Token {LS_KEY}", LS_KEY, "Authorization: Token ***"),
    (f"{{'Authorization': 'Bearer {HF}', 'Accept': 'json'}}", HF, "'Accept': 'json'"),
    ('{"authorization": "Basic dXNlcjpwYXNz"}', "dXNlcjpwYXNz", '"authorization": "Basic ***"'),
    (f"curl -H 'Proxy-Authorization: {LS_KEY}'", LS_KEY, "Proxy-Authorization: ***"),
    # bearer / token phrases
    ("sent Bearer abcdef.123456", "abcdef.123456", "sent Bearer ***"),
    (f"Invalid token: {LS_KEY}", LS_KEY, "Invalid token: ***"),
    # JSON / dict fields named like credentials
    ('{"detail": "x", "api_key": "k-123", "refresh_token": "r-9"}', "k-123", '"detail": "x"'),
    ("{'password': 'p@ss', 'user': 'bob'}", "p@ss", "'user': 'bob'"),
    ('{"client_secret": "s\\"q"}', 's\\"q', '"client_secret": "***"'),
    # JWTs (Label Studio personal access tokens)
    (f"refresh {JWT} expired", JWT, "expired"),
    # GitHub tokens
    ("ghp_" + "A1" * 15 + " leaked", "A1A1A1A1A1", "leaked"),
]

# harmless text that must come back unchanged
UNCHANGED = [
    "pool_max_tokens=4096 and max_length=128",
    "Token authentication failed",
    "hf_logging is disabled; install hf_transfer",
    "learning_rate: '1e-3' is not a number",
    "see https://huggingface.co/docs/datasets and user@example.com",
    "Bearer",
    "the key column 'label' is missing",
    "num_tokens: 12",
]


@pytest.mark.parametrize("text, secret, kept", CASES)
def test_scrub_hides_credentials(text, secret, kept):
    out = scrub(text)
    assert secret not in out, out
    assert kept in out, out
    assert scrub(out) == out  # idempotent


@pytest.mark.parametrize("text", UNCHANGED)
def test_scrub_leaves_ordinary_text_alone(text, monkeypatch):
    for name in list(os.environ):
        if name.endswith(("TOKEN", "API_KEY", "SECRET", "PASSWORD")):
            monkeypatch.delenv(name)
    assert scrub(text) == text


@pytest.mark.parametrize(
    "var",
    [
        "HF_TOKEN",
        "HUGGING_FACE_HUB_TOKEN",
        "LABEL_STUDIO_API_KEY",
        "LABEL_STUDIO_TOKEN",
        "MY_SERVICE_API_KEY",
        "CUSTOM_PASSWORD",
    ],
)
def test_values_of_secret_environment_variables_are_hidden(monkeypatch, var):
    value = "plainvalue-without-a-shape-42"
    monkeypatch.setenv(var, value)
    for text in (f"echo {value} back", f"url%3A{value.replace('-', '%2D')}", f"a/{value}/b"):
        assert value not in scrub(text)
    from urllib.parse import quote

    assert quote("s3cr:t/v@l", safe="") not in scrub(
        "x=" + quote("s3cr:t/v@l", safe=""), ["s3cr:t/v@l"]
    )


def test_extra_secrets_and_short_values(monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "abc")  # too short to hide: would blank ordinary words
    assert scrub("abc def") == "abc def"
    assert scrub("my pass is zebra-horse", ["zebra-horse"]) == "my pass is ***"
    assert known_secrets(["zebra-horse", None, ""])[0] == "zebra-horse"


def test_label_studio_error_body_echoing_the_authorization_header(monkeypatch):
    """Issue 14: a Label Studio error body that echoes the request's headers leaked the key."""
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", LS_KEY)
    body = {
        "detail": "Invalid project",
        "request": {"headers": {"Authorization": f"Token {LS_KEY}"}},
    }
    # how label_studio_sdk's ApiError prints itself, and the JSON body itself
    api_error = f"headers: {{'content-type': 'application/json'}}, status_code: 400, body: {body}"
    for text in (api_error, json.dumps(body), str(body)):
        out = scrub(text)
        assert LS_KEY not in out and "Invalid project" in out


def test_label_studio_error_body_without_the_environment(monkeypatch):
    monkeypatch.delenv("LABEL_STUDIO_API_KEY", raising=False)
    body = json.dumps({"headers": {"Authorization": f"Token {LS_KEY}"}, "access_token": JWT})
    out = scrub(body)
    assert LS_KEY not in out and JWT not in out


def test_error_text_names_and_scrubs(monkeypatch):
    monkeypatch.setenv("HF_TOKEN", HF)
    err = ValueError(f"Repo id must be in the form 'repo_name', got '{HF}'")
    text = error_text(err)
    assert text.startswith("ValueError: Repo id must be") and HF not in text
    assert error_text(KeyError("x")) == "KeyError: 'x'"
    assert error_text(RuntimeError()) == "RuntimeError"


def test_stored_login_tokens_are_hidden(tmp_path):
    """The token of `hf auth login` is read from its file, with or without huggingface_hub."""
    code = (
        "import os, sys\n"
        "from energizer_hf.scrub import scrub\n"
        "tok, other = 'hfstored' + 'X' * 20, 'hfother' + 'Y' * 20\n"
        "os.makedirs(os.environ['HF_HOME'], exist_ok=True)\n"
        "open(os.path.join(os.environ['HF_HOME'], 'token'), 'w').write(tok + '\\n')\n"
        "open(os.path.join(os.environ['HF_HOME'], 'stored_tokens'), 'w').write(\n"
        "    '[work]\\nhf_token = ' + other + '\\n')\n"
        "assert tok not in scrub('x ' + tok) and other not in scrub(other + ' y')\n"
        "import huggingface_hub\n"
        "assert tok not in scrub('x ' + tok), scrub('x ' + tok)\n"
        "print('ok')\n"
    )
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_TOKEN_PATH")
    }
    env["HF_HOME"] = str(tmp_path / "hf")
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stderr[-2000:]


@pytest.mark.parametrize(
    "repo_id, secret",
    [
        (HF, HF),
        (f"me/data?token={HF}", HF),
        ("https://me:s3cretpw@huggingface.co/datasets/me/x", "s3cretpw"),
    ],
)
def test_real_repo_id_errors_that_echo_a_pasted_token(repo_id, secret, monkeypatch):
    """Issue 14: a token pasted into hub_repo_id was echoed back by the error."""
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    from energizer_hf.errors import EnergizerError
    from energizer_hf.revisions import validate_repo_id

    with pytest.raises(EnergizerError) as info:
        validate_repo_id(repo_id, "hub_repo_id")
    assert secret not in error_text(info.value) and "hub_repo_id" in error_text(info.value)
