"""Glue ETL jobs (PySpark scripts runnable on Glue 5.0 and on local Spark) and their local runner."""
