"""The local stand-in for AWS DMS (full load + CDC into the S3-target layout) and replication checks.

Modules, by responsibility:

- ``capture``: change-capture triggers and the change log on the source DB (the local "WAL").
- ``values``: source values into the lake's types, faithfully, or the row rejected with its key and column.
- ``snapshot``: the consistent full-load read of the source tables, as Arrow batches.
- ``lake_io``: the DMS S3-target layout (schemas, object names) and atomic Parquet writes.
- ``status``: the persisted task state and its DescribeReplicationTasks/DescribeTableStatistics views.
- ``schema_changes``: source schema changes met like DMS (added columns flow on; others stop CDC).
- ``loading``: full loads and table reloads, staged and swapped in atomically across tables.
- ``cdc``: one CDC batch's files and quarantine in the lake, and its commit to the task state.
- ``quarantine``: the dead-letter table of rows and changes the lake cannot take.
- ``batch_results``: what a batch (or a drain of several) did.
- ``replicator``: :class:`LocalReplicator`, which ties them together (``sync_until_caught_up``,
  ``sync``, ``reload``, ``cdc_batch``, ``validate``).
- ``reconcile``: the latest state of a replicated table, row hashes, key-range digests, row diffs.
- ``validation``: DMS data validation as the stand-in performs it (pending, failed, suspended records).
- ``checks``: pure replication checks over DMS-shaped evidence, the same for aws and local
  (standard library only: the aws worker runs them).
- ``content``: lake content checks as Athena SQL (``sql/``), run on Athena from the aws worker;
  ``content_local`` runs the same requests on the local Athena stand-in.
- ``fresh_objects``: the fresh-object rule and the boto3 lister the aws worker uses.

Nothing is imported here, so importing the package stays cheap at DAG parse time.
"""
