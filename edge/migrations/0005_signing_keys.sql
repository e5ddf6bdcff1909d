-- Ed25519 public keys a tenant registered for requests signed by the stock Ollama client (OLLAMA_AUTH=1).
-- public_key is the base64 SSH wire blob, exactly as the client puts it before the ':' of its Authorization header.
CREATE TABLE signing_keys (
  id TEXT PRIMARY KEY,
  tenant_id TEXT NOT NULL REFERENCES tenants(id),
  public_key TEXT NOT NULL,
  label TEXT,
  created_at INTEGER NOT NULL,
  revoked_at INTEGER
);
-- One active registration per key: a key identifies exactly one tenant.
CREATE UNIQUE INDEX signing_keys_active ON signing_keys(public_key) WHERE revoked_at IS NULL;
CREATE INDEX signing_keys_tenant ON signing_keys(tenant_id);

-- Signatures accepted while their timestamp is inside the window: a second use is a replay. Rows past the
-- window are useless (the timestamp alone refuses them) and are deleted as new ones arrive.
CREATE TABLE signed_request_replays (
  signature TEXT PRIMARY KEY,
  expires_at INTEGER NOT NULL
);
CREATE INDEX signed_request_replays_expiry ON signed_request_replays(expires_at);
