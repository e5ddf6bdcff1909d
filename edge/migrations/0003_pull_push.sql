-- Which multipart upload (uploads table) a tenant's pull of a blob is filling, so that an interrupted pull resumes
-- it instead of downloading again. The upload row itself expires and is aborted by the blob sweep; a mapping to an
-- upload that is gone is dropped the next time it is looked up.
CREATE TABLE pull_uploads (
  tenant_id TEXT NOT NULL,
  digest TEXT NOT NULL,
  upload_id TEXT NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (tenant_id, digest)
);

-- Registry credentials per tenant and registry host (lower-case host[:port]). The password is AES-GCM encrypted
-- under a key derived from the CREDENTIALS_KEY Worker secret (edge/src/oci/credentials.ts); it is never returned.
CREATE TABLE registry_credentials (
  tenant_id TEXT NOT NULL REFERENCES tenants(id),
  registry TEXT NOT NULL,
  username TEXT NOT NULL,
  secret TEXT NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (tenant_id, registry)
);
