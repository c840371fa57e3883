-- RFM scores and named segment per purchasing customer (at least one order with a
-- completed line), as of the logical date (DOMAIN.md "Behaviour: RFM").
--
-- * recency_days = days from the last purchase date to the logical date (fewer is better);
-- * frequency    = distinct orders with a completed line;
-- * monetary     = net revenue rounded to cents, so customers who look equal tie.
-- Scores (DATA_CONTRACT.md, Scores): min(5, 1 + floor(5 * percent_rank)) over the
-- purchasing customers, ordered so 5 is best; ties share a rank, hence a score.
-- percent_rank is 0 when there is only one purchasing customer: every score is 1.
-- The segment comes from the `rfm_segments` reference table keyed on (r, f, m)
-- (a cell listed twice: the later line, rfm_segments_deduped); a combination
-- missing from a user's table gives a NULL segment.
WITH purchasers AS (
    SELECT
        customer_key,
        CAST(DATE '{date}' - last_purchase_date AS INT) AS recency_days,
        frequency,
        CAST(net_revenue AS DECIMAL(18, 2)) AS monetary
    FROM customer_measures
    WHERE frequency > 0
),
scored AS (
    SELECT
        customer_key,
        CAST(LEAST(5, 1 + FLOOR(5 * PERCENT_RANK() OVER (ORDER BY recency_days DESC))) AS INT) AS r_score,
        CAST(LEAST(5, 1 + FLOOR(5 * PERCENT_RANK() OVER (ORDER BY frequency))) AS INT) AS f_score,
        CAST(LEAST(5, 1 + FLOOR(5 * PERCENT_RANK() OVER (ORDER BY monetary))) AS INT) AS m_score
    FROM purchasers
)
SELECT
    s.customer_key,
    s.r_score,
    s.f_score,
    s.m_score,
    CAST(s.r_score AS VARCHAR) || CAST(s.f_score AS VARCHAR) || CAST(s.m_score AS VARCHAR) AS rfm_cell,
    g.segment AS rfm_segment
FROM scored s
LEFT JOIN rfm_segments_deduped g ON g.r = s.r_score AND g.f = s.f_score AND g.m = s.m_score
