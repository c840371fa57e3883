-- One row per customer (customer_key from the identity map) with the golden profile
-- and purchase measures over all of the customer's records, as of the logical date.
--
-- Order lines are attributed in customer_lines.sql, measured in customer_measures.sql
-- (DATA_CONTRACT.md, Orders and purchases):
-- * monetary       = net revenue rounded to cents (half away from zero) at the end;
-- * recency_days   = days from the last purchase date to the logical date.
-- RFM scores and segment (rfm.sql) and the CLV predictions (builtin fit_clv over
-- clv_summary.sql) and the value columns (customer_value.sql) are NULL for
-- customers without a purchase.
WITH customers AS (
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
    m.first_purchase_date,
    m.last_purchase_date,
    COALESCE(m.frequency, 0) AS frequency,
    COALESCE(m.frequency_net, 0) AS frequency_net,
    COALESCE(m.purchase_days, 0) AS purchase_days,
    CAST(COALESCE(m.net_revenue, 0) AS DECIMAL(18, 2)) AS monetary,
    CAST(DATE '{date}' - m.last_purchase_date AS INT) AS recency_days,
    r.r_score,
    r.f_score,
    r.m_score,
    r.rfm_cell,
    r.rfm_segment,
    v.p_alive,
    v.expected_purchases,
    CAST(v.expected_margin AS DECIMAL(18, 2)) AS expected_margin,
    CAST(v.clv AS DECIMAL(18, 2)) AS clv,
    w.tenure_cohort,
    CAST(w.cost_to_serve AS DECIMAL(18, 2)) AS cost_to_serve,
    CAST(w.actual_value AS DECIMAL(18, 2)) AS actual_value,
    CAST(w.potential_value AS DECIMAL(18, 2)) AS potential_value,
    CAST(w.unrealized_potential AS DECIMAL(18, 2)) AS unrealized_potential,
    w.value_segment,
    -- Engagement, permission, relationship stage (docs/rules.md "Engagement, permission and
    -- relationship stage"): counts 0 and flags false for customers without events.
    e.preferred_channel,
    e.last_contact_ts,
    COALESCE(e.contacts_last_30d, 0) AS contacts_last_30d,
    e.last_engagement_ts,
    COALESCE(e.reviews_referrals, 0) AS reviews_referrals,
    CAST(COALESCE(e.contact_cost, 0) AS DECIMAL(18, 2)) AS contact_cost,
    COALESCE(e.email_sent, 0) AS email_sent,
    COALESCE(e.email_delivered, 0) AS email_delivered,
    COALESCE(e.email_opened, 0) AS email_opened,
    COALESCE(e.email_clicked, 0) AS email_clicked,
    COALESCE(e.email_bounced, 0) AS email_bounced,
    COALESCE(e.email_unsubscribed, 0) AS email_unsubscribed,
    COALESCE(e.email_complained, 0) AS email_complained,
    e.email_open_rate,
    e.email_click_rate,
    COALESCE(e.sms_sent, 0) AS sms_sent,
    COALESCE(e.sms_delivered, 0) AS sms_delivered,
    COALESCE(e.sms_opened, 0) AS sms_opened,
    COALESCE(e.sms_clicked, 0) AS sms_clicked,
    COALESCE(e.sms_bounced, 0) AS sms_bounced,
    COALESCE(e.sms_unsubscribed, 0) AS sms_unsubscribed,
    COALESCE(e.sms_complained, 0) AS sms_complained,
    e.sms_open_rate,
    e.sms_click_rate,
    COALESCE(p.email_marketable, false) AS email_marketable,
    COALESCE(p.sms_marketable, false) AS sms_marketable,
    s.ladder_stage,
    s.lifecycle_stage
FROM customers c
LEFT JOIN golden_profile g ON g.customer_key = c.customer_key
LEFT JOIN customer_measures m ON m.customer_key = c.customer_key
LEFT JOIN rfm r ON r.customer_key = c.customer_key
LEFT JOIN clv v ON v.customer_key = c.customer_key
LEFT JOIN customer_value w ON w.customer_key = c.customer_key
LEFT JOIN customer_engagement e ON e.customer_key = c.customer_key
LEFT JOIN permission p ON p.customer_key = c.customer_key
LEFT JOIN relationship_stage s ON s.customer_key = c.customer_key
