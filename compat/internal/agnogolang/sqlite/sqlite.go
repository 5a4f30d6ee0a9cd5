// Package sqlite reproduces agno-golang's agno/storage/sqlite package: the
// table and index DDL, the INSERT OR REPLACE upsert of agent and team
// sessions, and the decoding done by Read, GetAllSessions and
// GetRecentSessions. Exported names and signatures match upstream so the
// commands in compat/cmd compile against either.
package sqlite

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"strings"
	"time"

	"agnostorage/compat/internal/agnogolang/storage"
)

// SqliteStorageConfig configures NewSqliteStorage. Upstream opens DBURL and
// DBFile with the driver name "sqlite3"; pass DB to use another driver.
type SqliteStorageConfig struct {
	ID                string
	TableName         string
	DBURL             *string
	DBFile            *string
	DB                *sql.DB
	SchemaVersion     int
	AutoUpgradeSchema bool
	Mode              storage.StorageMode
}

// SqliteStorage stores sessions of one mode in one table.
type SqliteStorage struct {
	tableName         string
	db                *sql.DB
	mode              storage.StorageMode
	autoUpgradeSchema bool
	schemaUpToDate    bool
}

// NewSqliteStorage returns a storage over cfg.DB, or over a database opened
// from cfg.DBURL, cfg.DBFile or ":memory:" (in that order) with driver "sqlite3".
func NewSqliteStorage(cfg SqliteStorageConfig) (*SqliteStorage, error) {
	if cfg.Mode == "" {
		cfg.Mode = storage.AgentMode
	}
	s := &SqliteStorage{tableName: cfg.TableName, mode: cfg.Mode, autoUpgradeSchema: cfg.AutoUpgradeSchema}
	if cfg.DB != nil {
		s.db = cfg.DB
		return s, nil
	}
	dsn := ":memory:"
	if cfg.DBURL != nil {
		dsn = *cfg.DBURL
	} else if cfg.DBFile != nil {
		dsn = *cfg.DBFile
	}
	db, err := sql.Open("sqlite3", dsn)
	if err != nil {
		return nil, fmt.Errorf("failed to initialize database: %w", err)
	}
	s.db = db
	return s, nil
}

// GetMode returns the storage mode.
func (s *SqliteStorage) GetMode() storage.StorageMode { return s.mode }

// tableDDL is the CREATE TABLE statement, one column definition per entry.
func (s *SqliteStorage) tableDDL() string {
	cols := []string{
		"session_id TEXT PRIMARY KEY",
		"user_id TEXT NOT NULL",
		"memory TEXT",
		"session_data TEXT",
		"extra_data TEXT",
		"created_at INTEGER DEFAULT (strftime('%s', 'now'))",
		"updated_at INTEGER DEFAULT (strftime('%s', 'now'))",
	}
	switch s.mode {
	case storage.AgentMode:
		cols = append(cols, "agent_id TEXT NOT NULL", "agent_data TEXT", "team_session_id TEXT")
	case storage.TeamMode:
		cols = append(cols, "team_id TEXT NOT NULL", "team_data TEXT", "team_session_id TEXT")
	case storage.WorkflowMode:
		cols = append(cols, "workflow_id TEXT NOT NULL", "workflow_data TEXT")
	case storage.WorkflowV2Mode:
		cols = append(cols, "workflow_id TEXT NOT NULL", "workflow_name TEXT NOT NULL", "workflow_data TEXT", "runs TEXT")
	}
	return fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s (%s)", s.tableName, strings.Join(cols, ", "))
}

func (s *SqliteStorage) indexDDL() []string {
	idx := func(col string) string {
		return fmt.Sprintf("CREATE INDEX IF NOT EXISTS idx_%s_%s ON %s (%s)", s.tableName, col, s.tableName, col)
	}
	out := []string{idx("user_id"), idx("created_at")}
	switch s.mode {
	case storage.AgentMode:
		out = append(out, idx("agent_id"), idx("team_session_id"))
	case storage.TeamMode:
		out = append(out, idx("team_id"), idx("team_session_id"))
	case storage.WorkflowMode:
		out = append(out, idx("workflow_id"))
	case storage.WorkflowV2Mode:
		out = append(out, idx("workflow_id"), idx("workflow_name"))
	}
	return out
}

