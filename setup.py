"""Package discovery. The top-level folders show the architecture (components/, generators/,
pipelines/); they install under the project's own namespace, so that `import
mlflow_steps.components` never clashes with a user's own `components/`. Every folder under
them is found by setuptools (`find_namespace_packages`; data folders such as recipe_files/
too): none can be left out of a wheel by a hand-kept list. The generated catalog is output,
not code, and stays out. Package data and everything else is in pyproject.toml."""

from setuptools import find_namespace_packages, setup

# Folder -> the import name it installs as.
FOLDERS = {
    "mlflow_steps": "mlflow_steps",
    "components": "mlflow_steps.components",
    "generators": "mlflow_steps.generators",
    "pipelines": "mlflow_steps.pipelines",
}

# Not packages: the committed catalog (generated YAML) and bytecode caches.
EXCLUDE = ["catalog", "catalog.*", "*__pycache__*"]

setup(
    package_dir={name: folder for folder, name in FOLDERS.items()},
    packages=[
        package
        for folder, name in FOLDERS.items()
        for package in [
            name,
            *(f"{name}.{found}" for found in find_namespace_packages(folder, exclude=EXCLUDE)),
        ]
    ],
)
