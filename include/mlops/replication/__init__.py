"""The local stand-in for AWS DMS (full load + CDC into the S3-target layout) and replication checks.

Modules, by responsibility:

- ``capture``: change-capture triggers and the change log on the source DB (the local "WAL").
- ``snapshot``: the consistent full-load read of the source tables, as Arrow batches.
- ``lake_io``: the DMS S3-target layout (schemas, object names) and atomic Parquet writes.
- ``status``: the persisted task state and its DescribeReplicationTasks/DescribeTableStatistics views.
- ``replicator``: :class:`LocalReplicator`, which ties them together (``sync``, ``full_load``,
  ``cdc_batch``, ``validate``).
- ``reconcile``: the latest state of a replicated table, row hashes, key-range digests, row diffs.
- ``validation``: DMS data validation as the stand-in performs it (pending, failed, suspended records).
- ``checks``: pure replication checks over DMS-shaped evidence, the same for aws and local
  (standard library only: the aws worker runs them).
- ``fresh_objects``: the fresh-object rule and the boto3 lister the aws worker uses.

Nothing is imported here, so importing the package stays cheap at DAG parse time.
"""
