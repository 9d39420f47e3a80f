"""The seed API with your own LightningModule (runs offline, on CPU, in about 20 s).

    python examples/seed_api.py

A two-layer MLP on synthetic 2-D data; entropy sampling picks points near the class
boundary. Replace the data and the module with yours: nothing else changes.

Install energizer_hf first, from a checkout or a wheel (docs/install.md; it is not on PyPI yet).
"""

import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from energizer_hf import ActiveDataModule, Trainer
from energizer_hf.acquisition_functions import entropy
from energizer_hf.query_strategies import AccumulatorStrategy


class MLP(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 2))

    def forward(self, batch):
        x = batch[0] if isinstance(batch, (list, tuple)) else batch  # unpack (x, y)
        return self.net(x)

    def training_step(self, batch, batch_idx):
        return nn.functional.cross_entropy(self(batch), batch[1])

    def test_step(self, batch, batch_idx):
        self.log("accuracy", (self(batch).argmax(-1) == batch[1]).float().mean())

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=0.01)


class MyEntropy(AccumulatorStrategy):  # a custom strategy is one method
    def pool_step(self, batch, batch_idx, *args, **kwargs):
        return entropy(self(batch))


def main():
    torch.set_num_threads(1)
    torch.manual_seed(0)
    x = torch.randn(2000, 2)
    y = (x[:, 0] * x[:, 1] > 0).long()  # XOR-like quadrants
    train_dl = DataLoader(TensorDataset(x[:1500], y[:1500]), batch_size=32)
    test_dl = DataLoader(TensorDataset(x[1500:], y[1500:]), batch_size=256)

    dm = ActiveDataModule(train_dl, test_dataloader=test_dl)
    dm.label(torch.randperm(1500)[:20].tolist())
    trainer = Trainer(max_labelling_epochs=5, query_size=20, max_epochs=20, test_after_labelling=True,
                      reset_weights=True, total_budget=-1, enable_progress_bar=False,
                      enable_model_summary=False, run_dir="runs/seed-api-example")
    results = trainer.active_fit(model=MyEntropy(MLP()), datamodule=dm)
    print(results.to_table(["round", "num_labelled", "test/accuracy", "time_fit", "time_query"]))


if __name__ == "__main__":
    main()
