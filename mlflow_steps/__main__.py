from mlflow_steps.cli import main

raise SystemExit(main())
