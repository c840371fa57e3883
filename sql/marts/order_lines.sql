-- Clean order lines in the reporting currency, as of the logical date.
--
-- DATA_CONTRACT.md:
-- * Duplicates: key (transaction_id, line_no, status); the copy in the latest
--   file wins (files sort by dt, then name: the order of `_file`), whatever its
--   date; transactions_deduped holds the winners (src/job/dedup.rs).
-- * cancelled rows count nowhere; order dates are UTC dates; lines dated after
--   the logical date are not counted yet.
-- * Money: line amount = quantity * unit_price - discount (for the whole line),
--   times the currency's rate_to_reporting. `amount` keeps full precision
--   (scale 10); round only after summing.
-- * Margin (docs/rules.md "Customer value"): amount minus quantity * unit_cost, at the
--   same rate. A line without unit_cost has an unknown cost, counted as 0.
-- * Erasure: a line carrying an erased person's identifier (its source id, or any
--   email of theirs, guest lines included) is left out (erased_identifiers.sql).
SELECT
    l.transaction_id,
    l.line_no,
    l.source_system,
    l.source_customer_id,
    l.email,
    l.order_ts,
    CAST(l.order_ts AS DATE) AS order_date,
    l.channel,
    l.product_id,
    l.category,
    l.quantity,
    l.unit_price,
    COALESCE(l.discount, CAST(0 AS DECIMAL(12, 2))) AS discount,
    l.unit_cost,
    l.currency,
    l.status,
    (CAST(l.quantity AS DECIMAL(20, 0)) * l.unit_price - COALESCE(l.discount, CAST(0 AS DECIMAL(12, 2))))
        * fx.rate_to_reporting AS amount,
    (CAST(l.quantity AS DECIMAL(20, 0)) * (l.unit_price - COALESCE(l.unit_cost, CAST(0 AS DECIMAL(12, 2))))
        - COALESCE(l.discount, CAST(0 AS DECIMAL(12, 2))))
        * fx.rate_to_reporting AS margin,
    CASE WHEN l.status = 'returned' THEN -1 ELSE 1 END AS sign
FROM transactions_deduped l
JOIN fx_rates_current fx ON fx.currency = l.currency
WHERE l.status IN ('completed', 'returned')
  AND CAST(l.order_ts AS DATE) <= DATE '{date}'
  AND NOT EXISTS (
      SELECT 1 FROM erased_identifiers x
      WHERE x.id_type = 'source' AND x.id_value = l.source_system || ':' || l.source_customer_id
  )
  AND NOT EXISTS (
      SELECT 1 FROM erased_identifiers x
      WHERE x.id_type = 'email' AND x.id_value = normalize_email(l.email)
  )
