"""A ridge regression whose options arrive as MLproject parameters of type float, bool, str."""

import argparse

import mlflow
import mlflow.sklearn
import numpy as np
from sklearn.linear_model import Ridge


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--alpha", type=float)
    parser.add_argument("--fit-intercept", choices=["true", "false", "True", "False"])
    parser.add_argument("--label")
    parser.add_argument("--note")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(100, 4))
    y = x @ np.array([1.0, -1.0, 2.0, 0.5]) + 3.0
    fit_intercept = args.fit_intercept.lower() == "true"
    model = Ridge(alpha=args.alpha, fit_intercept=fit_intercept).fit(x, y)
    mlflow.log_params({"label_seen": args.label, "intercept_seen": fit_intercept})
    mlflow.sklearn.log_model(model, "model", serialization_format="cloudpickle")


if __name__ == "__main__":
    main()
