"""Real servers for tests and local runs (S3, MLflow, Ray), bound to 127.0.0.1, stopped by PID."""
