-- The function and partial index that find sessions whose source_ip is
-- still NULL by the address in their enrichment JSON are generated from
-- store.SessionIP (see sessionAddressFunction in migrations.go).
SELECT 1;
