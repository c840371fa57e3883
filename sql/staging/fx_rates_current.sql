-- One rate per currency. fx_rates.csv should hold one row per currency; if a
-- currency is listed twice, the later line wins (like a later profile update;
-- fx_rates_deduped holds the winners, src/job/dedup.rs).
SELECT currency, rate_to_reporting
FROM fx_rates_deduped
