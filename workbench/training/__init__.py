"""Training: XGBoost, LightGBM and linear models on the cluster."""
