"""Small LightningModules in the style of the seed API's users (shared by tests)."""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset


def make_blobs(n: int = 240, seed: int = 0, dim: int = 4):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, dim, generator=g)
    y = (x[:, 0] + 0.7 * x[:, 1] > 0).long() + (x[:, 2] > 1.0).long()
    return x, y


class UnpackingModel(pl.LightningModule):
    """Unpacks ``(x, y)`` batches in ``forward`` (the seed README's style)."""

    def __init__(self, dim: int = 4, num_classes: int = 3, dropout: float = 0.0) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, 16), nn.ReLU(), nn.Dropout(dropout), nn.Linear(16, num_classes))

    def forward(self, batch):
        x = batch[0] if isinstance(batch, (list, tuple)) else batch
        return self.net(x)

    def training_step(self, batch, batch_idx):
        return nn.functional.cross_entropy(self(batch), batch[1])

    def test_step(self, batch, batch_idx):
        acc = (self(batch).argmax(-1) == batch[1]).float().mean()
        self.log("accuracy", acc)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=0.05)


class DictDataset(Dataset):
    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return {"features": self.x[i], "target": self.y[i]}


class InputsHookModel(pl.LightningModule):
    """Takes a tensor in ``forward``; pool batches are dicts that carry labels."""

    def __init__(self, dim: int = 4, num_classes: int = 3) -> None:
        super().__init__()
        self.net = nn.Linear(dim, num_classes)

    def get_inputs_from_batch(self, batch):
        return batch["features"]

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        return nn.functional.cross_entropy(self(batch["features"]), batch["target"])

    def test_step(self, batch, batch_idx):
        acc = (self(batch["features"]).argmax(-1) == batch["target"]).float().mean()
        self.log("accuracy", acc)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.5)


def loaders(n: int = 240, batch_size: int = 16):
    x, y = make_blobs(n + 100)
    train = DataLoader(TensorDataset(x[:n], y[:n]), batch_size=batch_size)
    test = DataLoader(TensorDataset(x[n:], y[n:]), batch_size=64)
    return train, test, y[:n]
