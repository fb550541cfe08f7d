"""Train an ElasticNet on a synthetic regression set and log it as an MLflow model."""

import argparse

import mlflow
import mlflow.sklearn
import numpy as np
from sklearn.linear_model import ElasticNet
from sklearn.metrics import mean_squared_error


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--alpha", type=float, default=0.5)
    parser.add_argument("--l1-ratio", type=float, default=0.1)
    parser.add_argument("--max-iter", type=int, default=1000)
    args = parser.parse_args()

    rng = np.random.default_rng(42)
    x = rng.normal(size=(200, 4))
    y = x @ np.array([1.5, -2.0, 0.5, 3.0]) + rng.normal(scale=0.1, size=200)

    model = ElasticNet(alpha=args.alpha, l1_ratio=args.l1_ratio, max_iter=args.max_iter)
    model.fit(x, y)
    rmse = float(np.sqrt(mean_squared_error(y, model.predict(x))))
    print(f"ElasticNet(alpha={args.alpha}, l1_ratio={args.l1_ratio}): rmse={rmse:.4f}")

    mlflow.log_params(vars(args))
    mlflow.log_metric("rmse", rmse)
    # cloudpickle: understood by MLflow 1.x to 3.x (3.x defaults to skops, not in mlflow-skinny)
    mlflow.sklearn.log_model(model, "model", serialization_format="cloudpickle")


if __name__ == "__main__":
    main()
