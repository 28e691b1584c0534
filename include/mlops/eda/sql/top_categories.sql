-- The five most frequent values of each categorical feature, with their share of rows.
WITH counts AS (
    SELECT 'channel' AS feature, channel AS value, count(*) AS row_count FROM ${features} GROUP BY channel
    UNION ALL
    SELECT 'payment_method', payment_method, count(*) FROM ${features} GROUP BY payment_method
    UNION ALL
    SELECT 'shipping_method', shipping_method, count(*) FROM ${features} GROUP BY shipping_method
    UNION ALL
    SELECT 'ship_country', ship_country, count(*) FROM ${features} GROUP BY ship_country
    UNION ALL
    SELECT 'customer_country', customer_country, count(*) FROM ${features} GROUP BY customer_country
    UNION ALL
    SELECT 'customer_segment', customer_segment, count(*) FROM ${features} GROUP BY customer_segment
    UNION ALL
    SELECT 'top_category', top_category, count(*) FROM ${features} GROUP BY top_category
),
ranked AS (
    SELECT
        feature,
        value,
        row_count,
        round(100.0 * row_count / sum(row_count) OVER (PARTITION BY feature), 2) AS pct,
        row_number() OVER (PARTITION BY feature ORDER BY row_count DESC, value) AS rank
    FROM counts
)
SELECT feature, rank, value, row_count, pct
FROM ranked
WHERE rank <= 5
ORDER BY feature, rank
