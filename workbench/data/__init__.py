"""Datasets: the catalog, loading from any filesystem, synthetic domain data, splits, placement."""
