"""The local stand-in for AWS DMS (full load + CDC into the S3-target layout) and replication checks.

Modules, by responsibility:

- ``capture``: change-capture triggers and the change log on the source DB (the local "WAL").
- ``snapshot``: the consistent full-load read of the source tables, as Arrow batches.
- ``lake_io``: the DMS S3-target layout (schemas, object names) and atomic Parquet writes.
- ``status``: the persisted task state and its DescribeReplicationTasks/DescribeTableStatistics views.
- ``replicator``: :class:`LocalReplicator`, which ties them together (``sync``, ``full_load``, ``cdc_batch``).
- ``checks``: pure replication checks over DMS-shaped evidence, the same for aws and local.
- ``reconcile``: the latest state of a replicated table and its comparison with the source.

Nothing is imported here, so importing the package stays cheap at DAG parse time.
"""
