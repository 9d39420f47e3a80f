"""Round revisions on the Hugging Face Hub: one commit and one tag per round.

:class:`HubRevisions` is a :class:`~energizer_hf.revisions.local.LocalRevisions` that also
pushes: each round is one commit on the branch ``run_branch`` of a Hub dataset repository
(the Parquet data and the card together, in the layout of ``Dataset.push_to_hub``) with a
tag ``round-NNN`` on that commit. Hub calls are retried with exponential back-off
(:mod:`energizer_hf.retry`); a final failure raises :class:`HubSyncError` (the token is
never part of its message) and leaves the local revision intact, and :meth:`HubRevisions.sync`
later pushes only the rounds whose tag is missing. :meth:`HubRevisions.push_final` pushes
the final labelled set (to ``main``) and the final model with its card; :func:`push_run`
(``energizer-hf push``) does it all for a run directory. The token comes from ``token=``,
``HF_TOKEN`` or the stored login, never from a configuration file.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from energizer_hf.errors import EnergizerError
from energizer_hf.pool import ActivePool
from energizer_hf.retry import RetryError, RetryPolicy, call_with_retries
from energizer_hf.revisions.base import (
    DEFAULT_RUN_BRANCH,
    HubSyncError,
    RoundNotFoundError,
)
from energizer_hf.revisions.cards import hub_data_files, model_card, with_configs
from energizer_hf.revisions.hub_api import (
    DATA_FILE,
    card_meta,
    classify,
    http_status,
    load_hub_round,
    message_run_id,
    scrub,
    validate_branch,
    validate_repo_id,
)
from energizer_hf.revisions.local import LocalRevisions, fmt_rounds
from energizer_hf.revisions.rounds import dataset_meta, quiet_datasets
from energizer_hf.run import (
    CARD_FILE,
    META_KEY,
    RunDir,
    RunInfo,
    parse_round_tag,
    round_tag,
)

__all__ = ["HubRevisions", "PushResult"]

log = logging.getLogger(__name__)

@dataclass
class PushResult:
    """What :meth:`HubRevisions.push_final` pushed."""

    model_repo_id: str
    model_commit: str
    model_url: str
    dataset_repo_id: str | None = None
    dataset_commit: str | None = None
    dataset_url: str | None = None


# ---------------------------------------------------------------------- the store
class HubRevisions(LocalRevisions):
    """Local revisions, and each round pushed to a Hub dataset repository as a tagged commit.

    Args:
        repo_id: Hub dataset repository (``namespace/name``); ``None``: no dataset
            repository (local revisions; :meth:`push_final` pushes the model only).
        run_branch: branch that gets one commit per round (tags ``round-NNN`` point at them).
        private: create the repository as private (only when it does not exist yet).
        token: Hub token; ``None`` uses ``HF_TOKEN`` or the stored login.
        retries: extra attempts after a retryable failure (server errors, dropped
            connections); authentication and validation errors are not retried.
        backoff / max_backoff: first wait in seconds, doubled after every failed attempt
            (up to ``max_backoff``).
        on_error: ``"raise"`` (a :class:`HubSyncError` stops the run after the round's record
            and local revision are saved) or ``"warn"`` (warn and go on; the next round, or
            :meth:`sync`, pushes the missing rounds).
        license / pretty_name / source_dataset / templates_dir / run_dir: see
            :class:`~energizer_hf.revisions.local.LocalRevisions`.

    Example:
        >>> store = HubRevisions("me/al-rounds")
        >>> store.run_branch
        'energizer-run'
    """

    def __init__(
        self,
        repo_id: str | None = None,
        *,
        run_branch: str = DEFAULT_RUN_BRANCH,
        private: bool = True,
        token: str | None = None,
        retries: int = 3,
        backoff: float = 1.0,
        max_backoff: float = 30.0,
        on_error: str = "raise",
        license: str | None = None,
        pretty_name: str | None = None,
        source_dataset: str | None = None,
        templates_dir: str | Path | None = None,
        run_dir: str | Path | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(
            run_dir, license=license, pretty_name=pretty_name, source_dataset=source_dataset,
            templates_dir=templates_dir, run_branch=validate_branch(run_branch),
        )
        self.repo_id = validate_repo_id(repo_id) if repo_id is not None else None
        if retries < 0:
            raise EnergizerError(f"retries must be >= 0, got {retries}.")
        if on_error not in ("raise", "warn"):
            raise EnergizerError(f"on_error must be 'raise' or 'warn', got {on_error!r}.")
        self.private = private
        self.token = token
        self.retries = int(retries)
        self.policy = RetryPolicy(attempts=int(retries) + 1, backoff=backoff, max_backoff=max_backoff, sleep=sleep)
        self.on_error = on_error
        self.pushed: dict[int, str] = {}  # round -> commit sha pushed by this store

    def __repr__(self) -> str:  # never show the token
        return f"HubRevisions(repo_id={self.repo_id!r}, run_branch={self.run_branch!r})"

    # ------------------------------------------------------------------ RoundStore
    def on_round_end(self, run: RunInfo, pool: ActivePool, record: dict[str, Any]) -> None:
        super().on_round_end(run, pool, record)
        if self.repo_id is None:
            return
        try:
            self.sync(run.files.root)
        except HubSyncError as err:
            if self.on_error == "raise":
                raise
            warnings.warn(f"{err} The run goes on; missing rounds are pushed later.", stacklevel=2)

    def rounds(self) -> list[int]:
        """The rounds tagged in the Hub repository (local ones without a repository)."""
        if self.repo_id is None:
            return super().rounds()
        return sorted(r for t in self.remote_tags() if (r := parse_round_tag(t)) is not None)

    def load(self, revision: int | str | None = None) -> Any:
        """A round from the Hub: a round number, ``round-NNN``, a branch or a commit
        (``None``: the head of ``run_branch``)."""
        if self.repo_id is None:
            return super().load(revision)
        if isinstance(revision, int):
            revision = round_tag(revision)
        return load_hub_round(self.repo_id, revision or self.run_branch, self.token)

    # ------------------------------------------------------------------ Hub client
    def _api(self) -> Any:
        from huggingface_hub import HfApi

        return HfApi(token=self.token)

    def _secrets(self) -> list[str | None]:
        found: list[str | None] = [self.token, os.environ.get("HF_TOKEN")]
        try:
            from huggingface_hub import get_token

            found.append(get_token())
        except Exception:  # noqa: BLE001 - only used to scrub messages
            pass
        return found

    def _leaks(self, err: BaseException) -> bool:
        text = f"{err!r} {err}"
        return any(s and s in text for s in self._secrets())

    def _error(
        self, what: str, err: BaseException, attempts: int, round: int | None, local: Path | None
    ) -> HubSyncError:
        kind = classify(err)
        detail = scrub(f"{type(err).__name__}: {err}", self._secrets())
        msg = f"Could not {what} for '{self.repo_id}' after {attempts} attempt(s) ({detail})."
        if kind == "auth":
            msg += (
                " The Hub refused the credentials: check the token argument, HF_TOKEN or `hf auth login`, "
                "and that the token may write to this namespace."
            )
        if kind == "offline":
            msg += (
                " The Hub cannot be reached (offline mode, HF_HUB_OFFLINE=1, or no network): it "
                "was not retried."
            )
        if local is not None:
            root = RunDir.containing(local.parent).root
            msg += (
                f" The local snapshot '{local}' is intact; push the missing rounds later with "
                f"`energizer-hf push {root} {self.repo_id}` (from Python: HubRevisions.sync())."
            )
        return HubSyncError(msg, round=round, status_code=http_status(err))

    def _retrying(
        self,
        what: str,
        fn: Callable[[], Any],
        *,
        round: int | None = None,
        local: Path | None = None,
        retryable: Callable[[BaseException], bool] | None = None,
        check: Callable[[], Any] | None = None,
    ) -> Any:
        """``fn()`` under the store's retry policy; a final failure as :class:`HubSyncError`."""

        def log_retry(err: BaseException, attempt: int, delay: float) -> None:
            log.warning("Hub call '%s' failed (%s); retrying in %.2fs", what, type(err).__name__, delay)

        try:
            return call_with_retries(
                fn,
                self.policy,
                retryable=retryable or (lambda err: classify(err) == "retry"),
                on_retry=log_retry,
                check=check,
            )
        except RetryError as failed:
            raise self._error(what, failed.error, failed.attempts, round, local) from (
                None if self._leaks(failed.error) else failed.error
            )

    def _call(
        self,
        what: str,
        fn: Callable[[], Any],
        *,
        round: int | None = None,
        local: Path | None = None,
        ok_status: Sequence[int] = (),
    ) -> Any:
        def call() -> Any:
            try:
                return fn()
            except Exception as err:
                if http_status(err) in ok_status:
                    return None
                raise

        return self._retrying(what, call, round=round, local=local)

    def _refs(self, api: Any, local: Path | None = None) -> Any:
        """The repository's refs, ``None`` when it does not exist."""
        from huggingface_hub.errors import RepositoryNotFoundError

        def list_refs() -> Any:
            try:
                return api.list_repo_refs(self.repo_id, repo_type="dataset")
            except RepositoryNotFoundError:
                return None

        return self._call("list the refs", list_refs, local=local)

    def remote_tags(self) -> dict[str, str]:
        """``round-*`` tags of the repository (name -> commit); ``{}`` when it does not exist."""
        if self.repo_id is None:
            return {}
        refs = self._refs(self._api())
        if refs is None:
            return {}
        return {t.name: t.target_commit for t in refs.tags if parse_round_tag(t.name) is not None}

    # ------------------------------------------------------------------ rounds
    def sync(
        self, run_dir: str | os.PathLike | None = None, *, rounds: Iterable[int] | None = None
    ) -> dict[int, str]:
        """Push every local revision whose ``round-NNN`` tag is missing on the Hub.

        Rounds are pushed in order; already tagged rounds are skipped, and a round whose
        commit landed but whose tag did not is tagged without a second commit. Returns
        round -> commit of the rounds pushed now.
        """
        files = self.files(run_dir)
        local = files.local_rounds()
        if rounds is not None:
            wanted = {int(r) for r in rounds}
            missing_local = sorted(wanted - set(local))
            if missing_local:
                raise RoundNotFoundError(
                    f"No local snapshot of round(s) {missing_local} in "
                    f"'{files.revisions}' (it has: {fmt_rounds(local)})."
                )
            local = [r for r in local if r in wanted]
        if self.repo_id is None or not local:
            return {}
        api = self._api()
        first_local = files.revision(local[0])
        refs = self._refs(api, first_local)
        if refs is None:
            self._call(
                "create the dataset repository",
                lambda: api.create_repo(
                    self.repo_id, repo_type="dataset", private=self.private, exist_ok=True
                ),
                local=first_local,
            )
            refs = self._call(
                "list the refs",
                lambda: api.list_repo_refs(self.repo_id, repo_type="dataset"),
                local=first_local,
            )
        tags = {t.name: t.target_commit for t in refs.tags}
        has_branch = self.run_branch in {b.name for b in refs.branches}
        self._check_same_run(api, files, [r for r in local if round_tag(r) in tags], tags, has_branch)
        todo = [r for r in local if round_tag(r) not in tags]
        if not todo:
            return {}
        if not has_branch:
            self._call(
                f"create the branch '{self.run_branch}'",
                lambda: api.create_branch(
                    self.repo_id, branch=self.run_branch, repo_type="dataset", exist_ok=True
                ),
                local=first_local,
            )
        pushed: dict[int, str] = {}
        with quiet_datasets():
            for r in todo:
                pushed[r] = self._push_round(api, r, files.revision(r))
        self.pushed.update(pushed)
        return pushed

    def _check_same_run(
        self, api: Any, files: RunDir, rounds: list[int], tags: Mapping[str, str], has_branch: bool
    ) -> None:
        """Tags of ``rounds`` already exist: they must be this run's commits on ``run_branch``."""
        if not rounds:
            return
        commits = self._branch_commits(api, files.revision(rounds[0]), rounds[0]) if has_branch else []
        by_sha = {c.commit_id: c for c in commits}
        for r in rounds:
            tag = round_tag(r)
            commit = by_sha.get(tags[tag])
            ours = card_meta(files.revision_card(r)).get("run_id")
            theirs = message_run_id(getattr(commit, "message", None))
            if commit is None or (ours and theirs and ours != theirs):
                raise HubSyncError(
                    f"'{self.repo_id}' already has a tag {tag} that was not made by this run "
                    f"(on branch '{self.run_branch}'): push this run to another repo_id or "
                    "run_branch, or delete the old tags.",
                    round=r,
                )

    def _branch_commits(self, api: Any, local: Path, round: int) -> list[Any]:
        return self._call(
            f"list the commits of '{self.run_branch}'",
            lambda: api.list_repo_commits(self.repo_id, repo_type="dataset", revision=self.run_branch),
            round=round,
            local=local,
        )

    def _push_round(self, api: Any, round: int, local: Path) -> str:
        tag = round_tag(round)
        prefix = f"energizer_hf {tag}:"
        commits = self._branch_commits(api, local, round)
        sha = next((c.commit_id for c in commits if c.title.startswith(prefix)), None)
        if sha is None:
            sha = self._commit_round(api, round, local, prefix, commits[0].commit_id if commits else None)
        self._call(
            f"tag {tag}",
            lambda: api.create_tag(
                self.repo_id,
                tag=tag,
                revision=sha,
                tag_message=f"energizer_hf labelled set after round {round}",
                repo_type="dataset",
                exist_ok=True,
            ),
            round=round,
            local=local,
            ok_status=(409,),
        )
        log.info("Pushed %s of %s as %s", tag, self.repo_id, sha)
        return sha

    def _commit_round(self, api: Any, round: int, local: Path, prefix: str, head: str | None) -> str:
        import datasets
        from huggingface_hub import CommitOperationAdd

        ds = datasets.load_from_disk(str(local))
        card = _hub_card(local)
        title = f"{prefix} {len(ds)} labelled rows"
        description = json.dumps({META_KEY: dataset_meta(ds)}, sort_keys=True)
        parent = {"head": head}
        with tempfile.TemporaryDirectory(prefix="energizer_hf_push_") as tmp:
            parquet = Path(tmp) / "train.parquet"
            ds.to_parquet(str(parquet))

            def commit() -> str:
                ops = [
                    CommitOperationAdd(path_in_repo=DATA_FILE, path_or_fileobj=str(parquet)),
                    CommitOperationAdd(path_in_repo=CARD_FILE, path_or_fileobj=card),
                ]
                return api.create_commit(
                    self.repo_id,
                    operations=ops,
                    commit_message=title,
                    commit_description=description,
                    revision=self.run_branch,
                    repo_type="dataset",
                    parent_commit=parent["head"],
                ).oid

            def landed() -> str | None:
                # the commit may have landed with its answer lost, or the branch moved
                commits = self._branch_commits(api, local, round)
                found = next((c.commit_id for c in commits if c.title.startswith(prefix)), None)
                parent["head"] = commits[0].commit_id if commits else None
                return found

            return self._retrying(
                f"commit {round_tag(round)}",
                commit,
                round=round,
                local=local,
                retryable=lambda err: classify(err) == "retry" or http_status(err) == 412,
                check=landed,
            )

    # ------------------------------------------------------------------ final push
    def push_final(
        self,
        run: RunInfo,
        model_repo_id: str,
        *,
        model: Any = None,
        tokenizer: Any = None,
        model_dir: str | os.PathLike | None = None,
        dataset_repo_id: str | None = None,
        private: bool | None = None,
        base_model: str | None = None,
        commit_message: str | None = None,
        pool: ActivePool | None = None,
    ) -> PushResult:
        """Push the final labelled set (``main`` of the dataset repo) and the final model.

        Args:
            run: the run (its last record is the final round).
            model_repo_id: the model repository.
            model / tokenizer: a ``transformers`` model (``save_pretrained``) and tokenizer;
                or ``model_dir``: a ``save_pretrained`` directory (e.g. a run's ``final_model/``).
            dataset_repo_id: where the labelled set goes (default: the store's ``repo_id``).
            private: visibility of repositories created now (default: the store's).
            base_model / commit_message: card and commit details.
            pool: the run's pool, to make the last round's local revision if it is missing.

        The model card links the dataset commit of the final labelled set.
        """
        from huggingface_hub import CommitOperationAdd, constants

        validate_repo_id(model_repo_id, "model_repo_id")
        dataset_repo_id = validate_repo_id(dataset_repo_id) if dataset_repo_id else self.repo_id
        if model_dir is not None:
            model_dir = Path(model_dir)
            if not (model_dir / "config.json").is_file():
                raise EnergizerError(
                    f"'{model_dir}' holds no saved model (no config.json): give the directory "
                    "of a model saved with save_pretrained."
                )
        elif model is None or not hasattr(model, "save_pretrained"):
            raise EnergizerError(
                "push_final needs a transformers model: pass model= (and tokenizer=), or model_dir=."
            )
        if not run.records:
            raise EnergizerError("The run has no recorded round yet: run it before push_final.")
        last = int(run.records[-1]["round"])
        private = self.private if private is None else private
        api = self._api()

        dataset_commit = dataset_url = None
        if dataset_repo_id:
            snap = self._final_revision(run, last, pool)
            store = self if dataset_repo_id == self.repo_id else self._clone(dataset_repo_id)
            self._call(
                "create the dataset repository",
                lambda: api.create_repo(dataset_repo_id, repo_type="dataset", private=private, exist_ok=True),
                local=snap,
            )
            dataset_commit = store._push_main(api, last, snap)
            dataset_url = f"{constants.ENDPOINT}/datasets/{dataset_repo_id}/tree/{dataset_commit}"

        card = model_card(
            run,
            model_repo_id,
            templates_dir=self.templates_dir,
            license=self.license,
            base_model=base_model,
            dataset_repo_id=dataset_repo_id,
            dataset_commit=dataset_commit,
            dataset_url=dataset_url,
            source_dataset=self.source_dataset,
        )
        self._call(
            "create the model repository",
            lambda: api.create_repo(model_repo_id, repo_type="model", private=private, exist_ok=True),
        )
        with tempfile.TemporaryDirectory(prefix="energizer_hf_model_") as tmp:
            if model_dir is not None:
                shutil.copytree(model_dir, tmp, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".*"))
            else:
                model.save_pretrained(tmp)
                if tokenizer is not None:
                    tokenizer.save_pretrained(tmp)
            Path(tmp, CARD_FILE).write_text(card, encoding="utf-8")
            ops = [
                CommitOperationAdd(path_in_repo=str(p.relative_to(tmp)), path_or_fileobj=str(p))
                for p in sorted(Path(tmp).rglob("*"))
                if p.is_file()
            ]
            message = commit_message or (
                f"energizer_hf final model ({round_tag(last)}, {run.records[-1].get('num_labelled')} labels)"
            )
            info = self._commit_once(api, model_repo_id, "model", ops, message, what="push the final model")
        return PushResult(
            model_repo_id=model_repo_id,
            model_commit=info,
            model_url=f"{constants.ENDPOINT}/{model_repo_id}/tree/{info}",
            dataset_repo_id=dataset_repo_id,
            dataset_commit=dataset_commit,
            dataset_url=dataset_url,
        )

    def _final_revision(self, run: RunInfo, round: int, pool: ActivePool | None) -> Path:
        files = self.files(run.files.root if self.run_dir is None else None)
        if (files.revision_card(round)).exists():
            return files.revision(round)
        if pool is None:
            raise RoundNotFoundError(
                f"The last round ({round_tag(round)}) has no local revision in '{files.revisions}' "
                f"(it has: {fmt_rounds(files.local_rounds())}): pass pool= to make it."
            )
        return self.snapshot(run, pool, round)

    def _clone(self, repo_id: str) -> HubRevisions:
        other = HubRevisions.__new__(HubRevisions)
        other.__dict__.update(self.__dict__)
        other.repo_id = repo_id
        other.pushed = {}
        return other

    def _commit_once(
        self,
        api: Any,
        repo_id: str,
        repo_type: str,
        ops: list[Any],
        message: str,
        *,
        what: str,
        description: str | None = None,
    ) -> str:
        """Commit to main, retrying only when the commit did not land (checked by title)."""

        def landed() -> str | None:
            commits = self._call("list commits", lambda: api.list_repo_commits(repo_id, repo_type=repo_type))
            return commits[0].commit_id if commits and commits[0].title == message else None

        return self._retrying(
            what,
            lambda: api.create_commit(
                repo_id,
                operations=ops,
                commit_message=message,
                commit_description=description,
                repo_type=repo_type,
            ).oid,
            check=landed,
        )

    def _push_main(self, api: Any, round: int, local: Path) -> str:
        import datasets
        from huggingface_hub import CommitOperationAdd

        ds = datasets.load_from_disk(str(local))
        message = f"energizer_hf final labelled set ({round_tag(round)}, {len(ds)} rows)"
        meta = card_meta(local / CARD_FILE)
        run_id = meta.get("run_id")
        head = self._call(
            "list the commits of main",
            lambda: api.list_repo_commits(self.repo_id, repo_type="dataset"),
            local=local,
        )
        if (
            head
            and head[0].title == message
            and run_id
            and message_run_id(getattr(head[0], "message", None)) == run_id
        ):
            log.info("The final labelled set of this run is already on main of %s", self.repo_id)
            return head[0].commit_id
        with tempfile.TemporaryDirectory(prefix="energizer_hf_push_") as tmp:
            parquet = Path(tmp) / "train.parquet"
            ds.to_parquet(str(parquet))
            ops = [
                CommitOperationAdd(path_in_repo=DATA_FILE, path_or_fileobj=str(parquet)),
                CommitOperationAdd(path_in_repo=CARD_FILE, path_or_fileobj=_hub_card(local)),
            ]
            return self._commit_once(
                api,
                self.repo_id,
                "dataset",
                ops,
                message,
                what="push the final labelled set",
                description=json.dumps({META_KEY: meta}, sort_keys=True) if meta else None,
            )

    def push_labelled_set(
        self, run_dir: str | os.PathLike | None = None, round: int | None = None, *, private: bool | None = None
    ) -> str:
        """Push round ``round``'s local revision (default: the last) and its card to ``main``
        of ``repo_id`` (created when missing); returns the commit sha.

        A second push of the same run's set is a no-op (it returns the existing commit).
        """
        if self.repo_id is None:
            raise EnergizerError("push_labelled_set needs a HubRevisions with a repo_id.")
        files = self.files(run_dir)
        local = files.local_rounds()
        if round is None:
            if not local:
                raise RoundNotFoundError(f"No round snapshot in '{files.revisions}'.")
            round = local[-1]
        snap = files.revision(round)
        if round not in local:
            raise RoundNotFoundError(
                f"No local snapshot of {round_tag(round)} in '{files.revisions}' (it has: "
                f"{fmt_rounds(local)})."
            )
        api = self._api()
        private = self.private if private is None else private
        self._call(
            "create the dataset repository",
            lambda: api.create_repo(self.repo_id, repo_type="dataset", private=private, exist_ok=True),
            local=snap,
        )
        with quiet_datasets():
            return self._push_main(api, round, snap)


def _hub_card(local: Path) -> bytes:
    """A local revision's card as it goes to the Hub: with the ``configs`` of the Hub
    layout (the Parquet file a commit adds), which a local ``save_to_disk`` folder has not."""
    return with_configs((local / CARD_FILE).read_text(encoding="utf-8"), hub_data_files()).encode("utf-8")
