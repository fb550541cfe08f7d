import mlflow
import six

with mlflow.start_run():  # joins the step's run
    mlflow.log_param("six", six.__version__)
    mlflow.log_text(six.__version__, "six-version.txt")
print("six", six.__version__)
