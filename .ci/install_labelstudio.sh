#!/usr/bin/env bash
# Install a real Label Studio server for the integration tests (tests/labelstudio/).
#
#  1. Label Studio ${ENERGIZER_HF_LS_VERSION:-1.23.2} into its OWN virtualenv at
#     ${ENERGIZER_HF_LS_VENV:-$HOME/.cache/energizer_hf/label-studio-1.23}
#     (its exact pins -- Django, numpy<2.3 via opencv, label-studio-sdk==2.1.2 -- must not
#     touch the project's environment). Skipped when that venv already holds a working
#     label-studio of that version.
#  2. label-studio-sdk into the CURRENT python (${PYTHON:-python}) unless it is already there,
#     choosing the newest candidate whose `pip install --dry-run` would not change any of the
#     project's core packages (torch, transformers, datasets, numpy, pandas, ...).
#
# Idempotent; prints what it did; exits non-zero with a message on failure (the test
# fixture then skips the Label Studio tests). See docs/dev/labelstudio.md.
#
# Environment:
#   ENERGIZER_HF_LS_VENV         where the server venv lives
#   ENERGIZER_HF_LS_VERSION      exact label-studio version (default 1.23.2)
#   ENERGIZER_HF_LS_PYTHON       interpreter used to create the venv (default: base of $PYTHON)
#   ENERGIZER_HF_LS_SDK_SPEC     force a label-studio-sdk requirement for the main env
#   ENERGIZER_HF_LS_SKIP_SDK=1   do not touch the main env at all
#   PYTHON                       the project's python (default: python)
set -euo pipefail

LS_VERSION="${ENERGIZER_HF_LS_VERSION:-1.23.2}"
VENV="${ENERGIZER_HF_LS_VENV:-$HOME/.cache/energizer_hf/label-studio-1.23}"
PY="${PYTHON:-python}"
MARKER="$VENV/.energizer_hf_installed"
# Newest first; the first one that leaves the core packages alone wins.
# 2.0.20+ caps opencv-python-headless<4.13, which caps numpy<2.3 -> would downgrade numpy 2.4.
SDK_CANDIDATES=("label-studio-sdk" "label-studio-sdk==2.0.19" "label-studio-sdk==2.0.18")
PROTECTED="torch transformers datasets huggingface-hub numpy pandas tokenizers accelerate pytorch-lightning torchmetrics pyarrow pydantic pydantic-core"

log() { echo "[install_labelstudio] $*"; }
die() { echo "[install_labelstudio] ERROR: $*" >&2; exit 1; }

command -v "$PY" >/dev/null 2>&1 || die "python interpreter '$PY' not found"
mkdir -p "$(dirname "$VENV")" || die "cannot create $(dirname "$VENV")"

# Serialise concurrent callers (parallel test sessions, CI + a developer).
exec 9>"$(dirname "$VENV")/.$(basename "$VENV").lock"
flock -w 1200 9 || die "timed out waiting for the install lock"

ls_ok() {
    [ -f "$MARKER" ] && [ -x "$VENV/bin/label-studio" ] && [ -x "$VENV/bin/python" ] || return 1
    local v
    v="$("$VENV/bin/python" -c 'import importlib.metadata as m, label_studio; print(m.version("label-studio"))' 2>/dev/null)" || return 1
    [ "$v" = "$LS_VERSION" ]
}

# ---------------------------------------------------------------- 1. server venv
if ls_ok; then
    log "label-studio $LS_VERSION already installed in $VENV -- skipping"
else
    start=$(date +%s)
    if [ -e "$VENV" ]; then
        log "removing incomplete/outdated venv $VENV"
        rm -rf "$VENV"
    fi
    base_py="${ENERGIZER_HF_LS_PYTHON:-$("$PY" -c 'import sys; print(getattr(sys, "_base_executable", sys.executable))')}"
    "$base_py" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' \
        || die "label-studio $LS_VERSION needs python>=3.10 ($base_py is older)"
    log "creating venv $VENV with $base_py"
    "$base_py" -m venv "$VENV" || die "venv creation failed"
    log "installing label-studio==$LS_VERSION (about 1 GB, a few minutes)"
    if ! "$VENV/bin/python" -m pip install --disable-pip-version-check -q "label-studio==$LS_VERSION"; then
        rm -rf "$VENV"
        die "pip install label-studio==$LS_VERSION failed (see pip output above; is PyPI reachable?)"
    fi
    echo "$LS_VERSION" >"$MARKER"
    ls_ok || { rm -rf "$VENV"; die "label-studio $LS_VERSION installed but does not import"; }
    log "installed label-studio $LS_VERSION in $VENV in $(($(date +%s) - start)) s"
fi

# ---------------------------------------------------------------- 2. SDK in the project env
if [ "${ENERGIZER_HF_LS_SKIP_SDK:-0}" = "1" ]; then
    log "ENERGIZER_HF_LS_SKIP_SDK=1 -- not touching the main environment"
    exit 0
fi
if "$PY" -c 'import label_studio_sdk' >/dev/null 2>&1; then
    log "label-studio-sdk $("$PY" -c 'import importlib.metadata as m; print(m.version("label-studio-sdk"))') already in the main env ($("$PY" -c 'import sys; print(sys.executable)')) -- skipping"
    exit 0
fi

if [ -n "${ENERGIZER_HF_LS_SDK_SPEC:-}" ]; then
    SDK_CANDIDATES=("$ENERGIZER_HF_LS_SDK_SPEC")
fi
report="$(mktemp)"
trap 'rm -f "$report"' EXIT
chosen=""
for spec in "${SDK_CANDIDATES[@]}"; do
    log "dry-run: pip install $spec"
    if ! "$PY" -m pip install --disable-pip-version-check -q --dry-run --report "$report" "$spec" >/dev/null 2>&1; then
        log "  $spec: not resolvable here"
        continue
    fi
    # Which already-installed distributions would change version?
    changes="$("$PY" - "$report" "$PROTECTED" <<'EOF'
import importlib.metadata as md
import json
import re
import sys

def norm(n):
    return re.sub(r"[-_.]+", "-", n).lower()

protected = {norm(p) for p in sys.argv[2].split()}
have = {norm(d.metadata["Name"]): d.version for d in md.distributions() if d.metadata["Name"]}
bad, other = [], []
for item in json.load(open(sys.argv[1]))["install"]:
    name, ver = norm(item["metadata"]["name"]), item["metadata"]["version"]
    if name in have and have[name] != ver:
        (bad if name in protected else other).append(f"{name} {have[name]}->{ver}")
print("BAD " + ", ".join(bad) if bad else "OK " + ", ".join(other))
EOF
)"
    case "$changes" in
        OK*)
            chosen="$spec"
            [ "$changes" != "OK " ] && log "  $spec would also change: ${changes#OK }"
            break
            ;;
        *) log "  $spec rejected, would change core packages: ${changes#BAD }" ;;
    esac
done
[ -n "$chosen" ] || die "no label-studio-sdk version installs without changing the project's core packages"
log "installing $chosen into the main env"
"$PY" -m pip install --disable-pip-version-check -q "$chosen" || die "pip install $chosen failed"
log "installed label-studio-sdk $("$PY" -c 'import importlib.metadata as m; print(m.version("label-studio-sdk"))') into $("$PY" -c 'import sys; print(sys.executable)')"
