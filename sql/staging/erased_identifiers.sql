-- Every identifier of an erased person (DATA_CONTRACT.md, Erasure): all identifiers
-- of the erased customers in the full identity graph, plus the requests' own
-- identifiers, even when they resolve to nobody (a guest order or a reject row may
-- still carry them). order_lines.sql drops lines carrying one; the rejects filter
-- (src/erasure/) drops reject rows whose raw text carries one.
SELECT g.id_type, g.id_value
FROM identity_graph g
JOIN erased_customers e ON e.customer_key = g.customer_key
UNION
SELECT id_type, id_value
FROM erasure_requests
