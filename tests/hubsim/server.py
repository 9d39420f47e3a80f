"""A self-contained, Hugging Face Hub-compatible HTTP server for tests.

Only the Python standard library and the ``git`` command line are used. Every repository is a
bare git repository under ``<data_dir>/repos/<type>s/<namespace>/<name>.git``; large files are
stored once under ``<data_dir>/lfs/<sha256>`` and committed into git as standard git-lfs pointer
files, so that ``resolve`` can serve the real content.

The real ``huggingface_hub`` / ``datasets`` clients talk to it when the environment has
``HF_ENDPOINT=<server.url>`` and ``HF_HUB_DISABLE_XET=1`` *before* ``huggingface_hub`` is imported
(both are read at import time).

Usage::

    with HubServer(tmp_path / "hub") as server:
        env = {**os.environ, **server.client_env(hf_home=tmp_path / "hf_home")}
        subprocess.run([sys.executable, "-c", client_code], env=env, check=True)
        server.count_requests("POST", r"/commit/", status=200)
        server.inject_fault(method="POST", path_regex=r"/commit/", kind="500", times=2)

Standalone::

    python -m tests.hubsim.server --port 8765 --data-dir /tmp/hub

Endpoints (``{t}`` is ``models``/``datasets``/``spaces``, ``{prefix}`` is ``""``/``datasets/``/``spaces/``):

* ``GET  /api/whoami-v2``
* ``POST /api/repos/create``, ``DELETE /api/repos/delete``, ``PUT /api/{t}/{id}/settings``
* ``POST /api/validate-yaml``
* ``GET  /api/{t}`` (listing, ``author``/``search``/``limit``)
* ``GET  /api/{t}/{id}`` and ``/api/{t}/{id}/revision/{rev}`` (``blobs=1`` for file metadata)
* ``GET  /api/{t}/{id}/refs``, ``/commits/{rev}``, ``/tree/{rev}[/{path}]`` (``recursive``, ``expand``,
  ``cursor`` pagination through ``Link`` headers)
* ``POST /api/{t}/{id}/paths-info/{rev}``, ``/preupload/{rev}``, ``/commit/{rev}`` (NDJSON)
* ``POST|DELETE /api/{t}/{id}/branch/{branch}``, ``POST /api/{t}/{id}/tag/{rev}``,
  ``DELETE /api/{t}/{id}/tag/{tag}``
* ``POST /{prefix}{id}.git/info/lfs/objects/batch`` and ``.../objects/verify`` (git-lfs batch API),
  ``PUT  /_hubsim/lfs-upload/{nonce}``, ``GET /_hubsim/lfs-download/{oid}``
* ``GET|HEAD /{prefix}{id}/resolve/{rev}/{path}`` (``Range`` supported)
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import fnmatch
import hashlib
import http.server
import json
import logging
import os
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import traceback
import zlib
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

logger = logging.getLogger("hubsim")

DEFAULT_BRANCH = "main"
LFS_POINTER_RE = re.compile(
    rb"^version https://git-lfs\.github\.com/spec/v1\noid sha256:([0-9a-f]{64})\nsize ([0-9]+)\n$"
)
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
HEX_RE = re.compile(r"^[0-9a-f]{7,40}$")
REPO_NAME_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?$")
# Files above this size are always uploaded through LFS (the client assumes regular files <= 5MB).
REGULAR_FILE_MAX_SIZE = 5 * 1024 * 1024
TREE_PAGE_SIZE = 1000
TREE_PAGE_SIZE_EXPAND = 50
COMMITS_PAGE_SIZE = 50

PLURAL_TO_TYPE = {"models": "model", "datasets": "dataset", "spaces": "space"}
TYPE_TO_PLURAL = {v: k for k, v in PLURAL_TO_TYPE.items()}
URL_PREFIXES = {"model": "", "dataset": "datasets/", "space": "spaces/"}

_LFS_LINE = " filter=lfs diff=lfs merge=lfs -text\n"
DEFAULT_GITATTRIBUTES = "".join(
    pattern + _LFS_LINE
    for pattern in (
        "*.7z", "*.arrow", "*.bin", "*.bz2", "*.ckpt", "*.ftz", "*.gz", "*.h5", "*.joblib",
        "*.lfs.*", "*.lz4", "*.mds", "*.mlmodel", "*.model", "*.msgpack", "*.npy", "*.npz",
        "*.onnx", "*.ot", "*.parquet", "*.pb", "*.pickle", "*.pkl", "*.pt", "*.pth", "*.rar",
        "*.safetensors", "saved_model/**/*", "*.tar.*", "*.tar", "*.tflite", "*.tgz", "*.wasm",
        "*.xz", "*.zip", "*.zst", "*tfevents*",
        # Audio / image files (as in the Hub's default .gitattributes for dataset repos)
        "*.mp3", "*.ogg", "*.wav", "*.flac", "*.bmp", "*.gif", "*.png", "*.tiff", "*.jpg",
        "*.jpeg", "*.webp",
    )
)  # fmt: skip


def iso_date(timestamp: float) -> str:
    """Format a unix timestamp the way the Hub does (``2024-01-31T12:00:00.000Z``)."""
    dt = datetime.fromtimestamp(timestamp, timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def lfs_pointer(oid: str, size: int) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize {size}\n".encode()


def _truthy(value: str | None) -> bool:
    return value is not None and value.strip().lower() in ("1", "true", "yes", "on")


class HubError(Exception):
    """An error answered as JSON ``{"error": message}`` with ``X-Error-Code``/``X-Error-Message``."""

    def __init__(
        self,
        status: int,
        message: str,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.headers = headers or {}
        self.extra = extra or {}


def repo_not_found() -> HubError:
    return HubError(404, "Repository not found", code="RepoNotFound")


def revision_not_found(revision: str) -> HubError:
    return HubError(404, f"Invalid rev id: {revision}", code="RevisionNotFound")


def entry_not_found(path: str, commit: str | None = None) -> HubError:
    headers = {"X-Repo-Commit": commit} if commit else {}
    return HubError(404, f"Entry not found: {path}", code="EntryNotFound", headers=headers)


# --------------------------------------------------------------------------------------------------
# Git storage
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One node of a commit's tree."""

    path: str
    type: str  # "file" or "directory"
    oid: str  # git object id (blob of the pointer file for LFS files)
    size: int  # real content size (0 for directories)
    lfs_oid: str | None = None
    lfs_pointer_size: int | None = None


@dataclass
class CommitRecord:
    oid: str
    author: str
    timestamp: int
    title: str
    message: str


class Snapshot:
    """All entries (files and directories) of one commit, keyed by path."""

    def __init__(self, commit: str, tree: str, entries: dict[str, Entry]):
        self.commit = commit
        self.tree = tree
        self.entries = entries
        self._children: dict[str, list[Entry]] = {}
        for entry in entries.values():
            parent = entry.path.rsplit("/", 1)[0] if "/" in entry.path else ""
            self._children.setdefault(parent, []).append(entry)
        for children in self._children.values():
            children.sort(key=lambda e: e.path)

    def children(self, directory: str) -> list[Entry]:
        return self._children.get(directory, [])

    def descendants(self, directory: str) -> list[Entry]:
        if directory == "":
            return sorted(self.entries.values(), key=lambda e: e.path)
        prefix = directory + "/"
        return sorted(
            (e for e in self.entries.values() if e.path.startswith(prefix)), key=lambda e: e.path
        )

    def files(self) -> list[Entry]:
        return [e for e in sorted(self.entries.values(), key=lambda e: e.path) if e.type == "file"]


