-- The CLV models' input: one row per customer with at least one purchase day
-- (DATA_CONTRACT.md: "The CLV models count purchase days").
--
-- * frequency      = repeat purchase days = purchase days - 1;
-- * recency        = last - first purchase day, in the job's `clv_time_unit`;
-- * t (age)        = logical date - first purchase day, same unit;
-- * monetary_value = mean completed margin per repeat purchase day (DOMAIN.md:
--   Gamma-Gamma gives the expected margin per purchase; the first purchase day is
--   left out, as in the Gamma-Gamma paper); NULL without repeats. Completed lines,
--   not net of returns: returns are a cost to serve, counted apart (README
--   "Customer value").
WITH days AS (
    SELECT customer_key, order_date, SUM(margin) AS spend
    FROM customer_lines
    WHERE status = 'completed'
    GROUP BY customer_key, order_date
),
-- One pass over the purchase days: the repeat days' margin is the total less the
-- first day's (exact: decimals), so `days` is aggregated once, not joined back.
spans AS (
    SELECT
        customer_key,
        MIN(order_date) AS first_day,
        MAX(order_date) AS last_day,
        COUNT(*) AS purchase_days,
        SUM(spend) - first_value(spend ORDER BY order_date) AS repeat_spend
    FROM days
    GROUP BY customer_key
),
unit AS (
    SELECT CASE '{clv_time_unit}' WHEN 'days' THEN 1.0 WHEN 'weeks' THEN 7.0 END AS days_per_unit
)
SELECT
    s.customer_key,
    s.purchase_days - 1 AS frequency,
    CAST(CAST(s.last_day - s.first_day AS INT) AS DOUBLE) / u.days_per_unit AS recency,
    CAST(CAST(DATE '{date}' - s.first_day AS INT) AS DOUBLE) / u.days_per_unit AS t,
    CAST(CASE WHEN s.purchase_days > 1 THEN s.repeat_spend END AS DOUBLE)
        / NULLIF(s.purchase_days - 1, 0) AS monetary_value
FROM spans s
CROSS JOIN unit u
