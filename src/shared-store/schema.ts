/**
 * The shared store's schema: the tables of the embedded SQLite store (logs/sqlite-store.ts)
 * with what sharing adds — the instance on every row, a `uid` that makes a retried write a
 * no-op (a commit whose acknowledgement was lost is not written twice), verdict changes
 * numbered for the poll that follows a reconnect, and the quarantine's bytes. Times stay ISO
 * 8601 text, as in SQLite, so every filter and bucket means the same in both.
 *
 * Each entry upgrades the schema by one version; never edit a released entry, append.
 */

export const PG_MIGRATIONS: readonly string[] = [
  `CREATE TABLE traffic (
     id BIGSERIAL PRIMARY KEY, uid TEXT NOT NULL UNIQUE, instance TEXT NOT NULL,
     time TEXT NOT NULL, session_id TEXT NOT NULL, transaction_id TEXT NOT NULL,
     listener TEXT NOT NULL, client TEXT NOT NULL, server TEXT NOT NULL, helo TEXT NOT NULL,
     mail_from TEXT NOT NULL, rcpt_to JSONB NOT NULL, size BIGINT NOT NULL,
     message_id TEXT NOT NULL, subject TEXT NOT NULL, forwarding TEXT NOT NULL,
     rule TEXT NOT NULL, profile TEXT NOT NULL, action TEXT NOT NULL, reason TEXT NOT NULL,
     upstream_reply TEXT NOT NULL, client_reply TEXT NOT NULL, duration_ms INTEGER NOT NULL,
     events JSONB NOT NULL);
   CREATE INDEX traffic_time ON traffic(time);
   CREATE INDEX traffic_tx ON traffic(transaction_id);
   CREATE TABLE threats (
     id BIGSERIAL PRIMARY KEY, uid TEXT NOT NULL UNIQUE, instance TEXT NOT NULL,
     time TEXT NOT NULL, session_id TEXT NOT NULL, transaction_id TEXT NOT NULL,
     listener TEXT NOT NULL, client TEXT NOT NULL, server TEXT NOT NULL,
     mail_from TEXT NOT NULL, rcpt_to JSONB NOT NULL,
     threat TEXT NOT NULL, threat_id TEXT NOT NULL, severity TEXT NOT NULL, engine TEXT NOT NULL,
     signature TEXT NOT NULL, file_name TEXT NOT NULL, file_path TEXT NOT NULL,
     declared_type TEXT NOT NULL, detected_type TEXT NOT NULL, file_flags JSONB NOT NULL, sha256 TEXT NOT NULL,
     size BIGINT NOT NULL, rule TEXT NOT NULL, profile TEXT NOT NULL, action TEXT NOT NULL,
     deciding BOOLEAN NOT NULL, direction TEXT NOT NULL);
   CREATE INDEX threats_time ON threats(time);
   CREATE INDEX threats_tx ON threats(transaction_id);
   CREATE SEQUENCE verdict_changes;
   CREATE TABLE verdicts (
     sha256 TEXT PRIMARY KEY, verdict TEXT NOT NULL, score INTEGER NOT NULL, reasons JSONB NOT NULL,
     analyzers JSONB NOT NULL, source TEXT NOT NULL, file_type TEXT NOT NULL, file_name TEXT NOT NULL,
     first_seen TEXT NOT NULL, last_seen TEXT NOT NULL, seen BIGINT NOT NULL,
     changed BIGINT NOT NULL DEFAULT nextval('verdict_changes'));
   CREATE INDEX verdicts_last_seen ON verdicts(last_seen);
   CREATE INDEX verdicts_changed ON verdicts(changed);
   CREATE INDEX verdicts_manual ON verdicts(source) WHERE source = 'manual';
   -- A verdict that changes (not a mere count of a sighting) is numbered anew and announced:
   -- every instance listening updates what it knows of that file at once.
   CREATE FUNCTION smtpwall_verdict_changed() RETURNS trigger LANGUAGE plpgsql AS $$
   BEGIN
     IF TG_OP = 'UPDATE' AND NEW.verdict = OLD.verdict AND NEW.source = OLD.source AND NEW.score = OLD.score THEN
       RETURN NEW;
     END IF;
     NEW.changed := nextval('verdict_changes');
     PERFORM pg_notify('smtpwall_verdicts', NEW.sha256);
     RETURN NEW;
   END $$;
   CREATE TRIGGER verdicts_changed BEFORE INSERT OR UPDATE ON verdicts
     FOR EACH ROW EXECUTE FUNCTION smtpwall_verdict_changed();
   CREATE TABLE sightings (
     id BIGSERIAL PRIMARY KEY, uid TEXT NOT NULL UNIQUE, instance TEXT NOT NULL,
     sha256 TEXT NOT NULL, time TEXT NOT NULL, transaction_id TEXT NOT NULL,
     message_id TEXT NOT NULL, mail_from TEXT NOT NULL, rcpt_to JSONB NOT NULL, file_path TEXT NOT NULL,
     action TEXT NOT NULL, delivered BOOLEAN NOT NULL);
   CREATE INDEX sightings_sha256 ON sightings(sha256, time);
   CREATE INDEX sightings_time ON sightings(time);
   CREATE TABLE captures (
     id BIGSERIAL PRIMARY KEY, session_id TEXT NOT NULL UNIQUE, instance TEXT NOT NULL, time TEXT NOT NULL,
     listener TEXT NOT NULL, meta JSONB NOT NULL, data BYTEA NOT NULL);
   CREATE INDEX captures_time ON captures(time);
   CREATE TABLE audit (
     id BIGSERIAL PRIMARY KEY, uid TEXT NOT NULL UNIQUE, instance TEXT NOT NULL, time TEXT NOT NULL,
     "user" TEXT NOT NULL, action TEXT NOT NULL, target TEXT NOT NULL, detail TEXT NOT NULL, client TEXT NOT NULL);
   CREATE INDEX audit_time ON audit(time);
   -- The quarantine: message bytes content-addressed (a campaign costs one copy), one entry per
   -- quarantined transaction. A release holds the entry (releasing_since/by) so two instances
   -- releasing at once deliver once.
   CREATE TABLE quarantine_messages (sha256 TEXT PRIMARY KEY, content BYTEA NOT NULL);
   CREATE TABLE quarantine (
     id TEXT PRIMARY KEY, instance TEXT NOT NULL, time TEXT NOT NULL, sha256 TEXT NOT NULL REFERENCES quarantine_messages(sha256),
     size BIGINT NOT NULL, entry JSONB NOT NULL, released JSONB,
     releasing_since TIMESTAMPTZ, releasing_by TEXT);
   CREATE INDEX quarantine_time ON quarantine(time);
   CREATE INDEX quarantine_sha256 ON quarantine(sha256);`,
];
