"""Experiments: hyperparameter studies (Optuna) over the training backends, tracked with MLflow.

:mod:`workbench.tuning.study` runs a study on the cluster (``wb.tune``);
:mod:`workbench.tuning.tracking` records trainings and trials as MLflow runs (``wb.runs``).
"""
