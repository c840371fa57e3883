-- Engagement per customer (DOMAIN.md "Engagement and permission"): one row per
-- customer_key with any contact event as of the logical date, rolled up from
-- channel_engagement.sql (which defines contact, engagement, the fatigue window
-- and the rates), for customer_360 and the value model.
--
-- * preferred_channel: the channel with the most engagements (opened + clicked +
--   replied); ties go to the channel with the latest engagement, then to the
--   channel name (alphabetical) so the answer never depends on plan order. NULL
--   when the customer never engaged: no channel is preferred over another.
-- * contacts_last_30d, last_contact_ts, last_engagement_ts, contact_cost: over
--   all channels; reviews_referrals = review + referral events.
-- * email_* / sms_*: that channel's counts (0 when it has no events) and rates
--   (NULL when nothing was delivered on it).
SELECT
    customer_key,
    -- Computed in this one pass (not a ranked subquery joined back) because each
    -- reference to a view re-runs it; the top channel's engagements are > 0
    -- exactly when the customer engaged at all.
    first_value(CASE WHEN engagements > 0 THEN channel END
        ORDER BY engagements DESC, last_engagement_ts DESC, channel) AS preferred_channel,
    MAX(last_contact_ts) AS last_contact_ts,
    SUM(contacts_last_30d) AS contacts_last_30d,
    MAX(last_engagement_ts) AS last_engagement_ts,
    SUM(reviews + referrals) AS reviews_referrals,
    CAST(SUM(contact_cost) AS DECIMAL(18, 2)) AS contact_cost,
    COALESCE(SUM(sent) FILTER (WHERE channel = 'email'), 0) AS email_sent,
    COALESCE(SUM(delivered) FILTER (WHERE channel = 'email'), 0) AS email_delivered,
    COALESCE(SUM(opened) FILTER (WHERE channel = 'email'), 0) AS email_opened,
    COALESCE(SUM(clicked) FILTER (WHERE channel = 'email'), 0) AS email_clicked,
    COALESCE(SUM(bounced) FILTER (WHERE channel = 'email'), 0) AS email_bounced,
    COALESCE(SUM(unsubscribed) FILTER (WHERE channel = 'email'), 0) AS email_unsubscribed,
    COALESCE(SUM(complained) FILTER (WHERE channel = 'email'), 0) AS email_complained,
    MAX(open_rate) FILTER (WHERE channel = 'email') AS email_open_rate,
    MAX(click_rate) FILTER (WHERE channel = 'email') AS email_click_rate,
    COALESCE(SUM(sent) FILTER (WHERE channel = 'sms'), 0) AS sms_sent,
    COALESCE(SUM(delivered) FILTER (WHERE channel = 'sms'), 0) AS sms_delivered,
    COALESCE(SUM(opened) FILTER (WHERE channel = 'sms'), 0) AS sms_opened,
    COALESCE(SUM(clicked) FILTER (WHERE channel = 'sms'), 0) AS sms_clicked,
    COALESCE(SUM(bounced) FILTER (WHERE channel = 'sms'), 0) AS sms_bounced,
    COALESCE(SUM(unsubscribed) FILTER (WHERE channel = 'sms'), 0) AS sms_unsubscribed,
    COALESCE(SUM(complained) FILTER (WHERE channel = 'sms'), 0) AS sms_complained,
    MAX(open_rate) FILTER (WHERE channel = 'sms') AS sms_open_rate,
    MAX(click_rate) FILTER (WHERE channel = 'sms') AS sms_click_rate
FROM channel_engagement
GROUP BY customer_key
