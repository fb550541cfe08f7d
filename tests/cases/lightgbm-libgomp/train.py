"""A LightGBM booster (its library links libgomp.so.1), logged as an MLflow model."""

import sys

import lightgbm
import mlflow
import mlflow.lightgbm
import numpy as np

rounds = int(sys.argv[1])
rng = np.random.default_rng(2)
x = rng.normal(size=(300, 4))
y = x @ np.array([1.5, -2.0, 0.5, 3.0])
data = lightgbm.Dataset(x, label=y)
booster = lightgbm.train({"objective": "regression", "verbose": -1}, data, rounds)
mlflow.log_param("rounds", rounds)
mlflow.lightgbm.log_model(booster, "model")
