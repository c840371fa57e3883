-- Activity per customer and channel (DOMAIN.md "Engagement and permission"): one
-- row per customer_key x channel with any contact event as of the logical date
-- (customer_events.sql attributes and cuts the events; docs/rules.md "Engagement,
-- permission and relationship stage" states every rule below). The one pass over
-- the events: channel_engagement publishes these columns but last_opt_out_ts,
-- which permission reads, so the events are attributed once and never staged.
--
-- * counts are events of that type (BIGINT, 0 when none);
-- * open_rate / click_rate = opened / delivered, clicked / delivered; NULL when
--   nothing was delivered (a rate over nothing is unknown, not 0 and not infinite);
-- * a *contact* is a touch that reaches the person, not a reaction to one: an
--   outbound `sent` or `service_contact` event, or any inbound event (reply, service
--   contact, review, referral). last_contact_ts is the latest contact, and
--   contacts_last_30d counts contacts dated within `fatigue_days` of the logical date
--   (days since <= fatigue_days, the one "within N days" convention of the job);
-- * engagements = opened + clicked + replied (the reactions DOMAIN.md calls
--   engaging); last_engagement_ts is the latest of them;
-- * contact_cost = sum of `cost` over all events, in the reporting currency (the
--   contract gives no currency for cost), exact: costs have two decimals;
-- * last_opt_out_ts = the latest `unsubscribed` or `complained` event.
SELECT
    customer_key,
    channel,
    COUNT(*) FILTER (WHERE event_type = 'sent') AS sent,
    COUNT(*) FILTER (WHERE event_type = 'delivered') AS delivered,
    COUNT(*) FILTER (WHERE event_type = 'opened') AS opened,
    COUNT(*) FILTER (WHERE event_type = 'clicked') AS clicked,
    COUNT(*) FILTER (WHERE event_type = 'bounced') AS bounced,
    COUNT(*) FILTER (WHERE event_type = 'unsubscribed') AS unsubscribed,
    COUNT(*) FILTER (WHERE event_type = 'complained') AS complained,
    COUNT(*) FILTER (WHERE event_type = 'replied') AS replied,
    COUNT(*) FILTER (WHERE event_type = 'service_contact') AS service_contacts,
    COUNT(*) FILTER (WHERE event_type = 'review') AS reviews,
    COUNT(*) FILTER (WHERE event_type = 'referral') AS referrals,
    CAST(COUNT(*) FILTER (WHERE event_type = 'opened') AS DOUBLE)
        / CAST(NULLIF(COUNT(*) FILTER (WHERE event_type = 'delivered'), 0) AS DOUBLE) AS open_rate,
    CAST(COUNT(*) FILTER (WHERE event_type = 'clicked') AS DOUBLE)
        / CAST(NULLIF(COUNT(*) FILTER (WHERE event_type = 'delivered'), 0) AS DOUBLE) AS click_rate,
    COUNT(*) FILTER (WHERE event_type IN ('opened', 'clicked', 'replied')) AS engagements,
    MAX(event_ts) FILTER (WHERE event_type IN ('opened', 'clicked', 'replied')) AS last_engagement_ts,
    MAX(event_ts) FILTER (WHERE is_contact) AS last_contact_ts,
    COUNT(*) FILTER (
        WHERE is_contact AND CAST(DATE '{date}' - event_date AS INT) <= {fatigue_days}
    ) AS contacts_last_30d,
    CAST(COALESCE(SUM(cost), 0) AS DECIMAL(18, 2)) AS contact_cost,
    MAX(event_ts) FILTER (WHERE event_type IN ('unsubscribed', 'complained')) AS last_opt_out_ts
FROM (
    SELECT
        customer_key,
        channel,
        event_type,
        event_ts,
        event_date,
        cost,
        (direction = 'outbound' AND event_type IN ('sent', 'service_contact'))
            OR direction = 'inbound' AS is_contact
    FROM customer_events
) e
GROUP BY customer_key, channel
