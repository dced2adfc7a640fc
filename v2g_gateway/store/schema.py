"""Versioned SQLite schema: each migration runs once, in order, inside one transaction."""

from __future__ import annotations

import sqlite3

MIGRATIONS: tuple[str, ...] = (
    # 1: the walking skeleton's state
    """
    CREATE TABLE chargers (
        charger_id TEXT PRIMARY KEY,
        vendor TEXT, model TEXT, serial TEXT, firmware TEXT,
        online INTEGER NOT NULL DEFAULT 0,
        last_seen TEXT, booted_at TEXT,
        supports_discharge INTEGER,
        capabilities TEXT NOT NULL DEFAULT '{}'
    );
    CREATE TABLE evses (
        charger_id TEXT NOT NULL,
        evse_id INTEGER NOT NULL,
        status TEXT, plugged INTEGER NOT NULL DEFAULT 0,
        transaction_id TEXT, charging_state TEXT,
        power_w REAL, energy_import_wh REAL, energy_export_wh REAL, voltage_v REAL,
        updated_at TEXT,
        PRIMARY KEY (charger_id, evse_id)
    );
    CREATE TABLE transactions (
        transaction_id TEXT PRIMARY KEY,
        charger_id TEXT NOT NULL, evse_id INTEGER NOT NULL,
        started_at TEXT NOT NULL, ended_at TEXT,
        id_token TEXT, vehicle_id TEXT,
        last_seq_no INTEGER NOT NULL DEFAULT -1,
        seen_seq_nos TEXT NOT NULL DEFAULT '[]',
        stopped_reason TEXT
    );
    CREATE TABLE vehicles (
        vehicle_id TEXT PRIMARY KEY,
        charger_id TEXT, evse_id INTEGER,
        soc_percent REAL, soc_at TEXT,
        capacity_wh REAL, departure_time TEXT, energy_request_wh REAL
    );
    CREATE TABLE soc_samples (
        vehicle_id TEXT NOT NULL, at TEXT NOT NULL, soc_percent REAL NOT NULL, source TEXT NOT NULL
    );
    CREATE INDEX soc_samples_vehicle_at ON soc_samples (vehicle_id, at);
    CREATE TABLE price_slots (
        source TEXT NOT NULL, start TEXT NOT NULL, end TEXT NOT NULL,
        price REAL NOT NULL, currency TEXT NOT NULL, fetched_at TEXT NOT NULL,
        PRIMARY KEY (source, start)
    );
    CREATE TABLE plans (
        vehicle_id TEXT PRIMARY KEY, created_at TEXT NOT NULL, plan TEXT NOT NULL
    );
    CREATE TABLE overrides (
        override_id TEXT PRIMARY KEY, vehicle_id TEXT NOT NULL, kind TEXT NOT NULL,
        created_at TEXT NOT NULL, expires_at TEXT NOT NULL,
        target_soc_percent REAL, power_w REAL, cancelled_at TEXT
    );
    CREATE TABLE preferences (
        key TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at TEXT NOT NULL
    );
    CREATE TABLE dispatch_log (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at TEXT NOT NULL, charger_id TEXT, evse_id INTEGER, vehicle_id TEXT,
        action TEXT NOT NULL, limit_w REAL, reason TEXT NOT NULL, result TEXT
    );
    CREATE TABLE notifications (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at TEXT NOT NULL, kind TEXT NOT NULL, level TEXT NOT NULL, message TEXT NOT NULL,
        data TEXT NOT NULL DEFAULT '{}'
    );
    CREATE TABLE ledger (
        vehicle_id TEXT NOT NULL, day TEXT NOT NULL,
        import_wh REAL NOT NULL DEFAULT 0, export_wh REAL NOT NULL DEFAULT 0,
        cost REAL NOT NULL DEFAULT 0, revenue REAL NOT NULL DEFAULT 0,
        PRIMARY KEY (vehicle_id, day)
    );
    CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    """,
    # 2: plug sessions own the SoC; transactions are keyed by charger and id; what dispatch
    # learnt about discharging is a record with its reason and retry time.
    """
    CREATE TABLE transactions_v2 (
        charger_id TEXT NOT NULL, transaction_id TEXT NOT NULL, evse_id INTEGER NOT NULL,
        started_at TEXT NOT NULL, ended_at TEXT,
        id_token TEXT, vehicle_id TEXT,
        last_seq_no INTEGER NOT NULL DEFAULT -1,
        seen_seq_nos TEXT NOT NULL DEFAULT '[]',
        stopped_reason TEXT, session_id TEXT,
        PRIMARY KEY (charger_id, transaction_id)
    );
    INSERT INTO transactions_v2 (charger_id, transaction_id, evse_id, started_at, ended_at,
        id_token, vehicle_id, last_seq_no, seen_seq_nos, stopped_reason)
        SELECT charger_id, transaction_id, evse_id, started_at, ended_at, id_token, vehicle_id,
        last_seq_no, seen_seq_nos, stopped_reason FROM transactions;
    DROP TABLE transactions;
    ALTER TABLE transactions_v2 RENAME TO transactions;
    CREATE TABLE plug_sessions (
        session_id TEXT PRIMARY KEY,
        charger_id TEXT NOT NULL, evse_id INTEGER NOT NULL,
        started_at TEXT NOT NULL, ended_at TEXT, ended_reason TEXT,
        vehicle_id TEXT, identified_by TEXT, id_token TEXT,
        import_wh_at_start REAL, export_wh_at_start REAL,
        soc TEXT, pending_soc TEXT,
        capacity_wh REAL, departure_time TEXT, energy_request_wh REAL
    );
    CREATE INDEX plug_sessions_open ON plug_sessions (ended_at);
    ALTER TABLE evses ADD COLUMN session_id TEXT;
    ALTER TABLE vehicles ADD COLUMN last_soc TEXT;
    ALTER TABLE soc_samples ADD COLUMN session_id TEXT;
    ALTER TABLE soc_samples ADD COLUMN measured_at TEXT;
    ALTER TABLE chargers ADD COLUMN discharge TEXT
    """,
)


def schema_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the database to the newest schema; refuses a database newer than this code."""
    current = schema_version(conn)
    if current > len(MIGRATIONS):
        raise RuntimeError(
            f"state database has schema {current}, newer than this gateway knows "
            f"({len(MIGRATIONS)}); upgrade v2g-gateway"
        )
    for version in range(current + 1, len(MIGRATIONS) + 1):
        script = MIGRATIONS[version - 1]
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in script.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return len(MIGRATIONS)
