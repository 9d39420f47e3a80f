"""Write a label store in a loop until killed; used by the crash tests of label_stores.

Usage: python label_store_writer.py {ragged|multihot} STATE_DIR NUM_ROWS

Step k (k = 1, 2, ...) rewrites every row with a pattern that depends on k only:
ragged: sentence i gets ``1 + (i + k) % 7`` tags, all equal to ``k % NUM_TAGS``;
multi-hot: row i gets the labels ``(i + k) % L`` and ``k % L`` (row 0: only ``k % L``,
from which a new writer continues).
After each update returns, ``ACK k`` is printed and flushed.

Importing this module (the tests do, for the patterns) does not import energizer_hf.
"""

import sys
import types
from pathlib import Path

import numpy as np

NUM_TAGS = 13
NUM_LABELS = 28


def ragged_step(n: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    lengths = 1 + (np.arange(n) + k) % 7
    return np.full(int(lengths.sum()), k % NUM_TAGS, dtype=np.int64), lengths


def multihot_step(n: int, k: int) -> np.ndarray:
    m = np.zeros((n, NUM_LABELS), dtype=np.uint8)
    m[np.arange(n), (np.arange(n) + k) % NUM_LABELS] = 1
    m[:, k % NUM_LABELS] = 1
    return m


def main(kind: str, state_dir: str, n: int) -> None:
    # Import energizer_hf's submodules without the package __init__ (which loads torch and
    # Lightning, ~10 s on a busy machine): the stores need only numpy, errors and utils,
    # and the crash tests start this script many times.
    package = types.ModuleType("energizer_hf")
    package.__path__ = [str(Path(__file__).resolve().parents[2] / "energizer_hf")]
    sys.modules["energizer_hf"] = package
    from energizer_hf.label_stores import MultiHotStore, RaggedTagStore

    ids = np.arange(n)
    if kind == "ragged":
        store = RaggedTagStore(state_dir, n, NUM_TAGS, fingerprint="crash-test")
        k = store.generation  # continue after a previous writer
        while True:
            k += 1
            values, lengths = ragged_step(n, k)
            store.set_flat(ids, values, lengths)
            print(f"ACK {k}", flush=True)
    store = MultiHotStore(state_dir, n, NUM_LABELS, fingerprint="crash-test")
    k = int(np.argmax(store.matrix[0])) if store.known[0] else 0  # continue: k mod L
    while True:
        k += 1
        store.set(ids, multihot_step(n, k))
        print(f"ACK {k}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
