-- Distribution of the numeric features: count, min, p05, median, p95, max, mean, stddev.
SELECT 'basket_value' AS feature,
       count(basket_value) AS non_null, round(min(CAST(basket_value AS DOUBLE)), 4) AS min_value, round(approx_percentile(CAST(basket_value AS DOUBLE), 0.05), 4) AS p05,
       round(approx_percentile(CAST(basket_value AS DOUBLE), 0.5), 4) AS p50, round(approx_percentile(CAST(basket_value AS DOUBLE), 0.95), 4) AS p95,
       round(max(CAST(basket_value AS DOUBLE)), 4) AS max_value, round(avg(CAST(basket_value AS DOUBLE)), 4) AS mean, round(stddev_samp(CAST(basket_value AS DOUBLE)), 4) AS stddev
FROM ${features}
UNION ALL
SELECT 'basket_gross',
       count(basket_gross) AS non_null, round(min(CAST(basket_gross AS DOUBLE)), 4) AS min_value, round(approx_percentile(CAST(basket_gross AS DOUBLE), 0.05), 4) AS p05,
       round(approx_percentile(CAST(basket_gross AS DOUBLE), 0.5), 4) AS p50, round(approx_percentile(CAST(basket_gross AS DOUBLE), 0.95), 4) AS p95,
       round(max(CAST(basket_gross AS DOUBLE)), 4) AS max_value, round(avg(CAST(basket_gross AS DOUBLE)), 4) AS mean, round(stddev_samp(CAST(basket_gross AS DOUBLE)), 4) AS stddev
FROM ${features}
UNION ALL
SELECT 'basket_lines',
       count(basket_lines) AS non_null, round(min(CAST(basket_lines AS DOUBLE)), 4) AS min_value, round(approx_percentile(CAST(basket_lines AS DOUBLE), 0.05), 4) AS p05,
       round(approx_percentile(CAST(basket_lines AS DOUBLE), 0.5), 4) AS p50, round(approx_percentile(CAST(basket_lines AS DOUBLE), 0.95), 4) AS p95,
       round(max(CAST(basket_lines AS DOUBLE)), 4) AS max_value, round(avg(CAST(basket_lines AS DOUBLE)), 4) AS mean, round(stddev_samp(CAST(basket_lines AS DOUBLE)), 4) AS stddev
FROM ${features}
UNION ALL
SELECT 'basket_units',
       count(basket_units) AS non_null, round(min(CAST(basket_units AS DOUBLE)), 4) AS min_value, round(approx_percentile(CAST(basket_units AS DOUBLE), 0.05), 4) AS p05,
       round(approx_percentile(CAST(basket_units AS DOUBLE), 0.5), 4) AS p50, round(approx_percentile(CAST(basket_units AS DOUBLE), 0.95), 4) AS p95,
       round(max(CAST(basket_units AS DOUBLE)), 4) AS max_value, round(avg(CAST(basket_units AS DOUBLE)), 4) AS mean, round(stddev_samp(CAST(basket_units AS DOUBLE)), 4) AS stddev
FROM ${features}
UNION ALL
SELECT 'avg_unit_price',
       count(avg_unit_price) AS non_null, round(min(CAST(avg_unit_price AS DOUBLE)), 4) AS min_value, round(approx_percentile(CAST(avg_unit_price AS DOUBLE), 0.05), 4) AS p05,
       round(approx_percentile(CAST(avg_unit_price AS DOUBLE), 0.5), 4) AS p50, round(approx_percentile(CAST(avg_unit_price AS DOUBLE), 0.95), 4) AS p95,
       round(max(CAST(avg_unit_price AS DOUBLE)), 4) AS max_value, round(avg(CAST(avg_unit_price AS DOUBLE)), 4) AS mean, round(stddev_samp(CAST(avg_unit_price AS DOUBLE)), 4) AS stddev
FROM ${features}
UNION ALL
SELECT 'max_unit_price',
       count(max_unit_price) AS non_null, round(min(CAST(max_unit_price AS DOUBLE)), 4) AS min_value, round(approx_percentile(CAST(max_unit_price AS DOUBLE), 0.05), 4) AS p05,
       round(approx_percentile(CAST(max_unit_price AS DOUBLE), 0.5), 4) AS p50, round(approx_percentile(CAST(max_unit_price AS DOUBLE), 0.95), 4) AS p95,
       round(max(CAST(max_unit_price AS DOUBLE)), 4) AS max_value, round(avg(CAST(max_unit_price AS DOUBLE)), 4) AS mean, round(stddev_samp(CAST(max_unit_price AS DOUBLE)), 4) AS stddev
