"""Checks that the conda pins reached the environment, then logs a model."""

import sys

import mlflow
import mlflow.sklearn
import numpy as np
import sklearn
from sklearn.linear_model import LinearRegression

assert sys.version_info[:2] == (3, 11), sys.version
assert np.__version__.startswith("2.4."), np.__version__
assert sklearn.__version__.startswith("1.9."), sklearn.__version__
x = np.arange(40, dtype=float).reshape(10, 4)
model = LinearRegression().fit(x, x.sum(axis=1) + 1.0)
mlflow.log_param("numpy", np.__version__)
mlflow.sklearn.log_model(model, "model", serialization_format="cloudpickle")
