-- Per-tenant request limits (edge/src/bounds.ts): a JSON object of the limits that differ from the defaults
-- (REQUEST_LIMIT_DEFAULTS); NULL means every default.
ALTER TABLE tenants ADD COLUMN limits TEXT;
