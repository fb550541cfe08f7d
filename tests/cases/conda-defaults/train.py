"""ElasticNet on a pandas frame: needs numpy, pandas and scikit-learn from the conda list."""

import sys

import mlflow
import mlflow.sklearn
import numpy as np
import pandas as pd
from sklearn.linear_model import ElasticNet

alpha = float(sys.argv[1])
rng = np.random.default_rng(1)
frame = pd.DataFrame(rng.normal(size=(120, 4)), columns=["a", "b", "c", "d"])
target = frame @ np.array([1.5, -2.0, 0.5, 3.0])
model = ElasticNet(alpha=alpha).fit(frame.to_numpy(), target.to_numpy())
mlflow.log_param("alpha", alpha)
mlflow.sklearn.log_model(model, "model", serialization_format="cloudpickle")
