-- One rate per currency. fx_rates.csv should hold one row per currency; if a
-- currency is listed twice, the later line wins (like a later profile update).
SELECT currency, rate_to_reporting
FROM (
    SELECT
        currency,
        rate_to_reporting,
        ROW_NUMBER() OVER (PARTITION BY currency ORDER BY _file DESC, _line DESC) AS version_rank
    FROM fx_rates
) ranked
WHERE version_rank = 1
