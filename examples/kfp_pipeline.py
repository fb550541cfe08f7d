"""Compile the build -> train pipeline with kfp's compiler.

python examples/kfp_pipeline.py mlflow-build-and-train.yaml
"""

import sys

from kfp import compiler

from mlflow_steps.pipelines.kfp import build_and_train

if __name__ == "__main__":
    target = sys.argv[1] if len(sys.argv) > 1 else "mlflow-build-and-train.yaml"
    compiler.Compiler().compile(build_and_train, target)
    print(target)
