-- Small text layers (config, template, system, params, messages, license) are also kept inline, so resolving a
-- model for inference or show is a D1 read and never an R2 read. NULL for weights and for anything large.
ALTER TABLE blobs ADD COLUMN content TEXT;
-- A GGUF blob's header summary (details, capabilities inputs, non-verbose model_info), written the first time
-- create parses it; a digest names immutable bytes, so the summary never goes stale.
ALTER TABLE blobs ADD COLUMN gguf TEXT;

-- Short-lived claims on a digest that keep blob GC and blob writers apart (see edge/src/registry/gc.ts):
-- 'write' pins are held by an upload or a create about to reference the digest; a 'delete' pin is held by the
-- GC while it removes the bytes from R2. Expired pins are ignored, so a crashed holder blocks nothing for long.
CREATE TABLE blob_pins (
  digest TEXT NOT NULL,
  holder TEXT NOT NULL,
  kind TEXT NOT NULL CHECK (kind IN ('write', 'delete')),
  expires_at INTEGER NOT NULL,
  PRIMARY KEY (digest, holder)
);
CREATE INDEX blob_pins_expiry ON blob_pins(expires_at);
CREATE INDEX uploads_tenant ON uploads(tenant_id);
CREATE INDEX uploads_expiry ON uploads(expires_at);
