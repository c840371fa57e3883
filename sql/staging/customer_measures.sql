-- Purchase measures per customer who has any attributed order line, as of the
-- logical date (customer_360, RFM and the CLV summary all read these).
--
-- DATA_CONTRACT.md, Orders and purchases:
-- * an order is a transaction_id;
-- * frequency      = distinct orders with at least one completed line;
-- * frequency_net  = those orders whose net amount (completed - returned) is still > 0;
-- * net_revenue    = completed minus returned amounts at full precision (round at the end);
-- * purchase_days  = distinct UTC dates with a completed order line.
WITH orders AS (
    SELECT
        customer_key,
        transaction_id,
        SUM(sign * amount) AS net_amount,
        BOOL_OR(status = 'completed') AS has_completed
    FROM customer_lines
    GROUP BY customer_key, transaction_id
),
order_measures AS (
    SELECT
        customer_key,
        COUNT(*) FILTER (WHERE has_completed) AS frequency,
        COUNT(*) FILTER (WHERE has_completed AND net_amount > 0) AS frequency_net,
        SUM(net_amount) AS net_revenue
    FROM orders
    GROUP BY customer_key
),
purchase_dates AS (
    SELECT
        customer_key,
        MIN(order_date) AS first_purchase_date,
        MAX(order_date) AS last_purchase_date,
        COUNT(DISTINCT order_date) AS purchase_days
    FROM customer_lines
    WHERE status = 'completed'
    GROUP BY customer_key
)
SELECT
    m.customer_key,
    m.frequency,
    m.frequency_net,
    m.net_revenue,
    d.first_purchase_date,
    d.last_purchase_date,
    COALESCE(d.purchase_days, 0) AS purchase_days
FROM order_measures m
LEFT JOIN purchase_dates d ON d.customer_key = m.customer_key