// Create creates the table and its indexes if they do not exist. A failing
// index is logged and skipped, as upstream does.
func (s *SqliteStorage) Create() error {
	if _, err := s.db.Exec(s.tableDDL()); err != nil {
		return fmt.Errorf("failed to create table: %w", err)
	}
	for _, q := range s.indexDDL() {
		if _, err := s.db.Exec(q); err != nil {
			log.Printf("Warning: failed to create index: %v", err)
		}
	}
	return nil
}

// TableExists reports whether the table is in sqlite_master.
func (s *SqliteStorage) TableExists() (bool, error) {
	var name string
	err := s.db.QueryRow("SELECT name FROM sqlite_master WHERE type='table' AND name=?", s.tableName).Scan(&name)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("error checking if table exists: %w", err)
	}
	return true, nil
}

func isNoTable(err error) bool { return err != nil && strings.Contains(err.Error(), "no such table") }

// Read returns the session with sessionID (and userID when not nil), or nil.
// Agent and team modes return *storage.AgentSession / *storage.TeamSession;
// workflow modes return the row as map[string]interface{}.
func (s *SqliteStorage) Read(sessionID string, userID *string) (interface{}, error) {
	q := fmt.Sprintf("SELECT * FROM %s WHERE session_id = ?", s.tableName)
	args := []interface{}{sessionID}
	if userID != nil {
		q += " AND user_id = ?"
		args = append(args, *userID)
	}
	rows, err := s.db.Query(q, args...)
	if isNoTable(err) {
		return nil, s.Create()
	}
	if err != nil {
		return nil, fmt.Errorf("failed to query session: %w", err)
	}
	defer rows.Close()
	if !rows.Next() {
		return nil, rows.Err()
	}
	return s.scanRow(rows)
}

func (s *SqliteStorage) scanRow(rows *sql.Rows) (interface{}, error) {
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	vals := make([]interface{}, len(cols))
	ptrs := make([]interface{}, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		return nil, err
	}
	data := make(map[string]interface{}, len(cols))
	for i, c := range cols {
		if b, ok := vals[i].([]byte); ok {
			data[c] = string(b)
		} else {
			data[c] = vals[i]
		}
	}
	// JSON columns are decoded into map[string]interface{}: numbers become
	// float64, text "null" becomes a nil map, and text that is not a JSON
	// object (a list, say) is left as the raw string.
	for _, f := range []string{"memory", "session_data", "extra_data", "agent_data", "team_data", "workflow_data", "runs"} {
		if str, ok := data[f].(string); ok && str != "" {
			var parsed map[string]interface{}
			if json.Unmarshal([]byte(str), &parsed) == nil {
				data[f] = parsed
			}
		}
	}
	switch s.mode {
	case storage.AgentMode:
		return storage.AgentSessionFromDict(data), nil
	case storage.TeamMode:
		return storage.TeamSessionFromDict(data), nil
	default:
		return data, nil
	}
}

// Upsert writes an agent or team session; workflow modes are not implemented.
func (s *SqliteStorage) Upsert(session interface{}) (interface{}, error) {
	if s.autoUpgradeSchema && !s.schemaUpToDate {
		s.schemaUpToDate = true
	}
	switch s.mode {
	case storage.AgentMode:
		a, ok := session.(*storage.AgentSession)
		if !ok {
			return nil, fmt.Errorf("expected *storage.AgentSession, got %T", session)
		}
		return s.upsertRow("agent", a.SessionID, a.UserID, a.AgentID, a.TeamSessionID, a.CreatedAt,
			a.Memory, a.AgentData, a.SessionData, a.ExtraData)
	case storage.TeamMode:
		t, ok := session.(*storage.TeamSession)
		if !ok {
			return nil, fmt.Errorf("expected *storage.TeamSession, got %T", session)
		}
		return s.upsertRow("team", t.SessionID, t.UserID, t.TeamID, t.TeamSessionID, t.CreatedAt,
			t.Memory, t.TeamData, t.SessionData, t.ExtraData)
	case storage.WorkflowMode:
		return nil, fmt.Errorf("workflow session upsert not implemented yet")
	case storage.WorkflowV2Mode:
		return nil, fmt.Errorf("workflow v2 session upsert not implemented yet")
	}
	return nil, fmt.Errorf("unsupported mode: %s", s.mode)
}

