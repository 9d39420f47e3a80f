"""End-to-end tests of the Hub-compatible test server against the real ``huggingface_hub``/``datasets``.

``HF_ENDPOINT`` and ``HF_HUB_DISABLE_XET`` are read when ``huggingface_hub`` is imported, and other
test modules may already have imported it in this pytest process. So every client-side flow runs
in a fresh ``python -c`` subprocess whose environment points at the server (``HF_ENDPOINT``,
``HF_HUB_DISABLE_XET=1``, ``HF_TOKEN``, and ``HF_HOME``/``HF_DATASETS_CACHE`` in ``tmp_path``);
the server itself runs in a thread of the pytest process so tests can inspect its request log.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from .server import SCRUBBED_ENV, HubServer

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]

_SCRUBBED_ENV = SCRUBBED_ENV

PRELUDE = """
import os, sys, json
from huggingface_hub import HfApi, CommitOperationAdd, CommitOperationDelete
from huggingface_hub import hf_hub_download, snapshot_download
from huggingface_hub import constants
from huggingface_hub.errors import (
    EntryNotFoundError, HfHubHTTPError, RemoteEntryNotFoundError, RepositoryNotFoundError,
    RevisionNotFoundError,
)
assert constants.ENDPOINT == os.environ["HF_ENDPOINT"], constants.ENDPOINT
assert constants.HF_HUB_DISABLE_XET

