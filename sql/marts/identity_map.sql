-- The published identity map: the full identity graph (builtin stitch_identities)
-- minus the erased customers (DATA_CONTRACT.md, Erasure). Every view that attributes
-- rows to a customer joins this map, so an erased person drops out of all of them
-- (golden record, order attribution, events, RFM, the CLV fit, customer_360).
SELECT g.id_type, g.id_value, g.customer_key, g.first_seen
FROM identity_graph g
WHERE NOT EXISTS (
    SELECT 1 FROM erased_customers e WHERE e.customer_key = g.customer_key
)
