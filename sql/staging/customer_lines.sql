-- Order lines attributed to customers (customer_key from the identity map).
--
-- An order line belongs to the customer of its source id, or, for a guest order (no
-- source_customer_id), to the customer of its email. A guest line whose email is not
-- an identifier is unattributed: in no customer's figures (the stitch step counts
-- such orders in the run log).
--
-- It keeps only the columns the per-customer steps read (customer_measures,
-- clv_summary, relationship_stage, customer_value; order_lines has the rest): it
-- is staged once for them, and at 1,000,000 customers it holds 11M lines, so each
-- column passed through would be 11M more values to write.
SELECT
    l.transaction_id,
    l.order_date,
    l.status,
    l.amount,
    l.margin,
    l.sign,
    COALESCE(s.customer_key, e.customer_key) AS customer_key
FROM order_lines l
LEFT JOIN identity_map s
    ON s.id_type = 'source' AND s.id_value = l.source_system || ':' || l.source_customer_id
LEFT JOIN identity_map e
    ON e.id_type = 'email' AND l.source_customer_id IS NULL
    AND e.id_value = normalize_email(l.email)
WHERE COALESCE(s.customer_key, e.customer_key) IS NOT NULL
