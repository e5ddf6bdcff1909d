-- The runner reports how much of each prompt came from its prompt cache (prompt_cached_count on the final line):
-- metered beside prompt_tokens, so billing can tell evaluated prompt tokens from cached ones.
ALTER TABLE usage ADD COLUMN prompt_cached_tokens INTEGER NOT NULL DEFAULT 0;
