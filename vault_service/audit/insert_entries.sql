-- Audit stream entries -> authorizations rows. $1: the entries' verdicts, $2: their requests,
-- each a JSON array in the order of vault_service.domain.decision.AUDIT_VERDICT_FIELDS and
-- AUDIT_REQUEST_FIELDS. Idempotent by decision id: an entry delivered twice is stored once.
INSERT INTO authorizations (
    decision_id, decision_time, decision, deny_reason, quota_subject, quota, quota_limit,
    quota_used, quota_remaining, reservation_id,
    tenant_id, key_id, key_path, parent_key_id, agent_id, agent_run_id, trace_id, scope,
    vendor, method, path, estimated_micros, currency_code, request_id, attributes)
SELECT
    v ->> 0,
    timestamptz 'epoch' + (v ->> 1)::bigint * interval '1 millisecond',
    CASE v ->> 2 WHEN 'A' THEN 'allow' ELSE 'deny' END,
    v ->> 3, v ->> 4, v ->> 5,
    coalesce(nullif(v ->> 6, '')::bigint, 0),
    coalesce(nullif(v ->> 7, '')::bigint, 0),
    coalesce(nullif(v ->> 8, '')::bigint, 0),
    v ->> 9,
    q ->> 0, q ->> 1,
    coalesce(string_to_array(nullif(q ->> 2, ''), ','), '{}'),
    q ->> 3, q ->> 4, q ->> 5, q ->> 6, q ->> 7, q ->> 8, q ->> 9, q ->> 10,
    coalesce(nullif(q ->> 11, '')::bigint, 0),
    q ->> 12, q ->> 13,
    -- The call's attributes (an object); entries written before they were audited have none.
    CASE jsonb_typeof(q -> 14) WHEN 'object' THEN q -> 14 ELSE '{}'::jsonb END
FROM unnest($1::jsonb[], $2::jsonb[]) AS entry(v, q)
ON CONFLICT DO NOTHING