def expect(exc_type, fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except exc_type as err:
        return err
    raise AssertionError(f"{getattr(fn, '__name__', fn)} did not raise {exc_type.__name__}")

def status(err):
    return err.response.status_code

api = HfApi()
"""


def run_client(
    server: HubServer, tmp_path: Path, script: str, token: str | None = None, timeout: float = 120
):
    """Run ``PRELUDE + script`` in a fresh interpreter pointed at ``server``; return its stdout."""
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED_ENV}
    env.update(server.client_env(hf_home=tmp_path / "hf_home", token=token))
    env.update({"OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "PYTHONUNBUFFERED": "1"})
    code = PRELUDE + textwrap.dedent(script)
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if proc.returncode != 0:
        pytest.fail(
            f"client script failed (rc={proc.returncode})\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
        )
    return proc.stdout


def last_json(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])


@pytest.fixture
def hub(tmp_path):
    with HubServer(tmp_path / "hubdata") as server:
        yield server


# --------------------------------------------------------------------------------------------------
# huggingface_hub flows
# --------------------------------------------------------------------------------------------------


def test_repos_uploads_refs_and_downloads(hub, tmp_path):
    folder = tmp_path / "folder"
    (folder / "sub").mkdir(parents=True)
    (folder / "config.json").write_text('{"a": 1}')
    (folder / "sub" / "weights.bin").write_bytes(bytes(range(256)) * 40)  # binary -> LFS
    out = run_client(
        hub,
        tmp_path,
        f"""
        assert api.whoami()["name"] == "tester"
        # create_repo: private model, public dataset, 409 on duplicates unless exist_ok
        url = api.create_repo("tester/model-a", private=True)
        assert url.repo_id == "tester/model-a" and url.repo_type == "model", repr(url)
        err = expect(HfHubHTTPError, api.create_repo, "tester/model-a")
        assert status(err) == 409
        api.create_repo("tester/model-a", exist_ok=True)
        durl = api.create_repo("tester/data-a", repo_type="dataset", private=False)
        assert durl.repo_type == "dataset" and "/datasets/tester/data-a" in durl

        info = api.model_info("tester/model-a")
        assert info.private is True and info.sha and [s.rfilename for s in info.siblings] == [".gitattributes"]
        initial = info.sha
        assert api.repo_info("tester/data-a", repo_type="dataset").private is False

        # uploads: regular file, folder (regular + LFS), create_commit with add/delete
        c1 = api.upload_file(path_or_fileobj=b"hello\\n", path_in_repo="docs/read me é.txt",
                             repo_id="tester/model-a", commit_message="add readme")
        assert c1.oid and c1.commit_url.endswith("/tester/model-a/commit/" + c1.oid), c1.commit_url
        c2 = api.upload_folder(folder_path={str(folder)!r}, repo_id="tester/model-a", commit_message="folder")
        ops = [CommitOperationAdd("notes.txt", b"n1"), CommitOperationDelete("docs/read me é.txt")]
        c3 = api.create_commit("tester/model-a", operations=ops, commit_message="edit", parent_commit=c2.oid)
        # stale parent_commit -> 412 Precondition Failed
        err = expect(HfHubHTTPError, api.create_commit, "tester/model-a",
                     operations=[CommitOperationAdd("x.txt", b"x")], commit_message="stale", parent_commit=c2.oid)
        assert status(err) == 412
        err = expect(RemoteEntryNotFoundError, api.delete_file, "missing.txt", repo_id="tester/model-a")
        assert isinstance(err, EntryNotFoundError)

        files = api.list_repo_files("tester/model-a")
        assert files == [".gitattributes", "config.json", "notes.txt", "sub/weights.bin"], files
        meta = {{s.rfilename: s for s in api.model_info("tester/model-a", files_metadata=True).siblings}}
        assert meta["sub/weights.bin"].lfs is not None and meta["sub/weights.bin"].size == 10240
        assert meta["config.json"].lfs is None and meta["config.json"].size == 8

        # refs: branch with a slash, annotated + lightweight tags, 409s, deletions
        api.create_branch("tester/model-a", branch="feature/x", revision=c1.oid)
        err = expect(HfHubHTTPError, api.create_branch, "tester/model-a", branch="feature/x")
        assert status(err) == 409
        api.create_branch("tester/model-a", branch="feature/x", exist_ok=True)
        api.create_tag("tester/model-a", tag="v1", revision=c2.oid, tag_message="first release")
        api.create_tag("tester/model-a", tag="v0", revision=c1.oid)
        err = expect(HfHubHTTPError, api.create_tag, "tester/model-a", tag="v1")
        assert status(err) == 409
        api.create_tag("tester/model-a", tag="v1", exist_ok=True)
        expect(RevisionNotFoundError, api.create_tag, "tester/model-a", tag="v9", revision="nope")
        api.create_branch("tester/model-a", branch="tmp")
        api.delete_branch("tester/model-a", branch="tmp")
        api.delete_tag("tester/model-a", tag="v0")
        expect(RevisionNotFoundError, api.delete_tag, "tester/model-a", tag="v0")
        refs = api.list_repo_refs("tester/model-a")
        branches = {{b.name: b.target_commit for b in refs.branches}}
        tags = {{t.name: t.target_commit for t in refs.tags}}
        assert branches == {{"main": c3.oid, "feature/x": c1.oid}}, branches
        assert tags == {{"v1": c2.oid}}, tags

        # info/commits/tree/paths-info by revision
        assert api.model_info("tester/model-a", revision="v1").sha == c2.oid
        assert api.model_info("tester/model-a", revision="feature/x").sha == c1.oid
        assert api.model_info("tester/model-a", revision=c1.oid[:12]).sha == c1.oid
        titles = [c.title for c in api.list_repo_commits("tester/model-a", revision="v1")]
        assert titles == ["folder", "add readme", "initial commit"], titles
        assert api.list_repo_commits("tester/model-a")[0].commit_id == c3.oid
        tree = list(api.list_repo_tree("tester/model-a", revision="feature/x", recursive=True, expand=True))
        by_path = {{e.path: e for e in tree}}
        assert set(by_path) == {{".gitattributes", "docs", "docs/read me é.txt"}}, set(by_path)
        assert by_path["docs"].last_commit.oid == c1.oid
        assert [e.path for e in api.list_repo_tree("tester/model-a", path_in_repo="sub")] == ["sub/weights.bin"]
        infos = api.get_paths_info("tester/model-a", ["sub", "sub/weights.bin", "missing"], revision="v1")
        assert [type(i).__name__ for i in infos] == ["RepoFolder", "RepoFile"], infos
        assert infos[1].lfs.sha256 and infos[1].lfs.size == 10240
        assert api.file_exists("tester/model-a", "sub/weights.bin")
        assert not api.file_exists("tester/model-a", "docs/read me é.txt")
        assert api.file_exists("tester/model-a", "docs/read me é.txt", revision="feature/x")
        assert api.revision_exists("tester/model-a", "v1") and not api.revision_exists("tester/model-a", "v2")
        assert api.repo_exists("tester/model-a") and not api.repo_exists("tester/nope")

        # downloads by branch (with '/'), tag and commit sha; LFS content round-trips
        p = hf_hub_download("tester/model-a", "docs/read me é.txt", revision="feature/x")
        assert open(p, "rb").read() == b"hello\\n" and c1.oid in p
        p = hf_hub_download("tester/model-a", "sub/weights.bin", revision="v1")
        assert open(p, "rb").read() == bytes(range(256)) * 40
        p = hf_hub_download("tester/model-a", "config.json", revision=c3.oid)
        assert open(p).read() == '{{"a": 1}}'
        snap = snapshot_download("tester/model-a", revision="v1")
        got = sorted(os.path.relpath(os.path.join(d, f), snap) for d, _, fs in os.walk(snap) for f in fs)
        assert got == [".gitattributes", "config.json", "docs/read me é.txt", "sub/weights.bin"], got

        # pagination of the tree endpoint (50 entries per page with expand=True)
        api.create_commit("tester/data-a", repo_type="dataset", commit_message="many",
                          operations=[CommitOperationAdd(f"many/f{{i:03d}}.txt", str(i).encode()) for i in range(60)])
        listed = list(api.list_repo_tree("tester/data-a", "many", repo_type="dataset", expand=True))
        assert len(listed) == 60 and all(e.last_commit is not None for e in listed)
        print(json.dumps({{"c1": c1.oid, "c2": c2.oid, "c3": c3.oid, "initial": initial}}))
        """,
    )
    shas = last_json(out)
    # The server really stored git commits and LFS pointer files.
    git_dir = hub.git_dir("tester/model-a")
    log = subprocess.run(
        ["git", f"--git-dir={git_dir}", "log", "--format=%H", "main"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert log == [shas["c3"], shas["c2"], shas["c1"], shas["initial"]]
    pointer = subprocess.run(
        ["git", f"--git-dir={git_dir}", "show", "v1:sub/weights.bin"],
        capture_output=True,
        check=True,
    ).stdout
    assert pointer.startswith(b"version https://git-lfs.github.com/spec/v1\noid sha256:")
    assert len(list((hub.data_dir / "lfs").iterdir())) == 1
    # LFS protocol was used for the binary file, and every commit went through /commit/.
    assert hub.count_requests("POST", r"^/tester/model-a\.git/info/lfs/objects/batch$", 200) == 1
    assert hub.count_requests("PUT", r"^/_hubsim/lfs-upload/", 200) == 1
    assert hub.count_requests("POST", r"^/api/models/tester/model-a/commit/main$", 200) == 3
    assert hub.count_requests("GET", r"/tree/", 200) >= 3
    assert (
        hub.count_requests("GET", r"^/api/datasets/tester/data-a/tree/main/many$", 200) == 2
    )  # 2 pages


def test_auth_and_typed_errors(hub, tmp_path, caplog):
    caplog.set_level(logging.DEBUG, logger="hubsim")
    run_client(
        hub,
        tmp_path,
        """
        api.create_repo("tester/secret", repo_type="dataset", private=True)
        api.create_repo("tester/open", repo_type="dataset")
        api.upload_file(path_or_fileobj=b"data", path_in_repo="a.txt", repo_id="tester/open", repo_type="dataset")
        api.upload_file(path_or_fileobj=b"data", path_in_repo="a.txt", repo_id="tester/secret", repo_type="dataset")

        # Wrong token: 401 with "Invalid credentials" -> plain HfHubHTTPError (not RepositoryNotFoundError)
        bad = HfApi(token="hf_definitely_wrong")
        err = expect(HfHubHTTPError, bad.whoami)
        assert status(err) == 401 and "Invalid user token" in str(err)
        err = expect(HfHubHTTPError, bad.dataset_info, "tester/open")
        assert status(err) == 401 and not isinstance(err, RepositoryNotFoundError)
        err = expect(HfHubHTTPError, bad.upload_file, path_or_fileobj=b"x", path_in_repo="x.txt",
                     repo_id="tester/open", repo_type="dataset")
        assert status(err) == 401

        # hf_hub_download re-raises a 401 from the HEAD call (when nothing is cached yet)
        err = expect(HfHubHTTPError, hf_hub_download, "tester/open", "a.txt", repo_type="dataset",
                     token="hf_definitely_wrong")
        assert status(err) == 401

        # Anonymous: public repos readable, private ones invisible (404 RepoNotFound), no writes
        anon = HfApi(token=False)
        assert anon.dataset_info("tester/open").id == "tester/open"
        err = expect(RepositoryNotFoundError, anon.dataset_info, "tester/secret")
        assert status(err) == 404
        expect(RepositoryNotFoundError, hf_hub_download, "tester/secret", "a.txt", repo_type="dataset", token=False)
        assert hf_hub_download("tester/open", "a.txt", repo_type="dataset", token=False)
        assert not anon.repo_exists("tester/secret", repo_type="dataset")
        err = expect(HfHubHTTPError, anon.upload_file, path_or_fileobj=b"x", path_in_repo="x.txt",
                     repo_id="tester/open", repo_type="dataset")
        assert status(err) == 401

        # Typed 404s
        err = expect(RepositoryNotFoundError, api.dataset_info, "tester/missing")
        assert err.response.headers["X-Error-Code"] == "RepoNotFound"
        err = expect(RevisionNotFoundError, api.dataset_info, "tester/open", revision="no-such-branch")
        assert err.response.headers["X-Error-Code"] == "RevisionNotFound"
        err = expect(RemoteEntryNotFoundError, hf_hub_download, "tester/open", "nope.txt", repo_type="dataset")
        assert isinstance(err, EntryNotFoundError) and err.response.headers["X-Error-Code"] == "EntryNotFound"
        expect(RevisionNotFoundError, hf_hub_download, "tester/open", "a.txt", repo_type="dataset", revision="nope")
        expect(RepositoryNotFoundError, hf_hub_download, "tester/missing", "a.txt", repo_type="dataset")
        expect(RevisionNotFoundError, api.list_repo_files, "tester/open", repo_type="dataset", revision="nope")
        expect(RemoteEntryNotFoundError, lambda: list(api.list_repo_tree("tester/open", "nope", repo_type="dataset")))
        # committing to a missing branch / a tag
        expect(RevisionNotFoundError, api.upload_file, path_or_fileobj=b"x", path_in_repo="x.txt",
               repo_id="tester/open", repo_type="dataset", revision="no-branch")
        err = expect(HfHubHTTPError, api.delete_branch, "tester/open", branch="main", repo_type="dataset")
        assert status(err) == 403

        # update_repo_settings / delete_repo
        api.update_repo_settings("tester/open", repo_type="dataset", private=True)
        expect(RepositoryNotFoundError, anon.dataset_info, "tester/open")
        api.delete_repo("tester/secret", repo_type="dataset")
        expect(RepositoryNotFoundError, api.dataset_info, "tester/secret")
        """,
    )
    # 401s were answered, but the token never reached the logs.
    assert hub.count_requests(path_regex=r"/api/", status=401) >= 3
    assert hub.token not in caplog.text and "hf_definitely_wrong" not in caplog.text
    assert hub.token not in repr(hub.requests) and hub.token not in repr(hub)


def test_concurrent_commits_are_serialized(hub, tmp_path):
    run_client(
        hub,
        tmp_path,
        """
        from concurrent.futures import ThreadPoolExecutor
        api.create_repo("tester/busy")
        def commit(i):
            return api.upload_file(path_or_fileobj=f"{i}".encode(), path_in_repo=f"f{i}.txt",
                                   repo_id="tester/busy", commit_message=f"c{i}").oid
        with ThreadPoolExecutor(6) as pool:
            oids = list(pool.map(commit, range(6)))
        assert len(set(oids)) == 6
        assert sorted(api.list_repo_files("tester/busy")) == [".gitattributes"] + [f"f{i}.txt" for i in range(6)]
        assert len(api.list_repo_commits("tester/busy")) == 7
        """,
    )


# --------------------------------------------------------------------------------------------------
# datasets flows
# --------------------------------------------------------------------------------------------------


def test_datasets_push_to_hub_branch_and_load_by_revision(hub, tmp_path):
    out = run_client(
        hub,
        tmp_path,
        """
        import datasets
        datasets.disable_progress_bars()
        rows1 = {"text": ["a", "b", "c"], "label": [0, 1, 0]}
        rows2 = {"text": ["d", "e"], "label": [1, 1]}
        ci1 = datasets.Dataset.from_dict(rows1).push_to_hub(
            "tester/al-pool", revision="round-1", private=True, commit_message="labels round 1")
        api.create_tag("tester/al-pool", tag="round-1-final", revision="round-1", repo_type="dataset")
        ci2 = datasets.Dataset.from_dict(rows2).push_to_hub(
            "tester/al-pool", revision="round-1", commit_message="labels round 2")
        info = api.dataset_info("tester/al-pool")
        assert info.private is True
        refs = api.list_repo_refs("tester/al-pool", repo_type="dataset")
        assert {b.name for b in refs.branches} == {"main", "round-1"}
        assert api.list_repo_commits("tester/al-pool", repo_type="dataset", revision="round-1")[0].title == "labels round 2"
        assert api.list_repo_files("tester/al-pool", repo_type="dataset") == [".gitattributes"]  # main untouched
        for rev, expected in (("round-1-final", rows1), (ci1.oid, rows1), ("round-1", rows2)):
            ds = datasets.load_dataset("tester/al-pool", revision=rev, split="train")
            assert ds.to_dict() == expected, (rev, ds.to_dict())
        print(json.dumps({"ci1": ci1.oid, "ci2": ci2.oid}))
        """,
    )
    shas = last_json(out)
    # push_to_hub: repo_info (404) -> create_repo -> create_branch (409 the second time) -> commit
    assert hub.count_requests("POST", r"^/api/repos/create$", 200) == 1
    assert hub.count_requests("POST", r"^/api/datasets/tester/al-pool/branch/round-1$", 200) == 1
    assert hub.count_requests("POST", r"^/api/datasets/tester/al-pool/branch/round-1$", 409) == 1
    assert hub.count_requests("POST", r"^/api/datasets/tester/al-pool/commit/round-1$", 200) == 2
    assert hub.count_requests("POST", r"^/api/datasets/tester/al-pool/tag/", 200) == 1
    assert (
        hub.count_requests(
            "GET", re.escape(shas["ci1"]) + r"/data/train-00000-of-00001\.parquet$", 200
        )
        >= 1
    )


# --------------------------------------------------------------------------------------------------
# Fault injection
# --------------------------------------------------------------------------------------------------


def test_fault_injection_500(hub, tmp_path):
    commit_fault = hub.inject_fault(method="POST", path_regex=r"/commit/", kind="500", times=2)
    run_client(
        hub,
        tmp_path,
        """
        api.create_repo("tester/faulty", repo_type="dataset")
        def up(name):
            return api.upload_file(path_or_fileobj=name.encode(), path_in_repo=name, repo_id="tester/faulty",
                                   repo_type="dataset")
        # /commit/ is POSTed once, without retries: each 500 surfaces as HfHubHTTPError
        for _ in range(2):
            err = expect(HfHubHTTPError, up, "a.txt")
            assert status(err) == 500 and "Injected fault" in str(err), str(err)
        assert api.list_repo_files("tester/faulty", repo_type="dataset") == [".gitattributes"]
        up("a.txt")  # the fault is used up
        assert api.list_repo_files("tester/faulty", repo_type="dataset") == [".gitattributes", "a.txt"]
        """,
    )
    assert commit_fault.hits == 2 and commit_fault.remaining == 0
    assert [r.status for r in hub.requests if "/commit/" in r.path] == [500, 500, 200]


def test_fault_injection_retried_endpoints(hub, tmp_path):
    hub.inject_fault(method="POST", path_regex=r"/preupload/", kind="500", times=1)
    hub.inject_fault(method="PUT", path_regex=r"^/_hubsim/lfs-upload/", kind="503", times=1)
    hub.inject_fault(method="GET", path_regex=r"/resolve/", kind="drop", times=1)
    run_client(
        hub,
        tmp_path,
        """
        api.create_repo("tester/retry")
        data = os.urandom(3000)
        api.upload_file(path_or_fileobj=data, path_in_repo="w.bin", repo_id="tester/retry")
        assert open(hf_hub_download("tester/retry", "w.bin"), "rb").read() == data
        """,
    )
    statuses = [
        (r.method, r.status)
        for r in hub.requests
        if re.search(r"preupload|lfs-upload|resolve", r.path)
    ]
    assert (
        statuses.count(("POST", 500)) == 1 and statuses.count(("POST", 200)) == 1
    )  # preupload retried
    assert (
        statuses.count(("PUT", 503)) == 1 and statuses.count(("PUT", 200)) == 1
    )  # LFS PUT retried
    assert (
        statuses.count(("GET", None)) == 1 and statuses.count(("GET", 200)) == 1
    )  # download resumed
    assert all(f.remaining == 0 for f in hub.faults)


def test_fault_injection_drop(hub, tmp_path):
    hub.inject_fault(method="POST", path_regex=r"/commit/", kind="drop", times=1)
    run_client(
        hub,
        tmp_path,
        """
        import httpx2
        api.create_repo("tester/dropped")
        # The commit POST is not retried: the dropped connection surfaces as a transport error
        err = expect(httpx2.TransportError, api.upload_file, path_or_fileobj=b"x", path_in_repo="x.txt",
                     repo_id="tester/dropped")
        assert isinstance(err, httpx2.RemoteProtocolError), repr(err)
        assert api.list_repo_files("tester/dropped") == [".gitattributes"]  # nothing was committed
        api.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id="tester/dropped")
        assert api.list_repo_files("tester/dropped") == [".gitattributes", "x.txt"]
        """,
    )
    commits = [r.status for r in hub.requests if "/commit/" in r.path]
    assert commits == [None, 200]


# --------------------------------------------------------------------------------------------------
# Raw HTTP (no client library) and the standalone entry point
# --------------------------------------------------------------------------------------------------


def _http(url: str, method: str = "GET", headers: dict | None = None, data: bytes | None = None):
    req = urllib.request.Request(url, method=method, headers=headers or {}, data=data)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def test_raw_http_resolve_ranges_and_errors(hub):
    auth = {"Authorization": f"Bearer {hub.token}", "Content-Type": "application/json"}
    body = json.dumps({"name": "raw", "type": "model"}).encode()
    assert _http(f"{hub.url}/api/repos/create", "POST", auth, body)[0] == 200
    ndjson = b"\n".join(
        json.dumps(line).encode()
        for line in (
            {"key": "header", "value": {"summary": "add", "description": ""}},
            {
                "key": "file",
                "value": {"path": "f.txt", "content": "MDEyMzQ1Njc4OQ==", "encoding": "base64"},
            },
        )
    )
    status, _, payload = _http(f"{hub.url}/api/models/tester/raw/commit/main", "POST", auth, ndjson)
    assert status == 200
    commit = json.loads(payload)["commitOid"]
    url = f"{hub.url}/tester/raw/resolve/main/f.txt"
    status, headers, content = _http(url, "HEAD")
    assert status == 200 and content == b"" and headers["Content-Length"] == "10"
    assert headers["X-Repo-Commit"] == commit and len(headers["ETag"].strip('"')) == 40
    assert _http(url, headers={"Range": "bytes=2-4"})[::2] == (206, b"234")
    status, headers, content = _http(url, headers={"Range": "bytes=7-"})
    assert (status, content, headers["Content-Range"]) == (206, b"789", "bytes 7-9/10")
    assert _http(url, headers={"Range": "bytes=-2"})[::2] == (206, b"89")
    assert _http(url, headers={"Range": "bytes=10-"})[0] == 416
    status, headers, content = _http(f"{hub.url}/tester/raw/resolve/main/none.txt")
    assert (status, headers["X-Error-Code"], headers["X-Repo-Commit"]) == (
        404,
        "EntryNotFound",
        commit,
    )
    assert json.loads(content)["error"]
    assert (
        _http(f"{hub.url}/tester/raw/resolve/nope/f.txt")[1]["X-Error-Code"] == "RevisionNotFound"
    )
    assert _http(f"{hub.url}/tester/other/resolve/main/f.txt")[1]["X-Error-Code"] == "RepoNotFound"
    bad = {"Authorization": "Bearer hf_wrong"}
    status, headers, _ = _http(f"{hub.url}/api/models/tester/raw", headers=bad)
    assert (
        status == 401
        and headers["X-Error-Message"] == "Invalid credentials in Authorization header"
    )
    assert _http(f"{hub.url}/api/no/such/route")[0] == 404
    fault = hub.inject_fault(path_regex=r"^/api/whoami-v2$", kind="503", times=1)
    assert _http(f"{hub.url}/api/whoami-v2", headers=auth)[0] == 503
    assert _http(f"{hub.url}/api/whoami-v2", headers=auth)[0] == 200
    assert fault.hits == 1
    assert hub.count_requests("GET", r"^/api/whoami-v2$") == 2


def test_standalone_entry_point(tmp_path):
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.hubsim.server",
            "--port",
            "0",
            "--data-dir",
            str(tmp_path / "d"),
        ],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        match = re.search(r"listening on (http://\S+)", line)
        assert match, line
        deadline = time.monotonic() + 10
        while True:
            try:
                status, _, payload = _http(
                    f"{match.group(1)}/api/whoami-v2",
                    headers={"Authorization": "Bearer hf_test_token"},
                )
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        assert status == 200 and json.loads(payload)["name"] == "tester"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
