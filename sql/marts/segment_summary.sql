-- Customers, revenue and value per segment and stage, as of the logical date
-- (DOMAIN.md "Outputs": segment_summary), read from customer_360 so it always
-- adds up to it.
--
-- One row per (dimension, segment): dimension `all` (one row, segment `all`),
-- `value_segment`, `rfm_segment`, `ladder_stage`, `lifecycle_stage`. A NULL segment collects the customers the
-- dimension does not apply to (e.g. no purchase, or no CLV).
-- Sums are over the customers of the row; a NULL value (no CLV) adds nothing.
WITH measures AS (
    SELECT
        value_segment, rfm_segment, ladder_stage, lifecycle_stage, frequency, monetary, clv,
        cost_to_serve, actual_value, potential_value, unrealized_potential
    FROM customer_360
),
rows AS (
    SELECT 'all' AS dimension, 'all' AS segment, * FROM measures
    UNION ALL
    SELECT 'value_segment', value_segment AS segment, * FROM measures
    UNION ALL
    SELECT 'rfm_segment', rfm_segment AS segment, * FROM measures
    UNION ALL
    SELECT 'ladder_stage', ladder_stage AS segment, * FROM measures
    UNION ALL
    SELECT 'lifecycle_stage', lifecycle_stage AS segment, * FROM measures
)
SELECT
    dimension,
    segment,
    COUNT(*) AS customers,
    COUNT(*) FILTER (WHERE frequency > 0) AS purchasers,
    CAST(SUM(monetary) AS DECIMAL(18, 2)) AS revenue,
    CAST(SUM(clv) AS DECIMAL(18, 2)) AS clv,
    CAST(SUM(cost_to_serve) AS DECIMAL(18, 2)) AS cost_to_serve,
    CAST(SUM(actual_value) AS DECIMAL(18, 2)) AS actual_value,
    CAST(SUM(potential_value) AS DECIMAL(18, 2)) AS potential_value,
    CAST(SUM(unrealized_potential) AS DECIMAL(18, 2)) AS unrealized_potential
FROM rows
GROUP BY dimension, segment
