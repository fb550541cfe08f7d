"""A linear model, with the variable docker_env's `environment` sets."""

import os

import mlflow
import mlflow.sklearn
import numpy as np
from sklearn.linear_model import Ridge

rng = np.random.default_rng(4)
x = rng.normal(size=(40, 4))
y = x @ np.array([0.5, 1.0, -2.0, 1.5])
mlflow.log_param("greeting", os.environ.get("GREETING", ""))
mlflow.sklearn.log_model(Ridge().fit(x, y), "model", serialization_format="cloudpickle")
