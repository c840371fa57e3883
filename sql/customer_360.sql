-- One row per source customer (source_system, source_customer_id) with their
-- current profile and purchase measures as of the logical date.
-- Identity stitching across systems (one row per person) replaces this key later.
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
    SELECT *
    FROM order_lines
    WHERE source_customer_id IS NOT NULL
),
orders AS (
    SELECT
        source_system,
        source_customer_id,
        transaction_id,
        SUM(sign * amount) AS net_amount,
        BOOL_OR(status = 'completed') AS has_completed
    FROM customer_lines
    GROUP BY source_system, source_customer_id, transaction_id
),
order_measures AS (
    SELECT
        source_system,
        source_customer_id,
        COUNT(*) FILTER (WHERE has_completed) AS frequency,
        COUNT(*) FILTER (WHERE has_completed AND net_amount > 0) AS frequency_net,
        SUM(net_amount) AS net_revenue
    FROM orders
    GROUP BY source_system, source_customer_id
),
purchase_dates AS (
    SELECT
        source_system,
        source_customer_id,
        MIN(order_date) AS first_purchase_date,
        MAX(order_date) AS last_purchase_date,
        COUNT(DISTINCT order_date) AS purchase_days
    FROM customer_lines
    WHERE status = 'completed'
    GROUP BY source_system, source_customer_id
),
customers AS (
    SELECT source_system, source_customer_id FROM profiles_current
    UNION
    SELECT source_system, source_customer_id FROM order_measures
)
SELECT
    c.source_system || ':' || c.source_customer_id AS customer_key,
    c.source_system,
    c.source_customer_id,
    p.email,
    normalize_email(p.email) AS email_normalized,
    p.phone,
    normalize_phone(p.phone, p.country_code) AS phone_e164,
    p.first_name,
    p.last_name,
    p.birth_date,
    p.city,
    p.postal_code,
    p.country_code,
    p.account_type,
    p.signup_ts,
    p.email_opt_in,
    p.sms_opt_in,
    p.updated_at AS profile_updated_at,
    d.first_purchase_date,
    d.last_purchase_date,
    COALESCE(m.frequency, 0) AS frequency,
    COALESCE(m.frequency_net, 0) AS frequency_net,
    COALESCE(d.purchase_days, 0) AS purchase_days,
    CAST(COALESCE(m.net_revenue, 0) AS DECIMAL(18, 2)) AS monetary,
    CAST(DATE '{date}' - d.last_purchase_date AS INT) AS recency_days
FROM customers c
LEFT JOIN profiles_current p
    ON p.source_system = c.source_system AND p.source_customer_id = c.source_customer_id
LEFT JOIN order_measures m
    ON m.source_system = c.source_system AND m.source_customer_id = c.source_customer_id
LEFT JOIN purchase_dates d
    ON d.source_system = c.source_system AND d.source_customer_id = c.source_customer_id
