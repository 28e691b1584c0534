"""Glue job code (the features ETL on Spark, the GX validation job) in the glue runtime (envs/glue)."""