FROM ${features}
UNION ALL
SELECT 'basket_weight_kg',
       count(basket_weight_kg) AS non_null, round(min(CAST(basket_weight_kg AS DOUBLE)), 4) AS min_value, round(approx_percentile(CAST(basket_weight_kg AS DOUBLE), 0.05), 4) AS p05,
       round(approx_percentile(CAST(basket_weight_kg AS DOUBLE), 0.5), 4) AS p50, round(approx_percentile(CAST(basket_weight_kg AS DOUBLE), 0.95), 4) AS p95,
       round(max(CAST(basket_weight_kg AS DOUBLE)), 4) AS max_value, round(avg(CAST(basket_weight_kg AS DOUBLE)), 4) AS mean, round(stddev_samp(CAST(basket_weight_kg AS DOUBLE)), 4) AS stddev
FROM ${features}
UNION ALL
SELECT 'shipping_fee',
       count(shipping_fee) AS non_null, round(min(CAST(shipping_fee AS DOUBLE)), 4) AS min_value, round(approx_percentile(CAST(shipping_fee AS DOUBLE), 0.05), 4) AS p05,
       round(approx_percentile(CAST(shipping_fee AS DOUBLE), 0.5), 4) AS p50, round(approx_percentile(CAST(shipping_fee AS DOUBLE), 0.95), 4) AS p95,
       round(max(CAST(shipping_fee AS DOUBLE)), 4) AS max_value, round(avg(CAST(shipping_fee AS DOUBLE)), 4) AS mean, round(stddev_samp(CAST(shipping_fee AS DOUBLE)), 4) AS stddev
FROM ${features}
UNION ALL
SELECT 'promised_days',
       count(promised_days) AS non_null, round(min(CAST(promised_days AS DOUBLE)), 4) AS min_value, round(approx_percentile(CAST(promised_days AS DOUBLE), 0.05), 4) AS p05,
       round(approx_percentile(CAST(promised_days AS DOUBLE), 0.5), 4) AS p50, round(approx_percentile(CAST(promised_days AS DOUBLE), 0.95), 4) AS p95,
       round(max(CAST(promised_days AS DOUBLE)), 4) AS max_value, round(avg(CAST(promised_days AS DOUBLE)), 4) AS mean, round(stddev_samp(CAST(promised_days AS DOUBLE)), 4) AS stddev
FROM ${features}
UNION ALL
SELECT 'customer_age',
       count(customer_age) AS non_null, round(min(CAST(customer_age AS DOUBLE)), 4) AS min_value, round(approx_percentile(CAST(customer_age AS DOUBLE), 0.05), 4) AS p05,
       round(approx_percentile(CAST(customer_age AS DOUBLE), 0.5), 4) AS p50, round(approx_percentile(CAST(customer_age AS DOUBLE), 0.95), 4) AS p95,
       round(max(CAST(customer_age AS DOUBLE)), 4) AS max_value, round(avg(CAST(customer_age AS DOUBLE)), 4) AS mean, round(stddev_samp(CAST(customer_age AS DOUBLE)), 4) AS stddev
FROM ${features}
UNION ALL
SELECT 'customer_tenure_days',
       count(customer_tenure_days) AS non_null, round(min(CAST(customer_tenure_days AS DOUBLE)), 4) AS min_value, round(approx_percentile(CAST(customer_tenure_days AS DOUBLE), 0.05), 4) AS p05,
       round(approx_percentile(CAST(customer_tenure_days AS DOUBLE), 0.5), 4) AS p50, round(approx_percentile(CAST(customer_tenure_days AS DOUBLE), 0.95), 4) AS p95,
       round(max(CAST(customer_tenure_days AS DOUBLE)), 4) AS max_value, round(avg(CAST(customer_tenure_days AS DOUBLE)), 4) AS mean, round(stddev_samp(CAST(customer_tenure_days AS DOUBLE)), 4) AS stddev
FROM ${features}
UNION ALL
SELECT 'prior_orders',
       count(prior_orders) AS non_null, round(min(CAST(prior_orders AS DOUBLE)), 4) AS min_value, round(approx_percentile(CAST(prior_orders AS DOUBLE), 0.05), 4) AS p05,
       round(approx_percentile(CAST(prior_orders AS DOUBLE), 0.5), 4) AS p50, round(approx_percentile(CAST(prior_orders AS DOUBLE), 0.95), 4) AS p95,
       round(max(CAST(prior_orders AS DOUBLE)), 4) AS max_value, round(avg(CAST(prior_orders AS DOUBLE)), 4) AS mean, round(stddev_samp(CAST(prior_orders AS DOUBLE)), 4) AS stddev
FROM ${features}
UNION ALL
SELECT 'prior_spend',
       count(prior_spend) AS non_null, round(min(CAST(prior_spend AS DOUBLE)), 4) AS min_value, round(approx_percentile(CAST(prior_spend AS DOUBLE), 0.05), 4) AS p05,
       round(approx_percentile(CAST(prior_spend AS DOUBLE), 0.5), 4) AS p50, round(approx_percentile(CAST(prior_spend AS DOUBLE), 0.95), 4) AS p95,
       round(max(CAST(prior_spend AS DOUBLE)), 4) AS max_value, round(avg(CAST(prior_spend AS DOUBLE)), 4) AS mean, round(stddev_samp(CAST(prior_spend AS DOUBLE)), 4) AS stddev
