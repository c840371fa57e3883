-- Contact events attributed to customers (customer_key from the identity map),
-- as of the logical date; engagement, permission, ladder and cost to serve read it.
--
-- Attribution mirrors identity_links.sql: an event with a source id
-- (source_system and source_customer_id) belongs to that record's customer, one
-- without to the customer of its email. An event whose email is not an
-- identifier (invalid, or a placeholder over max_records_per_identifier) belongs
-- to nobody and counts in no customer's figures.
SELECT e.*, COALESCE(s.customer_key, m.customer_key) AS customer_key
FROM communications_clean e
LEFT JOIN identity_map s
    ON s.id_type = 'source'
    AND s.id_value = e.source_system || ':' || e.source_customer_id
LEFT JOIN identity_map m
    ON m.id_type = 'email'
    AND (e.source_system IS NULL OR e.source_customer_id IS NULL)
    AND m.id_value = normalize_email(e.email)
WHERE COALESCE(s.customer_key, m.customer_key) IS NOT NULL
