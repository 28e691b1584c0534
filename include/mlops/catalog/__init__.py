"""The lake's data catalog: DuckDB views locally; Glue Data Catalog TableInputs on aws (see mlops.aws)."""
