-- Lake content of one replicated table (Trino SQL for Athena engine v3; the local stand-in
-- transpiles it for DuckDB). One result row:
--   row_count       rows in the table's latest state (last change per key, deletes removed)
--   nulls__<column> NULL values of each column in that latest state
--   duplicate_keys  (key, change sequence) pairs written more than once: files of two loads mixed,
--                   or a file copied in twice
--   null_keys       change rows without a key
SELECT
  count(*) AS row_count,${null_counts}
  (
    SELECT count(*) FROM (
      SELECT ${key}, dms_change_seq FROM ${raw_table} GROUP BY ${key}, dms_change_seq HAVING count(*) > 1
    ) AS repeated
  ) AS duplicate_keys,
  (SELECT count_if(${key} IS NULL) FROM ${raw_table}) AS null_keys
FROM (
  SELECT *, row_number() OVER (PARTITION BY ${key} ORDER BY dms_change_seq DESC) AS change_rank
  FROM ${raw_table}
) AS changes
WHERE change_rank = 1 AND op <> 'D'
