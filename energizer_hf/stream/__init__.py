"""Stream-based active learning: building blocks.

Items arrive continuously; each is sent for labelling or let go on arrival, under a
labelling budget rate that holds over every window of the stream.

- :mod:`~energizer_hf.stream.sources`: stream sources (any iterable of rows, a
  ``datasets.IterableDataset``, a finite ``Dataset`` replayed in a seeded order), read in
  mini-batches, resumable where the data allows.
- :mod:`~energizer_hf.stream.strategies`: stream strategies (fixed / variable / randomized
  variable / quantile uncertainty, split, novelty- and density-weighted uncertainty, random), thin
  classes over :mod:`energizer_hf.functional.stream`, with a name registry.
- :mod:`~energizer_hf.stream.state`: the decision log, sent items, labels and resume state
  in a directory, written crash-safely.
- :mod:`~energizer_hf.stream.drift`: drifting streams for simulation (class-prior drift,
  two datasets one after the other).
- :mod:`~energizer_hf.stream.oracles`: who labels what a stream sends (the protocol and the
  simulated :class:`~energizer_hf.stream.oracles.ColumnOracle`);
  :mod:`~energizer_hf.stream.batches`: a mini-batch as the pool scorer's batch source;
  :mod:`~energizer_hf.stream.plot`: accuracy and labels spent over a stream.

:class:`~energizer_hf.stream_learner.StreamLearner` puts them together with a model.
"""

from energizer_hf.stream.batches import TokenizedRows
from energizer_hf.stream.drift import (
    concatenate_for_drift,
    concatenation_order,
    prior_at,
    prior_drift_order,
)
from energizer_hf.stream.oracles import ColumnOracle, SentItem, StreamOracle
from energizer_hf.stream.plot import plot_stream
from energizer_hf.stream.registry import (
    available_stream_strategies,
    get_stream_strategy_class,
    make_stream_strategy,
    register_stream_strategy,
)
from energizer_hf.stream.sources import (
    IterableDatasetSource,
    IterableSource,
    ReplaySource,
    StreamBatch,
    StreamSource,
    as_stream_source,
)
from energizer_hf.stream.state import StreamCheckpoint, StreamStore
from energizer_hf.stream.strategies import (
    DensityUncertaintyStream,
    FixedUncertaintyStream,
    NoveltyUncertaintyStream,
    QuantileUncertaintyStream,
    RandomizedVariableUncertaintyStream,
    RandomStream,
    SplitStream,
    StreamStrategy,
    VariableUncertaintyStream,
)

__all__ = [
    "ColumnOracle",
    "DensityUncertaintyStream",
    "FixedUncertaintyStream",
    "IterableDatasetSource",
    "IterableSource",
    "NoveltyUncertaintyStream",
    "QuantileUncertaintyStream",
    "RandomStream",
    "RandomizedVariableUncertaintyStream",
    "ReplaySource",
    "SentItem",
    "SplitStream",
    "StreamBatch",
    "StreamCheckpoint",
    "StreamOracle",
    "StreamSource",
    "StreamStore",
    "StreamStrategy",
    "TokenizedRows",
    "VariableUncertaintyStream",
    "as_stream_source",
    "available_stream_strategies",
    "concatenate_for_drift",
    "concatenation_order",
    "get_stream_strategy_class",
    "make_stream_strategy",
    "plot_stream",
    "prior_at",
    "prior_drift_order",
    "register_stream_strategy",
]
