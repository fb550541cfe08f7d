"""A linear model, with the versions the constraints and the vendored package gave."""

import sys

import greet
import mlflow
import mlflow.sklearn
import numpy as np
import six
from sklearn.linear_model import Ridge

alpha = float(sys.argv[1])
rng = np.random.default_rng(3)
x = rng.normal(size=(40, 4))
y = x @ np.array([1.0, 2.0, -1.0, 0.5])
model = Ridge(alpha=alpha).fit(x, y)
mlflow.log_params({"alpha": alpha, "six": six.__version__, "greet": greet.hello()})
mlflow.sklearn.log_model(model, "model", serialization_format="cloudpickle")
