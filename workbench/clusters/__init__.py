"""Cluster profiles and deployments: local, local GPU, SSH, Kubernetes, Slurm, Dask Gateway."""