// upsertRow is the agent/team upsert: INSERT OR REPLACE that keeps an existing
// row's created_at (else takes the session's, even 0) and sets updated_at to
// the current Unix time. Marshal errors are ignored upstream, which would
// store the empty string; they are ignored here too.
func (s *SqliteStorage) upsertRow(kind, sessionID, userID, entityID string, teamSessionID *string, createdAt int64,
	memory, entityData, sessionData, extraData map[string]interface{}) (interface{}, error) {
	memoryJSON, _ := json.Marshal(memory)
	sessionDataJSON, _ := json.Marshal(sessionData)
	extraDataJSON, _ := json.Marshal(extraData)
	entityDataJSON, _ := json.Marshal(entityData)
	q := fmt.Sprintf(`
		INSERT OR REPLACE INTO %s 
		(session_id, %s_id, user_id, team_session_id, memory, %s_data, session_data, extra_data, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, 
			COALESCE((SELECT created_at FROM %s WHERE session_id = ?), ?),
			?)`, s.tableName, kind, kind, s.tableName)
	_, err := s.db.Exec(q, sessionID, entityID, userID, teamSessionID,
		string(memoryJSON), string(entityDataJSON), string(sessionDataJSON), string(extraDataJSON),
		sessionID, createdAt, time.Now().Unix())
	if isNoTable(err) {
		if err := s.Create(); err != nil {
			return nil, err
		}
		_, err = s.db.Exec(q, sessionID, entityID, userID, teamSessionID,
			string(memoryJSON), string(entityDataJSON), string(sessionDataJSON), string(extraDataJSON),
			sessionID, createdAt, time.Now().Unix())
	}
	if err != nil {
		return nil, fmt.Errorf("failed to upsert %s session: %w", kind, err)
	}
	return s.Read(sessionID, &userID)
}

func (s *SqliteStorage) selectSessions(userID, entityID *string, limit *int) ([]interface{}, error) {
	q := fmt.Sprintf("SELECT * FROM %s WHERE 1=1", s.tableName)
	var args []interface{}
	if userID != nil {
		q += " AND user_id = ?"
		args = append(args, *userID)
	}
	if entityID != nil {
		switch s.mode {
		case storage.AgentMode:
			q += " AND agent_id = ?"
		case storage.TeamMode:
			q += " AND team_id = ?"
		default:
			q += " AND workflow_id = ?"
		}
		args = append(args, *entityID)
	}
	q += " ORDER BY created_at DESC"
	if limit != nil && *limit > 0 {
		q += " LIMIT ?"
		args = append(args, *limit)
	}
	rows, err := s.db.Query(q, args...)
	if isNoTable(err) {
		return []interface{}{}, s.Create()
	}
	if err != nil {
		return nil, fmt.Errorf("failed to query sessions: %w", err)
	}
	defer rows.Close()
	var out []interface{}
	for rows.Next() {
		v, err := s.scanRow(rows)
		if err != nil {
			return nil, fmt.Errorf("failed to scan session: %w", err)
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// GetAllSessions returns every session, newest created_at first.
func (s *SqliteStorage) GetAllSessions(userID, entityID *string) ([]interface{}, error) {
	return s.selectSessions(userID, entityID, nil)
}

// GetRecentSessions is GetAllSessions with an optional LIMIT.
func (s *SqliteStorage) GetRecentSessions(userID, entityID *string, limit *int) ([]interface{}, error) {
	return s.selectSessions(userID, entityID, limit)
}

// Close closes the underlying database.
func (s *SqliteStorage) Close() error { return s.db.Close() }
