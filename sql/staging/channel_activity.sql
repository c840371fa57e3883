-- Activity per customer and channel (DOMAIN.md "Engagement and permission"): one
-- row per customer_key x channel with any contact event as of the logical date
-- (customer_events.sql attributes the carried activity rows and cuts them at the
-- date; docs/rules.md "Engagement, permission and relationship stage" states
-- every rule below). channel_engagement publishes these columns but
-- last_opt_out_ts, which permission reads.
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
    SUM(sent) AS sent,
    SUM(delivered) AS delivered,
    SUM(opened) AS opened,
    SUM(clicked) AS clicked,
    SUM(bounced) AS bounced,
    SUM(unsubscribed) AS unsubscribed,
    SUM(complained) AS complained,
    SUM(replied) AS replied,
    SUM(service_contacts) AS service_contacts,
    SUM(reviews) AS reviews,
    SUM(referrals) AS referrals,
    CAST(SUM(opened) AS DOUBLE) / CAST(NULLIF(SUM(delivered), 0) AS DOUBLE) AS open_rate,
    CAST(SUM(clicked) AS DOUBLE) / CAST(NULLIF(SUM(delivered), 0) AS DOUBLE) AS click_rate,
    SUM(opened + clicked + replied) AS engagements,
    MAX(last_engagement_ts) AS last_engagement_ts,
    MAX(last_contact_ts) AS last_contact_ts,
    SUM(recent_contacts) AS contacts_last_30d,
    CAST(COALESCE(SUM(cost), 0) AS DECIMAL(18, 2)) AS contact_cost,
    MAX(last_opt_out_ts) AS last_opt_out_ts
FROM customer_events
GROUP BY customer_key, channel
