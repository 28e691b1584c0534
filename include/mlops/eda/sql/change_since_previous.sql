-- Change of headline statistics since the previous snapshot (the first run compares with itself).
WITH cur AS (
    SELECT
        count(*) AS row_count,
        avg(basket_value) AS mean_basket_value,
        avg(CASE WHEN label = 'returned' THEN 1.0 ELSE 0.0 END) AS return_rate,
        avg(CASE WHEN label = 'cancelled' THEN 1.0 ELSE 0.0 END) AS cancel_rate,
        avg(CAST(prior_orders AS DOUBLE)) AS mean_prior_orders,
        avg(CASE WHEN customer_age IS NULL THEN 1.0 ELSE 0.0 END) AS customer_age_null_rate,
        max(order_ts) AS last_order_ts
    FROM ${features}
),
prev AS (
    SELECT
        count(*) AS row_count,
        avg(basket_value) AS mean_basket_value,
        avg(CASE WHEN label = 'returned' THEN 1.0 ELSE 0.0 END) AS return_rate,
        avg(CASE WHEN label = 'cancelled' THEN 1.0 ELSE 0.0 END) AS cancel_rate,
        avg(CAST(prior_orders AS DOUBLE)) AS mean_prior_orders,
        avg(CASE WHEN customer_age IS NULL THEN 1.0 ELSE 0.0 END) AS customer_age_null_rate,
        max(order_ts) AS last_order_ts
    FROM ${features_previous}
),
metrics AS (
    SELECT 'row_count' AS metric, CAST(cur.row_count AS DOUBLE) AS current_value,
           CAST(prev.row_count AS DOUBLE) AS previous_value FROM cur CROSS JOIN prev
    UNION ALL
    SELECT 'mean_basket_value', cur.mean_basket_value, prev.mean_basket_value FROM cur CROSS JOIN prev
    UNION ALL
    SELECT 'return_rate', cur.return_rate, prev.return_rate FROM cur CROSS JOIN prev
    UNION ALL
    SELECT 'cancel_rate', cur.cancel_rate, prev.cancel_rate FROM cur CROSS JOIN prev
    UNION ALL
    SELECT 'mean_prior_orders', cur.mean_prior_orders, prev.mean_prior_orders FROM cur CROSS JOIN prev
    UNION ALL
    SELECT 'customer_age_null_rate', cur.customer_age_null_rate, prev.customer_age_null_rate FROM cur CROSS JOIN prev
    UNION ALL
    SELECT 'days_of_new_orders', CAST(date_diff('second', prev.last_order_ts, cur.last_order_ts) AS DOUBLE) / 86400.0,
           0.0 FROM cur CROSS JOIN prev
)
SELECT
    metric,
    round(current_value, 6) AS current_value,
    round(previous_value, 6) AS previous_value,
    round(current_value - previous_value, 6) AS abs_change,
    round(CASE WHEN previous_value = 0 THEN NULL ELSE 100.0 * (current_value - previous_value) / previous_value END, 3)
        AS pct_change
FROM metrics
ORDER BY metric
