-- One row per customer (customer_key from the identity map) with the golden profile
-- and purchase measures over all of the customer's records, as of the logical date.
--
-- An order line belongs to the customer of its source id, or, for a guest order (no
-- source_customer_id), to the customer of its email. A guest line whose email is not
-- an identifier is unattributed: in no customer's figures (the stitch step counts
-- such orders in the run log).
--
-- DATA_CONTRACT.md, Orders and purchases:
-- * an order is a transaction_id;
-- * frequency      = distinct orders with at least one completed line;
-- * frequency_net  = those orders whose net amount (completed - returned) is still > 0;
-- * monetary       = completed minus returned amounts, summed at full precision,
--                    rounded to cents (half away from zero) at the end;
-- * purchase_days  = distinct UTC dates with a completed order line;
-- * recency_days   = days from the last purchase date to the logical date.
WITH customer_lines AS (
    SELECT l.*, COALESCE(s.customer_key, e.customer_key) AS customer_key
    FROM order_lines l
    LEFT JOIN identity_map s
        ON s.id_type = 'source' AND s.id_value = l.source_system || ':' || l.source_customer_id
    LEFT JOIN identity_map e
        ON e.id_type = 'email' AND l.source_customer_id IS NULL
        AND e.id_value = normalize_email(l.email)
    WHERE COALESCE(s.customer_key, e.customer_key) IS NOT NULL
),
orders AS (
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
),
customers AS (
    SELECT
        customer_key,
        COUNT(*) FILTER (WHERE id_type = 'source') AS source_records,
        MIN(first_seen) AS first_seen
    FROM identity_map
    GROUP BY customer_key
)
SELECT
    c.customer_key,
    g.email,
    g.phone,
    g.first_name,
    g.last_name,
    g.birth_date,
    g.city,
    g.postal_code,
    g.country_code,
    g.account_type,
    g.signup_ts,
    g.email_opt_in,
    g.email_opt_in_updated_at,
    g.sms_opt_in,
    g.sms_opt_in_updated_at,
    g.profile_updated_at,
    c.source_records,
    c.first_seen,
    d.first_purchase_date,
    d.last_purchase_date,
    COALESCE(m.frequency, 0) AS frequency,
    COALESCE(m.frequency_net, 0) AS frequency_net,
    COALESCE(d.purchase_days, 0) AS purchase_days,
    CAST(COALESCE(m.net_revenue, 0) AS DECIMAL(18, 2)) AS monetary,
    CAST(DATE '{date}' - d.last_purchase_date AS INT) AS recency_days
FROM customers c
LEFT JOIN golden_profile g ON g.customer_key = c.customer_key
LEFT JOIN order_measures m ON m.customer_key = c.customer_key
LEFT JOIN purchase_dates d ON d.customer_key = c.customer_key
