-- Actual value, potential value and value segment per customer with a CLV
-- (DOMAIN.md "Differentiate customers by value"; rules in docs/rules.md "Customer value").
--
-- * Discounting: the CLV discounts each month's purchases at the monthly rate
--   rm = (1 + annual_discount_rate)^(1/12) - 1. Flows projected here (costs,
--   potential purchases) are spread evenly over the horizon of H months, so they
--   get the mean monthly factor d = (1 - (1 + rm)^-H) / (rm * H) (1 when rm = 0).
-- * Cost to serve, projected from history: contact costs (customer_engagement's
--   contact_cost, the sum of the customer's event `cost`) per month observed,
--   times H, times d; plus return costs (the margin of returned lines, which the
--   refunds took back) per purchase day, times
--   the expected purchases, times d. Months observed run from the customer's
--   first_seen to the logical date, at least one.
-- * actual_value = clv - cost_to_serve.
-- * Potential: customers are grouped into tenure cohorts of `tenure_cohort_days`
--   by days since their first purchase; the cohort's 75th percentile
--   (`potential_percentile`, percentile_cont) of expected purchases and of expected
--   margin give potential_clv = P(purchases) * P(margin) * d;
--   potential_value = max(potential_clv - cost_to_serve, actual_value), never below
--   actual; unrealized_potential = potential_value - actual_value.
-- * Segments, first rule that applies: Below-Zero (actual < 0), Super-Growth (top
--   actual and top unrealized), Most Valuable (top actual), Most Growable (top
--   unrealized), Low-Maintenance. "Top" = in the best `value_top_fraction` (0.2):
--   percent_rank over valued customers, best first, below the fraction; ties share.
-- Customers without a CLV (no purchase, or models not identified) are not here.
WITH discount AS (
    SELECT
        CAST({clv_horizon_months} AS DOUBLE) AS horizon,
        CASE
            WHEN {clv_horizon_months} = 0 THEN 0.0
            WHEN {annual_discount_rate} = 0 THEN 1.0
            ELSE (1 - power(power(1 + {annual_discount_rate}, 1.0 / 12), -{clv_horizon_months}))
                / ((power(1 + {annual_discount_rate}, 1.0 / 12) - 1) * {clv_horizon_months})
        END AS d
),
return_costs AS (
    SELECT customer_key, SUM(margin) AS return_cost
    FROM customer_lines
    WHERE status = 'returned'
    GROUP BY customer_key
),
observed AS (
    SELECT customer_key, MIN(first_seen) AS first_seen
    FROM identity_map
    GROUP BY customer_key
),
valued AS (
    SELECT
        v.customer_key,
        v.expected_purchases,
        v.expected_margin,
        v.clv,
        CAST(CAST(DATE '{date}' - m.first_purchase_date AS INT) / {tenure_cohort_days} AS INT) AS tenure_cohort,
        COALESCE(CAST(c.contact_cost AS DOUBLE), 0.0)
            / GREATEST(1.0, CAST(CAST(DATE '{date}' - o.first_seen AS INT) + 1 AS DOUBLE) / (365.25 / 12))
            * k.horizon * k.d
        + COALESCE(CAST(r.return_cost AS DOUBLE), 0.0) / m.purchase_days
            * v.expected_purchases * k.d AS cost_to_serve,
        k.d
    FROM clv v
    CROSS JOIN discount k
    JOIN customer_measures m ON m.customer_key = v.customer_key
    JOIN observed o ON o.customer_key = v.customer_key
    LEFT JOIN customer_engagement c ON c.customer_key = v.customer_key
    LEFT JOIN return_costs r ON r.customer_key = v.customer_key
    WHERE v.clv IS NOT NULL
),
cohorts AS (
    SELECT
        tenure_cohort,
        percentile_cont({potential_percentile}) WITHIN GROUP (ORDER BY expected_purchases) AS cohort_purchases,
        percentile_cont({potential_percentile}) WITHIN GROUP (ORDER BY expected_margin) AS cohort_margin
    FROM valued
    GROUP BY tenure_cohort
),
worth AS (
    SELECT
        v.customer_key,
        v.tenure_cohort,
        v.cost_to_serve,
        v.clv - v.cost_to_serve AS actual_value,
        GREATEST(
            c.cohort_purchases * c.cohort_margin * v.d - v.cost_to_serve,
            v.clv - v.cost_to_serve
        ) AS potential_value
    FROM valued v
    JOIN cohorts c ON c.tenure_cohort = v.tenure_cohort
),
ranked AS (
    SELECT
        *,
        potential_value - actual_value AS unrealized_potential,
        PERCENT_RANK() OVER (ORDER BY actual_value DESC) < {value_top_fraction} AS top_actual,
        PERCENT_RANK() OVER (ORDER BY potential_value - actual_value DESC) < {value_top_fraction} AS top_unrealized
    FROM worth
)
SELECT
    customer_key,
    tenure_cohort,
    cost_to_serve,
    actual_value,
    potential_value,
    unrealized_potential,
    CASE
        WHEN actual_value < 0 THEN 'Below-Zero'
        WHEN top_actual AND top_unrealized THEN 'Super-Growth'
        WHEN top_actual THEN 'Most Valuable'
        WHEN top_unrealized THEN 'Most Growable'
        ELSE 'Low-Maintenance'
    END AS value_segment
FROM ranked
