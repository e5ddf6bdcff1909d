-- Tenants own a namespace of model names; quotas are NULL when unlimited.
CREATE TABLE tenants (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  created_at INTEGER NOT NULL,
  quota_storage_bytes INTEGER,
  quota_requests_per_minute INTEGER,
  quota_concurrent_requests INTEGER
);

-- API keys: only a SHA-256 of the secret and a short display prefix are stored.
CREATE TABLE api_keys (
  id TEXT PRIMARY KEY,
  tenant_id TEXT NOT NULL REFERENCES tenants(id),
  lookup TEXT NOT NULL,
  secret_hash TEXT NOT NULL,
  display_prefix TEXT NOT NULL,
  label TEXT,
  created_at INTEGER NOT NULL,
  revoked_at INTEGER
);
CREATE INDEX api_keys_tenant ON api_keys(tenant_id);
CREATE INDEX api_keys_lookup ON api_keys(lookup);

-- Content-addressed blobs, stored once whoever uploads them; ownership rows decide visibility.
CREATE TABLE blobs (
  digest TEXT PRIMARY KEY,
  size INTEGER NOT NULL,
  created_at INTEGER NOT NULL
);

CREATE TABLE blob_owners (
  tenant_id TEXT NOT NULL REFERENCES tenants(id),
  digest TEXT NOT NULL REFERENCES blobs(digest),
  created_at INTEGER NOT NULL,
  PRIMARY KEY (tenant_id, digest)
);
CREATE INDEX blob_owners_digest ON blob_owners(digest);

-- Models: name is the normalised (lower-cased, fully qualified) name; display_name what the client used.
CREATE TABLE models (
  tenant_id TEXT NOT NULL REFERENCES tenants(id),
  name TEXT NOT NULL,
  display_name TEXT NOT NULL,
  manifest TEXT NOT NULL,
  digest TEXT NOT NULL,
  size INTEGER NOT NULL,
  modified_at INTEGER NOT NULL,
  PRIMARY KEY (tenant_id, name)
);

-- Every blob a model's manifest references (layers and config): what keeps a blob alive.
CREATE TABLE model_layers (
  tenant_id TEXT NOT NULL,
  name TEXT NOT NULL,
  digest TEXT NOT NULL,
  PRIMARY KEY (tenant_id, name, digest),
  FOREIGN KEY (tenant_id, name) REFERENCES models(tenant_id, name) ON DELETE CASCADE
);
CREATE INDEX model_layers_digest ON model_layers(digest);

-- Uploads in progress (multipart into the bucket) also keep their digest alive.
CREATE TABLE uploads (
  id TEXT PRIMARY KEY,
  tenant_id TEXT NOT NULL REFERENCES tenants(id),
  digest TEXT NOT NULL,
  size INTEGER NOT NULL,
  r2_upload_id TEXT NOT NULL,
  r2_key TEXT NOT NULL,
  part_size INTEGER NOT NULL,
  hash_state TEXT,
  parts TEXT NOT NULL DEFAULT '[]',
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
);
CREATE INDEX uploads_digest ON uploads(digest);

-- One row per inference request: what pay-per-use billing is computed from. request_id makes writes idempotent.
CREATE TABLE usage (
  request_id TEXT PRIMARY KEY,
  tenant_id TEXT NOT NULL REFERENCES tenants(id),
  key_id TEXT,
  endpoint TEXT NOT NULL,
  model TEXT NOT NULL,
  model_digest TEXT,
  prompt_tokens INTEGER NOT NULL DEFAULT 0,
  output_tokens INTEGER NOT NULL DEFAULT 0,
  load_duration INTEGER NOT NULL DEFAULT 0,
  prompt_eval_duration INTEGER NOT NULL DEFAULT 0,
  eval_duration INTEGER NOT NULL DEFAULT 0,
  total_duration INTEGER NOT NULL DEFAULT 0,
  status TEXT NOT NULL,
  runner_id TEXT,
  created_at INTEGER NOT NULL
);
CREATE INDEX usage_tenant_time ON usage(tenant_id, created_at);
