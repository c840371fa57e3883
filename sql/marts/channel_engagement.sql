-- Engagement per customer and channel, as published: channel_activity.sql states
-- every rule; this leaves out last_opt_out_ts, which only permission reads.
SELECT
    customer_key,
    channel,
    sent,
    delivered,
    opened,
    clicked,
    bounced,
    unsubscribed,
    complained,
    replied,
    service_contacts,
    reviews,
    referrals,
    open_rate,
    click_rate,
    engagements,
    last_engagement_ts,
    last_contact_ts,
    contacts_last_30d,
    contact_cost
FROM channel_activity
