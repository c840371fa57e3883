-- Relationship stage per customer (DOMAIN.md "Relationship stage"): the loyalty
-- ladder rung and the lifecycle stage of every customer_key, as of the logical date.
-- "Within N days" means days since <= N everywhere in the job (docs/rules.md "Engagement,
-- permission and relationship stage").
--
-- Ladder, rungs tested top-down, the first that holds wins:
--   Partner   golden account_type 'business' and an Advocate, or completed
--             purchases in `partner_months` consecutive calendar months (UTC order
--             dates; any such run, ending anywhere up to the logical date);
--   Advocate  has a review or referral event;
--   Supporter repeat buyer (frequency >= 2) with an opened/clicked/replied event
--             within `engaged_days`;
--   Client    repeat buyer (frequency >= 2);
--   Customer  one purchase (frequency = 1);
--   Prospect  everyone else (a profile, or a guest/contact known only by email).
-- frequency = distinct orders with a completed line (customer_measures.sql).
--
-- Lifecycle, NULL without a purchase (frequency 0), else tested in this order:
--   new      first purchase within `new_days`;
--   lapsed   P(alive) < `lapsed_p_alive`, or last purchase more than `lapsed_days` ago;
--   at_risk  P(alive) < `at_risk_p_alive`;
--   active   otherwise.
-- P(alive) is NULL when the CLV models are not identified: the comparisons are then
-- unknown, so only the recency rules decide (new, lapsed by days, else active).
WITH customers AS (
    SELECT DISTINCT customer_key FROM identity_map
),
purchase_months AS (
    SELECT DISTINCT
        customer_key,
        CAST(date_part('year', order_date) * 12 + date_part('month', order_date) AS BIGINT) AS month_no
    FROM customer_lines
    WHERE status = 'completed'
),
month_runs AS (
    -- Gaps and islands: within a run of consecutive months month_no - row_number is
    -- constant, so each (customer, island) group is one run.
    SELECT customer_key, COUNT(*) AS run_months
    FROM (
        SELECT
            customer_key,
            month_no - ROW_NUMBER() OVER (PARTITION BY customer_key ORDER BY month_no) AS island
        FROM purchase_months
    ) islands
    GROUP BY customer_key, island
),
longest_run AS (
    SELECT customer_key, MAX(run_months) AS longest_month_run
    FROM month_runs
    GROUP BY customer_key
),
facts AS (
    SELECT
        c.customer_key,
        COALESCE(g.account_type = 'business', false) AS is_business,
        COALESCE(m.frequency, 0) AS frequency,
        CAST(DATE '{date}' - m.first_purchase_date AS INT) AS days_since_first,
        CAST(DATE '{date}' - m.last_purchase_date AS INT) AS recency_days,
        COALESCE(e.reviews_referrals, 0) > 0 AS is_advocate,
        COALESCE(CAST(DATE '{date}' - CAST(e.last_engagement_ts AS DATE) AS INT) <= {engaged_days}, false)
            AS engaged_recently,
        COALESCE(r.longest_month_run, 0) AS longest_month_run,
        v.p_alive
    FROM customers c
    LEFT JOIN golden_profile g ON g.customer_key = c.customer_key
    LEFT JOIN customer_measures m ON m.customer_key = c.customer_key
    LEFT JOIN customer_engagement e ON e.customer_key = c.customer_key
    LEFT JOIN longest_run r ON r.customer_key = c.customer_key
    LEFT JOIN clv v ON v.customer_key = c.customer_key
)
SELECT
    customer_key,
    CASE
        WHEN (is_business AND is_advocate) OR longest_month_run >= {partner_months} THEN 'Partner'
        WHEN is_advocate THEN 'Advocate'
        WHEN frequency >= 2 AND engaged_recently THEN 'Supporter'
        WHEN frequency >= 2 THEN 'Client'
        WHEN frequency = 1 THEN 'Customer'
        ELSE 'Prospect'
    END AS ladder_stage,
    CASE
        WHEN frequency = 0 THEN NULL
        WHEN days_since_first <= {new_days} THEN 'new'
        WHEN p_alive < {lapsed_p_alive} OR recency_days > {lapsed_days} THEN 'lapsed'
        WHEN p_alive < {at_risk_p_alive} THEN 'at_risk'
        ELSE 'active'
    END AS lifecycle_stage
FROM facts
