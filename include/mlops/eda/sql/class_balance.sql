-- Rows per split and class balance within each split.
SELECT
    split,
    label,
    count(*) AS row_count,
    round(100.0 * count(*) / sum(count(*)) OVER (PARTITION BY split), 2) AS pct_of_split
FROM ${features}
GROUP BY split, label
ORDER BY split, label
