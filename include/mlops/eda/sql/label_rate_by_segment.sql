-- Outcome rates by customer segment and channel (with support, so small cells are visible).
SELECT
    customer_segment,
    channel,
    count(*) AS orders,
    round(avg(CASE WHEN label = 'returned' THEN 1.0 ELSE 0.0 END), 4) AS return_rate,
    round(avg(CASE WHEN label = 'cancelled' THEN 1.0 ELSE 0.0 END), 4) AS cancel_rate,
    round(avg(CASE WHEN label = 'delivered' THEN 1.0 ELSE 0.0 END), 4) AS delivered_rate
FROM ${features}
GROUP BY customer_segment, channel
ORDER BY customer_segment, channel