class GitRepo:
    """A bare git repository plus its Hub metadata (visibility, creation date)."""

    def __init__(
        self, root: Path, repo_type: str, repo_id: str, author_name: str, author_email: str
    ):
        self.repo_type = repo_type
        self.repo_id = repo_id
        self.git_dir = root / f"{repo_id}.git"
        self.meta_path = root / f"{repo_id}.json"
        self.lock = threading.RLock()
        self._author_name = author_name
        self._author_email = author_email
        self._snapshots: OrderedDict[str, Snapshot] = OrderedDict()
        self._last_commits: OrderedDict[str, dict[str, CommitRecord]] = OrderedDict()
        self._cache_lock = threading.Lock()

    # -- metadata -----------------------------------------------------------------------------------
    def exists(self) -> bool:
        return self.meta_path.is_file() and self.git_dir.is_dir()

    @property
    def meta(self) -> dict[str, Any]:
        return json.loads(self.meta_path.read_text())

    def write_meta(self, meta: dict[str, Any]) -> None:
        tmp = self.meta_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(meta))
        os.replace(tmp, self.meta_path)

    @property
    def private(self) -> bool:
        return bool(self.meta.get("private"))

    # -- low level git ------------------------------------------------------------------------------
    def _env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.git_dir.parent),
            "LC_ALL": "C",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_AUTHOR_NAME": self._author_name,
            "GIT_AUTHOR_EMAIL": self._author_email,
            "GIT_COMMITTER_NAME": self._author_name,
            "GIT_COMMITTER_EMAIL": self._author_email,
        }
        if extra:
            env.update(extra)
        return env

    def git(
        self,
        *args: str,
        input: bytes | None = None,
        env: dict[str, str] | None = None,
        check: bool = True,
    ) -> bytes:
        proc = subprocess.run(
            ["git", f"--git-dir={self.git_dir}", *args],
            input=input,
            capture_output=True,
            env=self._env(env),
        )
        if check and proc.returncode != 0:
            raise RuntimeError(
                f"git {args[0]} failed ({proc.returncode}): {proc.stderr.decode(errors='replace')}"
            )
        return proc.stdout

    def write_blob(self, data: bytes) -> str:
        """Write a loose blob object (same bytes as ``git hash-object -w``) and return its id."""
        store = b"blob %d\x00" % len(data) + data
        oid = hashlib.sha1(store).hexdigest()
        target = self.git_dir / "objects" / oid[:2] / oid[2:]
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix="tmp_obj_")
            with os.fdopen(fd, "wb") as f:
                f.write(zlib.compress(store, 1))
            os.replace(tmp, target)
        return oid

    def read_blob(self, oid: str) -> bytes:
        return self.git("cat-file", "blob", oid)

    def _cat_batch(self, oids: list[str]) -> dict[str, bytes]:
        if not oids:
            return {}
        out = self.git("cat-file", "--batch", input="".join(o + "\n" for o in oids).encode())
        result: dict[str, bytes] = {}
        pos = 0
        for oid in oids:
            nl = out.index(b"\n", pos)
            header = out[pos:nl].split(b" ")
            pos = nl + 1
            if len(header) < 3:  # "<oid> missing"
                continue
            size = int(header[2])
            result[oid] = out[pos : pos + size]
            pos += size + 1
        return result

    # -- init ---------------------------------------------------------------------------------------
    def init(self, private: bool, initial_files: dict[str, bytes]) -> None:
        self.git_dir.parent.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run(
            [
                "git",
                "init",
                "--bare",
                "--quiet",
                f"--initial-branch={DEFAULT_BRANCH}",
                str(self.git_dir),
            ],
            capture_output=True,
            env=self._env(),
        )
        if proc.returncode != 0:
            raise RuntimeError(f"git init failed: {proc.stderr.decode(errors='replace')}")
        self.git("config", "gc.auto", "0")
        self.git("config", "core.logAllRefUpdates", "false")
        now = time.time()
        self._commit_tree(
            files={p: ("100644", self.write_blob(c)) for p, c in initial_files.items()},
            parent=None,
            message="initial commit",
            branch=DEFAULT_BRANCH,
        )
        self.write_meta(
            {
                "private": private,
                "createdAt": iso_date(now),
                "_id": secrets.token_hex(12),
                "gated": False,
            }
        )

    # -- refs ---------------------------------------------------------------------------------------
    def refs(self) -> dict[str, str]:
        """Map full ref name -> peeled commit id."""
        out = self.git(
            "for-each-ref",
            "--format=%(refname)%00%(objectname)%00%(*objectname)",
            "refs/heads",
            "refs/tags",
        )
        refs: dict[str, str] = {}
        for line in out.decode().splitlines():
            name, obj, peeled = line.split("\x00")
            refs[name] = peeled or obj
        return refs

    def branch_head(self, branch: str) -> str | None:
        return self.refs().get(f"refs/heads/{branch}")

    def resolve(self, revision: str) -> str | None:
        """Resolve a branch, tag, full ref name or (abbreviated) commit id to a commit id."""
        if not revision or revision.startswith("-") or "\x00" in revision:
            return None
        refs = self.refs()
        for candidate in (f"refs/heads/{revision}", f"refs/tags/{revision}", revision):
            if candidate in refs:
                return refs[candidate]
        if HEX_RE.match(revision):
            out = self.git(
                "rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}", check=False
            ).strip()
            if out:
                return out.decode()
        return None

    def is_valid_branch_name(self, name: str) -> bool:
        if (
            not name
            or name.startswith("refs/")
            or name.startswith("-")
            or HEX_RE.fullmatch(name)
            and len(name) == 40
        ):
            return False
        proc = subprocess.run(
            ["git", "check-ref-format", f"refs/heads/{name}"], capture_output=True, env=self._env()
        )
        return proc.returncode == 0

    def update_ref(self, ref: str, new: str, old: str | None) -> None:
        """Atomically move ``ref`` from ``old`` (None: must not exist) to ``new``."""
        self.git("update-ref", ref, new, old if old is not None else "0" * 40)

    def delete_ref(self, ref: str) -> None:
        self.git("update-ref", "-d", ref)

    def create_tag(self, tag: str, commit: str, message: str | None) -> None:
        if message:
            self.git("tag", "-a", "-m", message, tag, commit, env=self._date_env())
        else:
            self.update_ref(f"refs/tags/{tag}", commit, None)

    # -- trees --------------------------------------------------------------------------------------
    def snapshot(self, commit: str) -> Snapshot:
        with self._cache_lock:
            cached = self._snapshots.get(commit)
            if cached is not None:
                self._snapshots.move_to_end(commit)
                return cached
        tree = self.git("rev-parse", f"{commit}^{{tree}}").decode().strip()
        out = self.git("ls-tree", "-r", "-t", "-l", "-z", "--full-tree", commit)
        raw: list[tuple[str, str, str, str]] = []
        for item in out.split(b"\x00"):
            if not item:
                continue
            meta, path = item.split(b"\t", 1)
            mode, otype, oid, size = meta.decode().split()
            raw.append((path.decode("utf-8", errors="surrogateescape"), otype, oid, size))
        candidates = [
            oid for _, otype, oid, size in raw if otype == "blob" and 100 <= int(size) <= 200
        ]
        contents = self._cat_batch(sorted(set(candidates)))
        entries: dict[str, Entry] = {}
        for path, otype, oid, size in raw:
            if otype == "tree":
                entries[path] = Entry(path=path, type="directory", oid=oid, size=0)
            elif otype == "blob":
                match = LFS_POINTER_RE.match(contents.get(oid, b""))
                if match:
                    entries[path] = Entry(
                        path=path,
                        type="file",
                        oid=oid,
                        size=int(match.group(2)),
                        lfs_oid=match.group(1).decode(),
                        lfs_pointer_size=int(size),
                    )
                else:
                    entries[path] = Entry(path=path, type="file", oid=oid, size=int(size))
            # submodules ("commit") are ignored
        snap = Snapshot(commit, tree, entries)
        with self._cache_lock:
            self._snapshots[commit] = snap
            while len(self._snapshots) > 64:
                self._snapshots.popitem(last=False)
        return snap

    def last_commits(self, commit: str) -> dict[str, CommitRecord]:
        """Map every path (file or directory) of ``commit`` to the last commit that touched it."""
        with self._cache_lock:
            cached = self._last_commits.get(commit)
            if cached is not None:
                return cached
        out = self.git(
            "-c", "core.quotePath=false", "log", "--no-renames", "--name-only",
            "--format=%x1e%H%x1f%an%x1f%ct%x1f%s", commit,
        ).decode("utf-8", errors="replace")  # fmt: skip
        result: dict[str, CommitRecord] = {}
        for block in out.split("\x1e"):
            if not block.strip():
                continue
            header, _, names = block.partition("\n")
            oid, author, ts, title = header.split("\x1f", 3)
            record = CommitRecord(
                oid=oid, author=author, timestamp=int(ts), title=title, message=""
            )
            for name in names.splitlines():
                name = name.strip()
                while name and name not in result:
                    result[name] = record
                    name = name.rsplit("/", 1)[0] if "/" in name else ""
        with self._cache_lock:
            self._last_commits[commit] = result
            while len(self._last_commits) > 64:
                self._last_commits.popitem(last=False)
        return result

    def log(self, commit: str, max_count: int | None = None) -> list[CommitRecord]:
        limit = [f"--max-count={max_count}"] if max_count else []
        out = self.git("log", *limit, "--format=%H%x1f%an%x1f%ct%x1f%B%x1e", commit).decode(
            "utf-8", errors="replace"
        )
        records = []
        for block in out.split("\x1e"):
            block = block.strip("\n")
            if not block:
                continue
            oid, author, ts, body = block.split("\x1f", 3)
            title, _, message = body.partition("\n")
            records.append(
                CommitRecord(
                    oid=oid,
                    author=author,
                    timestamp=int(ts),
                    title=title,
                    message=message.strip("\n"),
                )
            )
        return records

    # -- commits ------------------------------------------------------------------------------------
    def _date_env(self) -> dict[str, str]:
        date = f"{int(time.time())} +0000"
        return {"GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date}

    def _commit_tree(
        self, files: dict[str, tuple[str, str]], parent: str | None, message: str, branch: str
    ) -> str:
        fd, index_path = tempfile.mkstemp(prefix="hubsim_index_", dir=self.git_dir)
        os.close(fd)
        os.unlink(index_path)  # git wants to create the index itself
        try:
            env = {"GIT_INDEX_FILE": index_path}
            info = b"".join(
                f"{mode} {oid}\t".encode()
                + path.encode("utf-8", errors="surrogateescape")
                + b"\x00"
                for path, (mode, oid) in sorted(files.items())
            )
            self.git("update-index", "--add", "-z", "--index-info", input=info, env=env)
            tree = self.git("write-tree", env=env).decode().strip()
        finally:
            if os.path.exists(index_path):
                os.unlink(index_path)
        args = ["commit-tree", tree, "-F", "-"]
        if parent is not None:
            args[2:2] = ["-p", parent]
        if not message.endswith("\n"):
            message += "\n"
        commit = self.git(*args, input=message.encode(), env=self._date_env()).decode().strip()
        self.update_ref(f"refs/heads/{branch}", commit, parent)
        return commit

    def commit(
        self,
        branch: str,
        operations: list[dict[str, Any]],
        summary: str,
        description: str,
        parent_commit: str | None,
        lfs_dir: Path,
    ) -> str:
        """Apply NDJSON commit operations on top of ``branch`` and return the new commit id."""
        with self.lock:
            head = self.branch_head(branch)
            if head is None:
                raise revision_not_found(branch)
            if parent_commit is not None:
                resolved_parent = self.resolve(parent_commit)
                if resolved_parent != head:
                    raise HubError(
                        412, "A commit has happened since. Please refresh and try again."
                    )
            snap = self.snapshot(head)
            files = {e.path: ("100644", e.oid) for e in snap.files()}
            for op in operations:
                key, value = op["key"], op["value"]
                path = _check_path(
                    value.get("path", ""), allow_trailing_slash=key == "deletedFolder"
                )
                if key == "file":
                    if value.get("encoding", "base64") != "base64":
                        raise HubError(400, f"Unsupported encoding {value.get('encoding')!r}")
                    content = base64.b64decode(value.get("content", ""))
                    files[path] = ("100644", self.write_blob(content))
                elif key == "lfsFile":
                    oid = str(value.get("oid", ""))
                    if value.get("algo", "sha256") != "sha256" or not SHA256_RE.match(oid):
                        raise HubError(400, f"Invalid LFS oid for {path}")
                    stored = lfs_dir / oid
                    if not stored.is_file():
                        raise HubError(422, f"LFS object {oid} for {path} was not uploaded")
                    size = stored.stat().st_size
                    if "size" in value and int(value["size"]) != size:
                        raise HubError(
                            422, f"LFS object {oid} for {path} has size {size}, not {value['size']}"
                        )
                    files[path] = ("100644", self.write_blob(lfs_pointer(oid, size)))
                elif key == "deletedFile":
                    if path not in files:
                        raise HubError(
                            404,
                            f"A file with this name doesn't exist: {path}",
                            code="EntryNotFound",
                        )
                    del files[path]
                elif key == "deletedFolder":
                    prefix = path.rstrip("/") + "/"
                    matched = [p for p in files if p.startswith(prefix)]
                    if not matched:
                        raise HubError(
                            404,
                            f"A folder with this name doesn't exist: {path}",
                            code="EntryNotFound",
                        )
                    for p in matched:
                        del files[p]
                else:
                    raise HubError(400, f"Unsupported commit operation {key!r}")
            _check_no_file_directory_clash(files)
            message = summary if not description else f"{summary}\n\n{description}"
            return self._commit_tree(files, head, message, branch)


def _check_path(path: str, allow_trailing_slash: bool = False) -> str:
    if allow_trailing_slash:
        path = path.rstrip("/")
    parts = path.split("/")
    if (
        not path
        or path.startswith("/")
        or any(part in ("", ".", "..") for part in parts)
        or ".git" in parts
        or "\x00" in path
    ):
        raise HubError(400, f"Invalid path in repo: {path!r}")
    return path


def _check_no_file_directory_clash(files: dict[str, Any]) -> None:
    for path in files:
        parent = path
        while "/" in parent:
            parent = parent.rsplit("/", 1)[0]
            if parent in files:
                raise HubError(400, f"Cannot create {path!r}: {parent!r} is a file")


def _gitattributes_lfs_patterns(content: str) -> list[str]:
    patterns = []
    for line in content.splitlines():
        parts = line.split()
        if len(parts) >= 2 and not parts[0].startswith("#") and "filter=lfs" in parts[1:]:
            patterns.append(parts[0])
    return patterns


def _match_pattern(pattern: str, path: str) -> bool:
    anchored = pattern.startswith("/")
    pattern = pattern.lstrip("/")
    if pattern.endswith("/"):
        pattern = pattern.rstrip("/")
        # a directory pattern matches everything below that directory
        parts = path.split("/")[:-1]
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if anchored or "/" in pattern:
            return any(fnmatch.fnmatchcase(p, pattern) for p in prefixes)
        return any(fnmatch.fnmatchcase(p.rsplit("/", 1)[-1], pattern) for p in prefixes)
    if "/" in pattern or anchored:
        return fnmatch.fnmatchcase(path, pattern.replace("**/", "*").replace("/**", "/*"))
    return fnmatch.fnmatchcase(path.rsplit("/", 1)[-1], pattern) or fnmatch.fnmatchcase(
        path, pattern
    )


def _gitignored(gitignore: str | None, path: str) -> bool:
    if not gitignore:
        return False
    ignored = False
    for line in gitignore.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        if negate:
            line = line[1:]
        if _match_pattern(line, path):
            ignored = not negate
    return ignored


# --------------------------------------------------------------------------------------------------
# Fault injection and request log
# --------------------------------------------------------------------------------------------------


class RequestRecord(NamedTuple):
    """One request seen by the server. ``status`` is None when the connection was dropped."""

    method: str
    path: str
    status: int | None
    query: str = ""


@dataclass
class Fault:
    """Make the next ``times`` requests matching ``method``/``path_regex`` fail.

    ``kind`` is ``"drop"`` (close the socket without answering), ``"delay"`` (sleep ``delay`` seconds,
    then answer normally) or an HTTP status code such as ``"500"``/``503``. ``times=None`` means forever.
    """

    method: str | None
    path_regex: str
    kind: str
    times: int | None = 1
    delay: float = 0.0
    hits: int = 0
    _regex: re.Pattern = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.kind = str(self.kind).lower()
        if self.kind not in ("drop", "delay") and not re.fullmatch(r"[1-5][0-9][0-9]", self.kind):
            raise ValueError(
                f"Unknown fault kind {self.kind!r}: use 'drop', 'delay' or an HTTP status code"
            )
        self.method = self.method.upper() if self.method else None
        self._regex = re.compile(self.path_regex)

    @property
    def remaining(self) -> int | None:
        return None if self.times is None else max(self.times - self.hits, 0)

    def matches(self, method: str, path: str) -> bool:
        if self.times is not None and self.hits >= self.times:
            return False
        if self.method is not None and self.method != method:
            return False
        return self._regex.search(path) is not None


# --------------------------------------------------------------------------------------------------
# HTTP layer
# --------------------------------------------------------------------------------------------------


class _Response(Exception):
    """Raised to short-circuit a handler with a complete response."""


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "hubsim/1.0"
    timeout = 300
    hub: HubServer  # set on the subclass created by HubServer

    # --- plumbing ---------------------------------------------------------------------------------
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        logger.debug("%s - %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        self._handle("GET")

    def do_HEAD(self) -> None:
        self._handle("HEAD")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                line = self.rfile.readline(65537)
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline(65537)
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _handle(self, method: str) -> None:
        hub = self.hub
        split = urlsplit(self.path)
        self.raw_path, self.query_string = split.path, split.query
        self.query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        self.method = method
        self.status: int | None = None
        self._sent = False
        try:
            self.body = self._read_body()
        except (ValueError, OSError):
            self.close_connection = True
            self._record(None)
            return
        fault = hub._take_fault(method, self.raw_path)
        if fault is not None:
            if fault.delay:
                time.sleep(fault.delay)
            if fault.kind == "drop":
                self.close_connection = True
                self._record(None)
                with contextlib.suppress(OSError):
                    self.connection.shutdown(socket.SHUT_RDWR)
                return
            if fault.kind != "delay":
                self._send_json({"error": f"Injected fault ({fault.kind})"}, status=int(fault.kind))
                return
        try:
            self.user = self._authenticate()
            self._route(method, self.raw_path)
            if not self._sent:
                raise HubError(404, "Not Found")
        except _Response:
            pass
        except HubError as err:
            self._send_error(err)
        except Exception as err:  # pragma: no cover - server bug or client gone
            if self._sent:  # failed while writing the response: give up on this connection
                self.close_connection = True
                return
            logger.error(
                "hubsim: error handling %s %s\n%s", method, self.raw_path, traceback.format_exc()
            )
            self._send_error(HubError(500, f"Internal error: {type(err).__name__}: {err}"))

    def _record(self, status: int | None) -> None:
        self.status = status
        self.hub._record(RequestRecord(self.method, self.raw_path, status, self.query_string))

    def _send(
        self,
        status: int,
        body: bytes = b"",
        content_type: str = "application/json; charset=utf-8",
        headers: dict[str, str] | None = None,
    ) -> None:
        # Log before answering, so that a client that got the answer always finds it in the log.
        self._record(status)
        self._sent = True
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.method != "HEAD" and body:
            self.wfile.write(body)

    def _send_json(
        self, payload: Any, status: int = 200, headers: dict[str, str] | None = None
    ) -> None:
        self._send(status, json.dumps(payload).encode(), headers=headers)

    def _send_error(self, err: HubError) -> None:
        headers = dict(err.headers)
        safe_message = (
            err.message.encode("ascii", errors="replace").decode().replace("\n", " ")[:1000]
        )
        headers["X-Error-Message"] = safe_message
        if err.code:
            headers["X-Error-Code"] = err.code
        self._send_json({"error": err.message, **err.extra}, status=err.status, headers=headers)

    def _json_body(self) -> Any:
        if not self.body:
            return {}
        try:
            return json.loads(self.body)
        except ValueError as exc:
            raise HubError(400, f"Invalid JSON body: {exc}") from exc

    @property
    def base_url(self) -> str:
        host = self.headers.get("Host") or f"{self.hub.host}:{self.hub.port}"
        return f"http://{host}"

    # --- auth -------------------------------------------------------------------------------------
    def _authenticate(self) -> str | None:
        header = self.headers.get("Authorization")
        if not header:
            return None
        scheme, _, token = header.partition(" ")
        if scheme.lower() == "bearer" and secrets.compare_digest(token.strip(), self.hub.token):
            return self.hub.user
        raise HubError(401, "Invalid credentials in Authorization header")

    def _repo(self, repo_type: str, ns: str, name: str, write: bool = False) -> GitRepo:
        repo = self.hub._get_repo(repo_type, f"{unquote(ns)}/{unquote(name)}")
        if repo is None or (repo.private and self.user is None):
            raise repo_not_found()
        if write and self.user is None:
            raise HubError(401, "You must be authenticated to write to this repository")
        return repo

    def _require_user(self) -> str:
        if self.user is None:
            raise HubError(401, "You must be authenticated to access this resource")
        return self.user

    # --- routing ----------------------------------------------------------------------------------
    def _route(self, method: str, raw_path: str) -> None:
        segs = raw_path.split("/")[1:]
        if segs and segs[-1] == "" and len(segs) > 1:
            segs = segs[:-1]
        if segs and segs[0] == "api":
            return self._route_api(method, segs[1:])
        if segs[:2] == ["_hubsim", "lfs-upload"] and len(segs) == 3 and method == "PUT":
            return self._lfs_upload(unquote(segs[2]))
        if segs[:2] == ["_hubsim", "lfs-download"] and len(segs) == 3 and method in ("GET", "HEAD"):
            return self._lfs_download(unquote(segs[2]))
        repo_type = "model"
        if segs and segs[0] in ("datasets", "spaces"):
            repo_type = PLURAL_TO_TYPE[segs[0]]
            segs = segs[1:]
        if len(segs) >= 2 and segs[1].endswith(".git"):
            ns, name, rest = segs[0], segs[1][: -len(".git")], segs[2:]
            if rest == ["info", "lfs", "objects", "batch"] and method == "POST":
                return self._lfs_batch(repo_type, ns, name)
            if rest == ["info", "lfs", "objects", "verify"] and method == "POST":
                return self._lfs_verify(repo_type, ns, name)
            return
        if len(segs) >= 4 and segs[2] == "resolve" and method in ("GET", "HEAD"):
            revision, rest = _take_revision(segs[3:])
            return self._resolve(
                repo_type, segs[0], segs[1], revision, "/".join(unquote(s) for s in rest)
            )

    def _route_api(self, method: str, segs: list[str]) -> None:
        if segs == ["whoami-v2"] and method in ("GET", "HEAD"):
            return self._whoami()
        if segs == ["validate-yaml"] and method == "POST":
            return self._validate_yaml()
        if segs == ["repos", "create"] and method == "POST":
            return self._create_repo()
        if segs == ["repos", "delete"] and method == "DELETE":
            return self._delete_repo()
        if not segs or segs[0] not in PLURAL_TO_TYPE:
            return
        repo_type = PLURAL_TO_TYPE[segs[0]]
        if len(segs) == 1 and method in ("GET", "HEAD"):
            return self._list_repos(repo_type)
        if len(segs) < 3:
            return
        ns, name, rest = segs[1], segs[2], segs[3:]
        action = rest[0] if rest else None
        if action is None and method in ("GET", "HEAD"):
            return self._repo_info(repo_type, ns, name, None)
        if action == "revision" and len(rest) >= 2 and method in ("GET", "HEAD"):
            revision, _ = _take_revision(rest[1:])
            return self._repo_info(repo_type, ns, name, revision)
        if action == "settings" and len(rest) == 1 and method == "PUT":
            return self._settings(repo_type, ns, name)
        if action == "refs" and len(rest) == 1 and method in ("GET", "HEAD"):
            return self._list_refs(repo_type, ns, name)
        if action == "tree" and len(rest) >= 2 and method in ("GET", "HEAD"):
            revision, path_segs = _take_revision(rest[1:])
            return self._tree(
                repo_type, ns, name, revision, "/".join(unquote(s) for s in path_segs)
            )
        if action == "commits" and len(rest) >= 2 and method in ("GET", "HEAD"):
            revision, _ = _take_revision(rest[1:])
            return self._commits(repo_type, ns, name, revision)
        if action == "paths-info" and len(rest) >= 2 and method == "POST":
            revision, _ = _take_revision(rest[1:])
            return self._paths_info(repo_type, ns, name, revision)
        if action == "preupload" and len(rest) >= 2 and method == "POST":
            revision, _ = _take_revision(rest[1:])
            return self._preupload(repo_type, ns, name, revision)
        if action == "commit" and len(rest) >= 2 and method == "POST":
            revision, _ = _take_revision(rest[1:])
            return self._commit(repo_type, ns, name, revision)
        if action == "branch" and len(rest) == 2 and method in ("POST", "DELETE"):
            branch = unquote(rest[1])
            if method == "POST":
                return self._create_branch(repo_type, ns, name, branch)
            return self._delete_branch(repo_type, ns, name, branch)
        if action == "tag" and len(rest) == 2 and method in ("POST", "DELETE"):
            if method == "POST":
                return self._create_tag(repo_type, ns, name, unquote(rest[1]))
            return self._delete_tag(repo_type, ns, name, unquote(rest[1]))

    # --- account ----------------------------------------------------------------------------------
    def _whoami(self) -> None:
        user = self._require_user()
        self._send_json(
            {
                "type": "user",
                "id": hashlib.sha1(user.encode()).hexdigest()[:24],
                "name": user,
                "fullname": user,
                "email": f"{user}@hubsim.local",
                "emailVerified": True,
                "canPay": False,
                "isPro": False,
                "periodEnd": None,
                "avatarUrl": "",
                "orgs": [],
                "auth": {
                    "type": "access_token",
                    "accessToken": {"displayName": "hubsim", "role": "write"},
                },
            }
        )

    def _validate_yaml(self) -> None:
        payload = self._json_body()
        content = str(payload.get("content", ""))
        errors: list[dict[str, str]] = []
        match = re.match(r"^---\s*\n(.*?)\n---\s*(\n|$)", content, flags=re.S)
        if match:
            try:
                import yaml  # available wherever huggingface_hub is installed

                data = yaml.safe_load(match.group(1))
                if data is not None and not isinstance(data, dict):
                    errors.append({"message": "YAML metadata must be a mapping"})
            except ImportError:
                pass
            except Exception as exc:  # yaml.YAMLError
                errors.append({"message": f"Invalid YAML: {exc}"})
        status = 400 if errors else 200
        self._send_json({"errors": errors, "warnings": []}, status=status)

    # --- repos ------------------------------------------------------------------------------------
    def _repo_url(self, repo: GitRepo) -> str:
        return f"{self.base_url}/{URL_PREFIXES[repo.repo_type]}{repo.repo_id}"

    def _create_repo(self) -> None:
        user = self._require_user()
        payload = self._json_body()
        name = str(payload.get("name") or "")
        namespace = payload.get("organization") or user
        repo_type = payload.get("type") or "model"
        if repo_type not in URL_PREFIXES:
            raise HubError(400, f"Invalid repo type {repo_type!r}")
        if (
            not REPO_NAME_RE.match(name)
            or not REPO_NAME_RE.match(str(namespace))
            or ".." in name
            or "--" in name
        ):
            raise HubError(400, f"Invalid repo name {namespace}/{name}")
        visibility = payload.get("visibility")
        private = (
            bool(payload.get("private"))
            if visibility is None
            else visibility in ("private", "protected")
        )
        repo_id = f"{namespace}/{name}"
        with self.hub._repos_lock:
            repo = self.hub._get_repo(repo_type, repo_id, create=True)
            assert repo is not None
            if repo.exists():
                raise HubError(
                    409,
                    f"You already created this {repo_type} repo",
                    extra={"url": self._repo_url(repo)},
                )
            repo.init(
                private=private, initial_files={".gitattributes": DEFAULT_GITATTRIBUTES.encode()}
            )
        self._send_json({"url": self._repo_url(repo), "name": repo_id, "id": repo.meta["_id"]})

    def _delete_repo(self) -> None:
        user = self._require_user()
        payload = self._json_body()
        repo_type = payload.get("type") or "model"
        if repo_type not in URL_PREFIXES:
            raise HubError(400, f"Invalid repo type {repo_type!r}")
        repo_id = f"{payload.get('organization') or user}/{payload.get('name')}"
        with self.hub._repos_lock:
            repo = self.hub._get_repo(repo_type, repo_id)
            if repo is None:
                raise repo_not_found()
            with repo.lock:
                shutil.rmtree(repo.git_dir, ignore_errors=True)
                repo.meta_path.unlink(missing_ok=True)
            self.hub._forget_repo(repo_type, repo_id)
        self._send_json({})

    def _settings(self, repo_type: str, ns: str, name: str) -> None:
        repo = self._repo(repo_type, ns, name, write=True)
        payload = self._json_body()
        with repo.lock:
            meta = repo.meta
            if "private" in payload:
                meta["private"] = bool(payload["private"])
            if "visibility" in payload:
                meta["private"] = payload["visibility"] in ("private", "protected")
            if "gated" in payload:
                meta["gated"] = payload["gated"]
            repo.write_meta(meta)
        self._send_json({})

    def _repo_json(self, repo: GitRepo, commit: str, blobs: bool) -> dict[str, Any]:
        meta = repo.meta
        snap = repo.snapshot(commit)
        last = repo.log(commit, max_count=1)[0]
        siblings = []
        used = 0
        for entry in snap.files():
            used += entry.size
            sibling: dict[str, Any] = {"rfilename": entry.path}
            if blobs:
                sibling["size"] = entry.size
                sibling["blobId"] = entry.oid
                if entry.lfs_oid:
                    sibling["lfs"] = {
                        "size": entry.size,
                        "sha256": entry.lfs_oid,
                        "pointerSize": entry.lfs_pointer_size,
                    }
            siblings.append(sibling)
        namespace = repo.repo_id.split("/")[0]
        return {
            "_id": meta["_id"],
            "id": repo.repo_id,
            "author": namespace,
            "sha": commit,
            "lastModified": iso_date(last.timestamp),
            "createdAt": meta["createdAt"],
            "private": bool(meta.get("private")),
            "gated": meta.get("gated", False),
            "disabled": False,
            "downloads": 0,
            "likes": 0,
            "tags": [],
            "siblings": siblings,
            "usedStorage": used,
        }

    def _repo_info(self, repo_type: str, ns: str, name: str, revision: str | None) -> None:
        repo = self._repo(repo_type, ns, name)
        revision = revision if revision is not None else DEFAULT_BRANCH
        commit = repo.resolve(revision)
        if commit is None:
            raise revision_not_found(revision)
        self._send_json(self._repo_json(repo, commit, blobs=_truthy(self.query.get("blobs"))))

    def _list_repos(self, repo_type: str) -> None:
        author = self.query.get("author")
        search = (self.query.get("search") or "").lower()
        limit = int(self.query.get("limit") or 0) or None
        results = []
        for repo in self.hub._all_repos(repo_type):
            if repo.private and self.user is None:
                continue
            if author and repo.repo_id.split("/")[0] != author:
                continue
            if search and search not in repo.repo_id.lower():
                continue
            head = repo.branch_head(DEFAULT_BRANCH)
            meta = repo.meta
            results.append(
                {
                    "_id": meta["_id"],
                    "id": repo.repo_id,
                    "author": repo.repo_id.split("/")[0],
                    "sha": head,
                    "private": bool(meta.get("private")),
                    "createdAt": meta["createdAt"],
                    "downloads": 0,
                    "likes": 0,
                    "tags": [],
                }
            )
            if limit and len(results) >= limit:
                break
        self._send_json(results)

    # --- refs -------------------------------------------------------------------------------------
    def _list_refs(self, repo_type: str, ns: str, name: str) -> None:
        repo = self._repo(repo_type, ns, name)
        branches, tags = [], []
        for ref, target in sorted(repo.refs().items()):
            if ref.startswith("refs/heads/"):
                branches.append(
                    {"name": ref[len("refs/heads/") :], "ref": ref, "targetCommit": target}
                )
            elif ref.startswith("refs/tags/"):
                tags.append({"name": ref[len("refs/tags/") :], "ref": ref, "targetCommit": target})
        payload: dict[str, Any] = {"branches": branches, "converts": [], "tags": tags}
        if _truthy(self.query.get("include_prs")):
            payload["pullRequests"] = []
        self._send_json(payload)

    def _create_branch(self, repo_type: str, ns: str, name: str, branch: str) -> None:
        repo = self._repo(repo_type, ns, name, write=True)
        payload = self._json_body()
        if not repo.is_valid_branch_name(branch):
            raise HubError(400, f"Invalid reference for a branch: {branch}")
        with repo.lock:
            if repo.branch_head(branch) is not None:
                raise HubError(409, f"Reference already exists: refs/heads/{branch}")
            starting_point = payload.get("startingPoint") or DEFAULT_BRANCH
            commit = repo.resolve(starting_point)
            if commit is None:
                raise revision_not_found(starting_point)
            if payload.get("emptyBranch"):
                raise HubError(400, "Empty branches are not supported by hubsim")
            repo.update_ref(f"refs/heads/{branch}", commit, None)
        self._send_json({})

    def _delete_branch(self, repo_type: str, ns: str, name: str, branch: str) -> None:
        repo = self._repo(repo_type, ns, name, write=True)
        if branch == DEFAULT_BRANCH:
            raise HubError(403, f"Cannot delete the default branch {DEFAULT_BRANCH!r}")
        with repo.lock:
            if repo.branch_head(branch) is None:
                raise revision_not_found(branch)
            repo.delete_ref(f"refs/heads/{branch}")
        self._send_json({})

    def _create_tag(self, repo_type: str, ns: str, name: str, revision: str) -> None:
        repo = self._repo(repo_type, ns, name, write=True)
        payload = self._json_body()
        tag = str(payload.get("tag") or "")
        proc = subprocess.run(["git", "check-ref-format", f"refs/tags/{tag}"], capture_output=True)
        if not tag or tag.startswith("-") or proc.returncode != 0:
            raise HubError(400, f"Invalid tag name: {tag!r}")
        with repo.lock:
            commit = repo.resolve(revision)
            if commit is None:
                raise revision_not_found(revision)
            if f"refs/tags/{tag}" in repo.refs():
                raise HubError(409, f"Tag {tag} already exists")
            repo.create_tag(tag, commit, payload.get("message"))
        self._send_json({})

    def _delete_tag(self, repo_type: str, ns: str, name: str, tag: str) -> None:
        repo = self._repo(repo_type, ns, name, write=True)
        with repo.lock:
            if f"refs/tags/{tag}" not in repo.refs():
                raise revision_not_found(tag)
            repo.delete_ref(f"refs/tags/{tag}")
        self._send_json({})

    # --- listing ----------------------------------------------------------------------------------
    def _resolve_commit(self, repo: GitRepo, revision: str) -> str:
        commit = repo.resolve(revision)
        if commit is None:
            raise revision_not_found(revision)
        return commit

    def _entry_json(self, repo: GitRepo, entry: Entry, commit: str, expand: bool) -> dict[str, Any]:
        item: dict[str, Any] = {
            "type": entry.type,
            "oid": entry.oid,
            "size": entry.size,
            "path": entry.path,
        }
        if entry.lfs_oid:
            item["lfs"] = {
                "oid": entry.lfs_oid,
                "size": entry.size,
                "pointerSize": entry.lfs_pointer_size,
            }
        if expand:
            record = repo.last_commits(commit).get(entry.path)
            if record is not None:
                item["lastCommit"] = {
                    "id": record.oid,
                    "title": record.title,
                    "date": iso_date(record.timestamp),
                }
            if entry.type == "file":
                item["securityFileStatus"] = {
                    "status": "safe",
                    "avScan": {"virusFound": False, "virusNames": None},
                    "pickleImportScan": None,
                }
        return item

    def _paginate(
        self, items: list[Any], page_size: int, cursor_param: str = "cursor"
    ) -> tuple[list[Any], dict[str, str]]:
        try:
            start = int(self.query.get(cursor_param) or 0)
        except ValueError as exc:
            raise HubError(400, f"Invalid {cursor_param}") from exc
        page = items[start : start + page_size]
        headers = {}
        if start + page_size < len(items):
            params = dict(self.query)
            params[cursor_param] = str(start + page_size)
            path = urlsplit(self.path).path
            headers["Link"] = f'<{self.base_url}{path}?{urlencode(params)}>; rel="next"'
        return page, headers

    def _tree(self, repo_type: str, ns: str, name: str, revision: str, path: str) -> None:
        repo = self._repo(repo_type, ns, name)
        commit = self._resolve_commit(repo, revision)
        snap = repo.snapshot(commit)
        path = path.strip("/")
        if path and (path not in snap.entries or snap.entries[path].type != "directory"):
            raise entry_not_found(path, commit)
        recursive = _truthy(self.query.get("recursive"))
        expand = _truthy(self.query.get("expand"))
        entries = snap.descendants(path) if recursive else snap.children(path)
        page, headers = self._paginate(entries, TREE_PAGE_SIZE_EXPAND if expand else TREE_PAGE_SIZE)
        self._send_json([self._entry_json(repo, e, commit, expand) for e in page], headers=headers)

    def _paths_info(self, repo_type: str, ns: str, name: str, revision: str) -> None:
        repo = self._repo(repo_type, ns, name)
        commit = self._resolve_commit(repo, revision)
        content_type = self.headers.get("Content-Type", "")
        if "json" in content_type:
            payload = self._json_body()
            paths = payload.get("paths") or []
            expand = bool(payload.get("expand"))
        else:
            form = parse_qs(self.body.decode(), keep_blank_values=True)
            paths = form.get("paths", [])
            expand = _truthy((form.get("expand") or ["false"])[-1])
        snap = repo.snapshot(commit)
        result = []
        for p in paths:
            entry = snap.entries.get(str(p).strip("/"))
            if entry is not None:
                result.append(self._entry_json(repo, entry, commit, expand))
        self._send_json(result)

    def _commits(self, repo_type: str, ns: str, name: str, revision: str) -> None:
        repo = self._repo(repo_type, ns, name)
        commit = self._resolve_commit(repo, revision)
        items = [
            {
                "id": c.oid,
                "title": c.title,
                "message": c.message,
                "authors": [{"user": c.author, "avatar": None}],
                "date": iso_date(c.timestamp),
            }
            for c in repo.log(commit)
        ]
        try:
            limit = min(int(self.query.get("limit") or COMMITS_PAGE_SIZE), 1000)
        except ValueError as exc:
            raise HubError(400, "Invalid limit") from exc
        try:
            page_num = int(self.query.get("p") or 0)
        except ValueError as exc:
            raise HubError(400, "Invalid page") from exc
        page = items[page_num * limit : (page_num + 1) * limit]
        headers = {}
        if (page_num + 1) * limit < len(items):
            params = dict(self.query)
            params["p"] = str(page_num + 1)
            path = urlsplit(self.path).path
            headers["Link"] = f'<{self.base_url}{path}?{urlencode(params)}>; rel="next"'
        self._send_json(page, headers=headers)

    # --- uploads ----------------------------------------------------------------------------------
    def _writable_branch(self, repo: GitRepo, revision: str) -> str:
        if _truthy(self.query.get("create_pr")):
            raise HubError(400, "Pull requests are not supported by hubsim")
        head = repo.branch_head(revision)
        if head is None:
            if repo.resolve(revision) is not None:
                raise HubError(400, f"Revision {revision!r} is not a branch")
            raise revision_not_found(revision)
        return head

    def _preupload(self, repo_type: str, ns: str, name: str, revision: str) -> None:
        repo = self._repo(repo_type, ns, name, write=True)
        head = self._writable_branch(repo, revision)
        payload = self._json_body()
        snap = repo.snapshot(head)
        gitattributes = snap.entries.get(".gitattributes")
        lfs_patterns = _gitattributes_lfs_patterns(
            repo.read_blob(gitattributes.oid).decode(errors="replace") if gitattributes else ""
        )
        gitignore = payload.get("gitIgnore")
        if gitignore is None and ".gitignore" in snap.entries:
            gitignore = repo.read_blob(snap.entries[".gitignore"].oid).decode(errors="replace")
        files = []
        for item in payload.get("files", []):
            path = _check_path(str(item.get("path", "")))
            size = int(item.get("size") or 0)
            sample = base64.b64decode(item.get("sample") or "")
            is_lfs = size > REGULAR_FILE_MAX_SIZE or any(
                _match_pattern(p, path) for p in lfs_patterns
            )
            is_lfs = is_lfs or (size > 0 and b"\x00" in sample)
            existing = snap.entries.get(path)
            oid = None
            if existing is not None and existing.type == "file":
                oid = existing.lfs_oid or existing.oid
            files.append(
                {
                    "path": path,
                    "uploadMode": "lfs" if is_lfs else "regular",
                    "shouldIgnore": _gitignored(gitignore, path),
                    "oid": oid,
                }
            )
        self._send_json({"files": files, "commitOid": head})

    def _commit(self, repo_type: str, ns: str, name: str, revision: str) -> None:
        repo = self._repo(repo_type, ns, name, write=True)
        self._writable_branch(repo, revision)
        lines = [line for line in self.body.split(b"\n") if line.strip()]
        try:
            items = [json.loads(line) for line in lines]
        except ValueError as exc:
            raise HubError(400, f"Invalid NDJSON body: {exc}") from exc
        if not items or items[0].get("key") != "header":
            raise HubError(400, "The first line of the commit payload must be the header")
        header = items[0].get("value") or {}
        summary = str(header.get("summary") or "").strip()
        if not summary:
            raise HubError(400, "Commit summary is required")
        commit = repo.commit(
            branch=revision,
            operations=items[1:],
            summary=summary,
            description=str(header.get("description") or ""),
            parent_commit=header.get("parentCommit"),
            lfs_dir=self.hub.lfs_dir,
        )
        self._send_json(
            {
                "success": True,
                "commitOid": commit,
                "commitUrl": f"{self._repo_url(repo)}/commit/{commit}",
                "hookOutput": "",
                "pullRequestUrl": None,
            }
        )

    # --- LFS --------------------------------------------------------------------------------------
    def _lfs_batch(self, repo_type: str, ns: str, name: str) -> None:
        payload = self._json_body()
        operation = payload.get("operation")
        repo = self._repo(repo_type, ns, name, write=operation == "upload")
        if operation not in ("upload", "download"):
            raise HubError(400, f"Unsupported LFS operation {operation!r}")
        objects = []
        for obj in payload.get("objects", []):
            oid, size = str(obj.get("oid", "")), obj.get("size")
            if not SHA256_RE.match(oid) or not isinstance(size, int) or size < 0:
                objects.append(
                    {
                        "oid": oid,
                        "size": size if isinstance(size, int) else 0,
                        "error": {"code": 422, "message": "Invalid oid or size"},
                    }
                )
                continue
            stored = self.hub.lfs_dir / oid
            present = stored.is_file() and stored.stat().st_size == size
            item: dict[str, Any] = {"oid": oid, "size": size, "authenticated": True}
            if operation == "upload" and not present:
                nonce = self.hub._new_upload_nonce(oid, size)
                item["actions"] = {
                    "upload": {
                        "href": f"{self.base_url}/_hubsim/lfs-upload/{nonce}",
                        "expires_in": 86400,
                    },
                    "verify": {
                        "href": f"{self._repo_url(repo)}.git/info/lfs/objects/verify",
                        "expires_in": 86400,
                    },
                }
            elif operation == "download":
                if not present:
                    item["error"] = {"code": 404, "message": "Object does not exist"}
                else:
                    item["actions"] = {
                        "download": {
                            "href": f"{self.base_url}/_hubsim/lfs-download/{oid}",
                            "expires_in": 86400,
                        }
                    }
            objects.append(item)
        body = json.dumps({"transfer": "basic", "objects": objects, "hash_algo": "sha256"}).encode()
        self._send(200, body, content_type="application/vnd.git-lfs+json")

    def _lfs_verify(self, repo_type: str, ns: str, name: str) -> None:
        self._repo(repo_type, ns, name, write=True)
        payload = self._json_body()
        oid, size = str(payload.get("oid", "")), payload.get("size")
        stored = self.hub.lfs_dir / oid if SHA256_RE.match(oid) else None
        if stored is None or not stored.is_file():
            raise HubError(404, f"LFS object {oid} not found")
        if size is not None and stored.stat().st_size != int(size):
            raise HubError(
                422, f"LFS object {oid} has size {stored.stat().st_size}, expected {size}"
            )
        self._send_json({"success": True})

    def _lfs_upload(self, nonce: str) -> None:
        expected = self.hub._upload_nonces.get(nonce)
        if expected is None:
            raise HubError(403, "Invalid or expired upload URL")
        oid, size = expected
        if len(self.body) != size or hashlib.sha256(self.body).hexdigest() != oid:
            raise HubError(400, "Uploaded content does not match the announced oid/size")
        target = self.hub.lfs_dir / oid
        if not target.is_file():
            fd, tmp = tempfile.mkstemp(dir=self.hub.lfs_dir, prefix="tmp_upload_")
            with os.fdopen(fd, "wb") as f:
                f.write(self.body)
            os.replace(tmp, target)
        self._send(200, b"", headers={"ETag": f'"{hashlib.md5(self.body).hexdigest()}"'})

    def _lfs_download(self, oid: str) -> None:
        stored = self.hub.lfs_dir / oid if SHA256_RE.match(oid) else None
        if stored is None or not stored.is_file():
            raise HubError(404, "Object does not exist")
        self._send_content(stored.read_bytes(), {"ETag": f'"{oid}"'})

    # --- downloads --------------------------------------------------------------------------------
    def _resolve(self, repo_type: str, ns: str, name: str, revision: str, path: str) -> None:
        repo = self._repo(repo_type, ns, name)
        commit = self._resolve_commit(repo, revision)
        entry = repo.snapshot(commit).entries.get(path)
        if entry is None or entry.type != "file":
            raise entry_not_found(path, commit)
        headers = {"X-Repo-Commit": commit, "Accept-Ranges": "bytes"}
        if entry.lfs_oid:
            stored = self.hub.lfs_dir / entry.lfs_oid
            if not stored.is_file():
                raise HubError(500, f"LFS object {entry.lfs_oid} is missing from the store")
            data = stored.read_bytes()
            headers.update(
                {
                    "ETag": f'"{entry.lfs_oid}"',
                    "X-Linked-Etag": f'"{entry.lfs_oid}"',
                    "X-Linked-Size": str(entry.size),
                }
            )
        else:
            data = repo.read_blob(entry.oid)
            headers["ETag"] = f'"{entry.oid}"'
        self._send_content(data, headers, content_type=_guess_type(path))

    def _send_content(
        self, data: bytes, headers: dict[str, str], content_type: str = "application/octet-stream"
    ) -> None:
        range_header = self.headers.get("Range")
        size = len(data)
        if range_header and self.method == "GET":
            match = re.fullmatch(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", range_header)
            if match and (match.group(1) or match.group(2)):
                start_s, end_s = match.groups()
                if start_s:
                    start = int(start_s)
                    end = min(int(end_s), size - 1) if end_s else size - 1
                else:
                    start, end = max(size - int(end_s), 0), size - 1
                if start >= size or start > end:
                    headers = {**headers, "Content-Range": f"bytes */{size}"}
                    raise _send_then_stop(self, 416, b"", headers)
                headers = {**headers, "Content-Range": f"bytes {start}-{end}/{size}"}
                self._send(206, data[start : end + 1], content_type=content_type, headers=headers)
                return
        self._send(200, data, content_type=content_type, headers=headers)


def _send_then_stop(
    handler: _Handler, status: int, body: bytes, headers: dict[str, str]
) -> _Response:
    handler._send(status, body, content_type="text/plain", headers=headers)
    return _Response()


def _guess_type(path: str) -> str:
    lower = path.lower()
    for suffix, ctype in (
        (".json", "application/json"),
        (".md", "text/markdown; charset=utf-8"),
        (".txt", "text/plain; charset=utf-8"),
        (".csv", "text/csv; charset=utf-8"),
    ):
        if lower.endswith(suffix):
            return ctype
    return "application/octet-stream"


def _take_revision(segs: list[str]) -> tuple[str, list[str]]:
    """Split ``[rev, *path]`` URL segments; unquoted special refs (``refs/pr/1``) span 3 segments."""
    if len(segs) >= 3 and segs[0] == "refs" and segs[1] in ("pr", "convert", "heads", "tags"):
        return f"refs/{segs[1]}/{unquote(segs[2])}", segs[3:]
    return unquote(segs[0]), segs[1:]


class _ThreadingServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


# --------------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------------


class HubServer:
    """A Hugging Face Hub-compatible server backed by bare git repositories under ``data_dir``.

    Args:
        data_dir: where repositories (``repos/``) and LFS objects (``lfs/``) are stored. Reusing a
            directory keeps the repositories of a previous server.
        host / port: where to listen (``port=0`` picks a free port; see :attr:`url`).
        token: the only valid access token (``Authorization: Bearer <token>``).
        user: the user name the token belongs to; it may write to any namespace.
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        host: str = "127.0.0.1",
        port: int = 0,
        token: str = "hf_test_token",
        user: str = "tester",
    ):
        self.data_dir = Path(data_dir)
        self.repos_dir = self.data_dir / "repos"
        self.lfs_dir = self.data_dir / "lfs"
        self.repos_dir.mkdir(parents=True, exist_ok=True)
        self.lfs_dir.mkdir(parents=True, exist_ok=True)
        self.host = host
        self.port = port
        self.token = token
        self.user = user
        self.requests: list[RequestRecord] = []
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._repos_lock = threading.RLock()
        self._repos: dict[tuple[str, str], GitRepo] = {}
        self._upload_nonces: dict[str, tuple[str, int]] = {}
        self._httpd: _ThreadingServer | None = None
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:  # never show the token
        return (
            f"HubServer(url={self.url if self._httpd else None!r}, data_dir={str(self.data_dir)!r})"
        )

    # --- lifecycle --------------------------------------------------------------------------------
    def start(self) -> HubServer:
        if self._httpd is not None:
            return self
        handler = type("HubHandler", (_Handler,), {"hub": self})
        self._httpd = _ThreadingServer((self.host, self.port), handler)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="hubsim",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._httpd = None
        self._thread = None

    def __enter__(self) -> HubServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        host = self.host if self.host not in ("0.0.0.0", "") else "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    def client_env(
        self, hf_home: str | os.PathLike[str] | None = None, token: str | None = None
    ) -> dict[str, str]:
        """Environment variables pointing the real clients at this server (merge into ``os.environ``)."""
        env = {
            "HF_ENDPOINT": self.url,
            "HF_HUB_DISABLE_XET": "1",
            "HF_TOKEN": self.token if token is None else token,
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "HF_HUB_DISABLE_PROGRESS_BARS": "1",
            "HF_HUB_ETAG_TIMEOUT": "30",
            "HF_HUB_DOWNLOAD_TIMEOUT": "30",
        }
        if hf_home is not None:
            env["HF_HOME"] = str(hf_home)
            env["HF_DATASETS_CACHE"] = str(Path(hf_home) / "datasets")
        return env

    # --- faults / request log ---------------------------------------------------------------------
    def inject_fault(
        self,
        method: str | None = None,
        path_regex: str = ".*",
        kind: str | int = "500",
        times: int | None = 1,
        delay: float = 0.0,
    ) -> Fault:
        """Make the next ``times`` requests whose method and raw URL path match fail.

        ``kind``: ``"500"`` (or any HTTP status code) answers that status with a JSON error;
        ``"drop"`` closes the connection without answering; ``"delay"`` only sleeps ``delay``
        seconds. ``path_regex`` is searched (``re.search``) in the percent-encoded path, without
        the query string.
        """
        fault = Fault(
            method=method, path_regex=path_regex, kind=str(kind), times=times, delay=delay
        )
        with self._lock:
            self._faults.append(fault)
        return fault

    def reset_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    @property
    def faults(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path):
                    fault.hits += 1
                    return fault
        return None

    def _record(self, record: RequestRecord) -> None:
        with self._lock:
            self.requests.append(record)

    def clear_requests(self) -> None:
        with self._lock:
            self.requests.clear()

    def count_requests(
        self,
        method: str | None = None,
        path_regex: str | None = None,
        status: int | None | str = "any",
    ) -> int:
        """Count logged requests by method, path regex (``re.search``) and status (None: dropped)."""
        regex = re.compile(path_regex) if path_regex else None
        with self._lock:
            records = list(self.requests)
        return sum(
            1
            for r in records
            if (method is None or r.method == method.upper())
            and (regex is None or regex.search(r.path))
            and (status == "any" or r.status == status)
        )

    # --- repositories -----------------------------------------------------------------------------
    def _get_repo(self, repo_type: str, repo_id: str, create: bool = False) -> GitRepo | None:
        if repo_type not in URL_PREFIXES or repo_id.count("/") != 1:
            return None
        ns, name = repo_id.split("/")
        if not REPO_NAME_RE.match(ns) or not REPO_NAME_RE.match(name):
            return None
        key = (repo_type, repo_id)
        with self._repos_lock:
            repo = self._repos.get(key)
            if repo is None:
                repo = GitRepo(
                    self.repos_dir / TYPE_TO_PLURAL[repo_type],
                    repo_type,
                    repo_id,
                    author_name=self.user,
                    author_email=f"{self.user}@hubsim.local",
                )
                if not create and not repo.exists():
                    return None
                self._repos[key] = repo
        if not create and not repo.exists():
            return None
        return repo

    def _forget_repo(self, repo_type: str, repo_id: str) -> None:
        with self._repos_lock:
            self._repos.pop((repo_type, repo_id), None)

    def _all_repos(self, repo_type: str) -> list[GitRepo]:
        root = self.repos_dir / TYPE_TO_PLURAL[repo_type]
        repos = []
        if root.is_dir():
            for meta in sorted(root.glob("*/*.json")):
                repo = self._get_repo(repo_type, f"{meta.parent.name}/{meta.stem}")
                if repo is not None:
                    repos.append(repo)
        return repos

    def _new_upload_nonce(self, oid: str, size: int) -> str:
        nonce = secrets.token_urlsafe(24)
        with self._lock:
            self._upload_nonces[nonce] = (oid, size)
        return nonce

    # --- helpers for tests ------------------------------------------------------------------------
    def git_dir(self, repo_id: str, repo_type: str = "model") -> Path:
        """Path of the bare git repository backing ``repo_id`` (for assertions with ``git``)."""
        return self.repos_dir / TYPE_TO_PLURAL[repo_type] / f"{repo_id}.git"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run a Hugging Face Hub-compatible test server.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--token", default=os.environ.get("HUBSIM_TOKEN", "hf_test_token"))
    parser.add_argument("--user", default="tester")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(message)s")
    server = HubServer(
        args.data_dir, host=args.host, port=args.port, token=args.token, user=args.user
    ).start()
    print(
        f"hubsim listening on {server.url} (user {server.user!r}, data in {server.data_dir})",
        flush=True,
    )
    print(f"export HF_ENDPOINT={server.url} HF_HUB_DISABLE_XET=1", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()


# Environment variables that would make the clients ignore the server or skip the network.
SCRUBBED_ENV = (
    "HF_HUB_OFFLINE",
    "HF_DATASETS_OFFLINE",
    "TRANSFORMERS_OFFLINE",
    "HF_TOKEN",
    "HUGGING_FACE_HUB_TOKEN",
    "HF_TOKEN_PATH",
    "HF_HUB_CACHE",
    "HUGGINGFACE_HUB_CACHE",
    "HF_DATASETS_CACHE",
    "HF_HUB_DISABLE_XET",
)
