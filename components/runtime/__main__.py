import sys

sys.stderr.write(
    "mlflow-steps runtime: not implemented yet in this version of the image; "
    "rebuild the image with a newer mlflow-steps\n"
)
sys.exit(70)