FROM ${features}
UNION ALL
SELECT 'prior_return_rate',
       count(prior_return_rate) AS non_null, round(min(CAST(prior_return_rate AS DOUBLE)), 4) AS min_value, round(approx_percentile(CAST(prior_return_rate AS DOUBLE), 0.05), 4) AS p05,
       round(approx_percentile(CAST(prior_return_rate AS DOUBLE), 0.5), 4) AS p50, round(approx_percentile(CAST(prior_return_rate AS DOUBLE), 0.95), 4) AS p95,
       round(max(CAST(prior_return_rate AS DOUBLE)), 4) AS max_value, round(avg(CAST(prior_return_rate AS DOUBLE)), 4) AS mean, round(stddev_samp(CAST(prior_return_rate AS DOUBLE)), 4) AS stddev
FROM ${features}
UNION ALL
SELECT 'prior_cancel_rate',
       count(prior_cancel_rate) AS non_null, round(min(CAST(prior_cancel_rate AS DOUBLE)), 4) AS min_value, round(approx_percentile(CAST(prior_cancel_rate AS DOUBLE), 0.05), 4) AS p05,
       round(approx_percentile(CAST(prior_cancel_rate AS DOUBLE), 0.5), 4) AS p50, round(approx_percentile(CAST(prior_cancel_rate AS DOUBLE), 0.95), 4) AS p95,
       round(max(CAST(prior_cancel_rate AS DOUBLE)), 4) AS max_value, round(avg(CAST(prior_cancel_rate AS DOUBLE)), 4) AS mean, round(stddev_samp(CAST(prior_cancel_rate AS DOUBLE)), 4) AS stddev
FROM ${features}
UNION ALL
SELECT 'days_since_prev_order',
       count(days_since_prev_order) AS non_null, round(min(CAST(days_since_prev_order AS DOUBLE)), 4) AS min_value, round(approx_percentile(CAST(days_since_prev_order AS DOUBLE), 0.05), 4) AS p05,
       round(approx_percentile(CAST(days_since_prev_order AS DOUBLE), 0.5), 4) AS p50, round(approx_percentile(CAST(days_since_prev_order AS DOUBLE), 0.95), 4) AS p95,
       round(max(CAST(days_since_prev_order AS DOUBLE)), 4) AS max_value, round(avg(CAST(days_since_prev_order AS DOUBLE)), 4) AS mean, round(stddev_samp(CAST(days_since_prev_order AS DOUBLE)), 4) AS stddev
FROM ${features}
UNION ALL
SELECT 'max_discount_pct',
       count(max_discount_pct) AS non_null, round(min(CAST(max_discount_pct AS DOUBLE)), 4) AS min_value, round(approx_percentile(CAST(max_discount_pct AS DOUBLE), 0.05), 4) AS p05,
       round(approx_percentile(CAST(max_discount_pct AS DOUBLE), 0.5), 4) AS p50, round(approx_percentile(CAST(max_discount_pct AS DOUBLE), 0.95), 4) AS p95,
       round(max(CAST(max_discount_pct AS DOUBLE)), 4) AS max_value, round(avg(CAST(max_discount_pct AS DOUBLE)), 4) AS mean, round(stddev_samp(CAST(max_discount_pct AS DOUBLE)), 4) AS stddev
FROM ${features}
UNION ALL
SELECT 'product_return_rate_max',
       count(product_return_rate_max) AS non_null, round(min(CAST(product_return_rate_max AS DOUBLE)), 4) AS min_value, round(approx_percentile(CAST(product_return_rate_max AS DOUBLE), 0.05), 4) AS p05,
       round(approx_percentile(CAST(product_return_rate_max AS DOUBLE), 0.5), 4) AS p50, round(approx_percentile(CAST(product_return_rate_max AS DOUBLE), 0.95), 4) AS p95,
       round(max(CAST(product_return_rate_max AS DOUBLE)), 4) AS max_value, round(avg(CAST(product_return_rate_max AS DOUBLE)), 4) AS mean, round(stddev_samp(CAST(product_return_rate_max AS DOUBLE)), 4) AS stddev
FROM ${features}
UNION ALL
SELECT 'product_return_rate_mean',
       count(product_return_rate_mean) AS non_null, round(min(CAST(product_return_rate_mean AS DOUBLE)), 4) AS min_value, round(approx_percentile(CAST(product_return_rate_mean AS DOUBLE), 0.05), 4) AS p05,
       round(approx_percentile(CAST(product_return_rate_mean AS DOUBLE), 0.5), 4) AS p50, round(approx_percentile(CAST(product_return_rate_mean AS DOUBLE), 0.95), 4) AS p95,
       round(max(CAST(product_return_rate_mean AS DOUBLE)), 4) AS max_value, round(avg(CAST(product_return_rate_mean AS DOUBLE)), 4) AS mean, round(stddev_samp(CAST(product_return_rate_mean AS DOUBLE)), 4) AS stddev
FROM ${features}
