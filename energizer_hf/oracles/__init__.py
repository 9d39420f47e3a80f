"""Oracles give labels: simulated from the dataset, a callable, or people (Label Studio)."""

from energizer_hf.oracles.base import CallableOracle, Oracle, SimulatedOracle

__all__ = ["CallableOracle", "Oracle", "SimulatedOracle"]
