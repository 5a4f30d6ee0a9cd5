package main

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"fmt"

	"github.com/devalexandre/agno-golang/agno/storage"
	"github.com/devalexandre/agno-golang/agno/storage/sqlite"

	"agnostorage/compat/internal/canned"
	"agnostorage/compat/internal/conversation"
)

// Conversations held by agno-golang's own Agent and Team for the
// go_agent_conversation.db and go_team_conversation.db fixtures.
const (
	convUser     = "user-1"
	agentTable   = "agent_sessions"
	teamTable    = "team_sessions"
	existingID   = "agent-existing"
	newID        = "agent-new"
	teamID       = "team-1"
	teamName     = "go-team"
	fixedClock   = int64(1700000000)
	existingMemo = "written before the agent ran"
)

var convPrompts = []string{"first question <&>", "zweite Frage: ünïcode 😀", "third question"}

// writeAgentConversation stores one agent session with Create and Upsert, then
// lets an agent.Agent hold a conversation in it and in a session id with no
// row. The Agent writes one agent_runs row per turn and nothing else.
func writeAgentConversation(db *sql.DB) error {
	st, err := sqlite.NewSqliteStorage(sqlite.SqliteStorageConfig{TableName: agentTable, DB: db, Mode: storage.AgentMode})
	if err != nil {
		return err
	}
	if err := st.Create(); err != nil {
		return err
	}
	existing := storage.NewAgentSession(existingID, convUser, "agent-1")
	existing.SessionData["note"] = existingMemo
	existing.CreatedAt = fixedClock
	if _, err := st.Upsert(existing); err != nil {
		return err
	}
	for _, id := range []string{existingID, newID} {
		if _, err := conversation.Agent(db, agentTable, id, convUser, canned.New(), convPrompts[:2]); err != nil {
			return err
		}
	}
	// The clock and random parts: updated_at of the session, each run's id
	// (a random UUID), run_name ("run_<unix>") and timestamps.
	if _, err := db.Exec("UPDATE "+agentTable+" SET updated_at = ?", fixedClock); err != nil {
		return err
	}
	rows, err := db.Query("SELECT id FROM agent_runs ORDER BY rowid")
	if err != nil {
		return err
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return err
		}
		ids = append(ids, id)
	}
	if err := rows.Close(); err != nil {
		return err
	}
	for k, id := range ids {
		t := fixedClock + int64(k)
		_, err := db.Exec("UPDATE agent_runs SET id = ?, run_name = ?, created_at = ?, updated_at = ? WHERE id = ?",
			fmt.Sprintf("00000000-0000-4000-8000-%012d", k), fmt.Sprintf("run_%d", t), t, t, id)
		if err != nil {
			return err
		}
	}
	return nil
}

// writeTeamConversation lets a team.Team hold two turns in a session, then a
// second Team (as a second process would) resume it for one more.
func writeTeamConversation(db *sql.DB) error {
	if _, err := conversation.Team(db, teamTable, teamID, convUser, teamName, canned.New(), convPrompts[:2]); err != nil {
		return err
	}
	if _, err := conversation.Team(db, teamTable, teamID, convUser, teamName, canned.New(), convPrompts[2:]); err != nil {
		return err
	}
	// The clock: created_at, updated_at and session_data.last_interaction.
	var raw string
	if err := db.QueryRow("SELECT session_data FROM "+teamTable+" WHERE session_id = ?", teamID).Scan(&raw); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader([]byte(raw)))
	dec.UseNumber()
	var data map[string]interface{}
	if err := dec.Decode(&data); err != nil {
		return err
	}
	data["last_interaction"] = fixedClock
	b, err := json.Marshal(data)
	if err != nil {
		return err
	}
	_, err = db.Exec("UPDATE "+teamTable+" SET session_data = ?, created_at = ?, updated_at = ? WHERE session_id = ?",
		string(b), fixedClock, fixedClock, teamID)
	return err
}
