-- The columns the catalog exposes for the replicated tables (Trino SQL; DuckDB locally).
SELECT table_name, column_name, data_type
FROM information_schema.columns
WHERE table_schema = '${database}' AND table_name IN (${tables})
ORDER BY table_name, ordinal_position
