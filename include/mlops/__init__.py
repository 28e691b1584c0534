"""The MLOps pipeline package: plain, typed functions importable and testable without Airflow."""
