"""An ElasticNet fitted on data.csv; its options arrive as MLproject parameters of every type
MLflow checks (float, int, path, uri, string), and undeclared ones as `--name value`."""

import argparse
import csv

import mlflow
import mlflow.sklearn
from sklearn.linear_model import ElasticNet


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--alpha", type=float, default=0.5)
    parser.add_argument("--max-iter", type=int, default=500)
    parser.add_argument("--data", required=True)
    parser.add_argument("--source", default="")
    parser.add_argument("--label", default="")
    args, undeclared = parser.parse_known_args()
    with open(args.data) as handle:
        rows = [[float(v) for v in row] for row in list(csv.reader(handle))[1:]]
    x, y = [row[:4] for row in rows], [row[4] for row in rows]
    model = ElasticNet(alpha=args.alpha, max_iter=args.max_iter).fit(x, y)
    with mlflow.start_run():  # joins the run `mlflow run` (or the step) made
        mlflow.log_metric("rows", len(rows))
        mlflow.set_tag("undeclared_seen", " ".join(undeclared))
        mlflow.sklearn.log_model(model, "model", serialization_format="cloudpickle")


if __name__ == "__main__":
    main()
