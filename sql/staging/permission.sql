-- Permission marketing flags per customer with a profile (DATA_CONTRACT.md
-- "Permission", to the letter; the rule per channel):
--   email_marketable = golden email_opt_in is true
--                  AND the golden email is a valid identifier (golden_profile.sql
--                      keeps only identifiers, so: it is not NULL)
--                  AND the customer has no `bounced` email event, ever
--                  AND no `unsubscribed` or `complained` email event strictly after
--                      email_opt_in_updated_at (the updated_at of the profile row
--                      that gave the opt-in);
--   sms_marketable likewise with sms_opt_in, the phone and `sms` events.
-- Never NULL: an unknown opt-in, address or opt-in time makes the flag false.
-- Events dated after the logical date are not in customer_events (channel_activity.sql
-- counts bounces and keeps the latest opt-out per customer and channel).
WITH channel_stops AS (
    SELECT
        customer_key,
        channel,
        bounced > 0 AS bounced,
        last_opt_out_ts
    FROM channel_activity
    WHERE channel IN ('email', 'sms')
)
SELECT
    g.customer_key,
    COALESCE(
        g.email_opt_in
        AND g.email IS NOT NULL
        AND g.email_opt_in_updated_at IS NOT NULL
        AND NOT COALESCE(e.bounced, false)
        AND (e.last_opt_out_ts IS NULL OR e.last_opt_out_ts <= g.email_opt_in_updated_at),
        false
    ) AS email_marketable,
    COALESCE(
        g.sms_opt_in
        AND g.phone IS NOT NULL
        AND g.sms_opt_in_updated_at IS NOT NULL
        AND NOT COALESCE(s.bounced, false)
        AND (s.last_opt_out_ts IS NULL OR s.last_opt_out_ts <= g.sms_opt_in_updated_at),
        false
    ) AS sms_marketable
FROM golden_profile g
LEFT JOIN channel_stops e ON e.customer_key = g.customer_key AND e.channel = 'email'
LEFT JOIN channel_stops s ON s.customer_key = g.customer_key AND s.channel = 'sms'
