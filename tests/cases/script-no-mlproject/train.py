"""No MLproject: `mlflow run -e train.py -P alpha=0.3` runs `python train.py --alpha 0.3`."""

import argparse

import mlflow
import mlflow.sklearn
import numpy as np
from sklearn.linear_model import Ridge


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--alpha", type=float, default=1.0)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 4))
    y = x @ np.array([1.0, -1.0, 2.0, 0.5]) + 3.0
    model = Ridge(alpha=args.alpha).fit(x, y)
    with mlflow.start_run():
        mlflow.sklearn.log_model(model, "model", serialization_format="cloudpickle")


if __name__ == "__main__":
    main()
