"""The whole round loop under Lightning ``strategy="ddp"`` on 2 CPU processes.

    python -m tests.scripts.ddp_loop RUN_DIR

Lightning's launcher re-runs this command for rank 1 at the first fit. Every rank prints
writes ``rank<r>.json`` (labelled ids, queries) next to RUN_DIR, so the test can check
they agree.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch

torch.set_num_threads(1)


def main(run_dir: str) -> None:
    from torch.utils.data import DataLoader, TensorDataset

    from energizer_hf import ActiveDataModule, Trainer
    from energizer_hf.loop import env_rank
    from energizer_hf.query_strategies import EntropyStrategy
    from tests.seed_models import UnpackingModel, make_blobs

    x, y = make_blobs(500, seed=1)
    train_dl = DataLoader(TensorDataset(x[:400], y[:400]), batch_size=16)
    test_dl = DataLoader(TensorDataset(x[400:], y[400:]), batch_size=50)
    dm = ActiveDataModule(train_dl, test_dataloader=test_dl, labels=y[:400].numpy())
    dm.label(list(range(0, 400, 40)))  # 10 initial labels
    torch.manual_seed(0)
    trainer = Trainer(
        max_labelling_epochs=3, query_size=15, max_epochs=2, accelerator="cpu", devices=2, strategy="ddp",
        enable_progress_bar=False, enable_model_summary=False, progress=False, run_dir=run_dir, seed=0,
    )
    scored_by_rank1: list[int] = []

    class Spy:  # the exchange files are removed when the run ends: look at them each round
        def on_round_end(self, loop, record):
            scored_by_rank1.append(len(list((Path(run_dir) / "scoring").rglob("rank1.topk.npz"))))

    results = trainer.active_fit(model=EntropyStrategy(UnpackingModel()), datamodule=dm, callbacks=[Spy()])
    ids = dm.pool.labelled_ids.tolist()
    assert np.all(dm.pool.labels[ids] >= 0)
    out = Path(run_dir).parent / f"rank{env_rank()}.json"
    out.write_text(json.dumps({"labelled": ids, "queries": [r["queried_ids"] for r in results],
                               "scored_by_rank1": scored_by_rank1}))


if __name__ == "__main__":
    main(sys.argv[1])
