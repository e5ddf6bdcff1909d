-- Web console sessions. The cookie carries a random token; only its SHA-256 is stored. A tenant session is bound to
-- the API key it was opened with (revoking the key ends it: every read joins api_keys); an operator session has no
-- tenant and is bound to a hash of the admin secret it was opened with (rotating ADMIN_KEY ends it).
CREATE TABLE console_sessions (
  token_hash TEXT PRIMARY KEY,
  tenant_id TEXT REFERENCES tenants(id),
  key_id TEXT REFERENCES api_keys(id),
  admin_key_hash TEXT,
  csrf_token TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  CHECK ((key_id IS NOT NULL AND tenant_id IS NOT NULL) OR admin_key_hash IS NOT NULL)
);
CREATE INDEX console_sessions_key ON console_sessions(key_id);
CREATE INDEX console_sessions_expiry ON console_sessions(expires_at);

-- Operator-set prices per model name (as usage rows record it), in US dollars per million tokens; what the console's
-- cost estimate multiplies usage by. A model without a row has no estimate.
CREATE TABLE model_prices (
  model TEXT PRIMARY KEY,
  input_per_million REAL NOT NULL CHECK (input_per_million >= 0),
  output_per_million REAL NOT NULL CHECK (output_per_million >= 0),
  updated_at INTEGER NOT NULL
);
