// Package storage reproduces the session types of agno-golang's agno/storage
// package (module github.com/devalexandre/agno-golang), field for field.
//
// The Go module proxy reachable from this project's machines refuses that
// module, so the compatibility commands build against this stand-in. It keeps
// the upstream package's exported names, field types and JSON tags, so that
// switching to the real module is a change of import path (see ../README.md).
// Behaviour that matters for the bytes on disk is described in compat/NOTES.md.
package storage

// StorageMode selects the table layout.
type StorageMode string

// The four storage modes.
const (
	AgentMode      StorageMode = "agent"
	TeamMode       StorageMode = "team"
	WorkflowMode   StorageMode = "workflow"
	WorkflowV2Mode StorageMode = "workflow_v2"
)

// Session holds the columns every mode shares.
type Session struct {
	SessionID   string                 `json:"session_id" db:"session_id"`
	UserID      string                 `json:"user_id" db:"user_id"`
	Memory      map[string]interface{} `json:"memory" db:"memory"`
	SessionData map[string]interface{} `json:"session_data" db:"session_data"`
	ExtraData   map[string]interface{} `json:"extra_data" db:"extra_data"`
	CreatedAt   int64                  `json:"created_at" db:"created_at"`
	UpdatedAt   int64                  `json:"updated_at" db:"updated_at"`
}

// AgentSession is one row of an agent-mode table.
type AgentSession struct {
	Session
	AgentID       string                 `json:"agent_id" db:"agent_id"`
	AgentData     map[string]interface{} `json:"agent_data" db:"agent_data"`
	TeamSessionID *string                `json:"team_session_id,omitempty" db:"team_session_id"`
}

// TeamSession is one row of a team-mode table.
type TeamSession struct {
	Session
	TeamID        string                 `json:"team_id" db:"team_id"`
	TeamData      map[string]interface{} `json:"team_data" db:"team_data"`
	TeamSessionID *string                `json:"team_session_id,omitempty" db:"team_session_id"`
}

// AgentSessionFromDict builds an AgentSession from a row map whose JSON
// columns are already decoded. A missing or non-object JSON column becomes an
// empty map; an empty team_session_id becomes nil.
func AgentSessionFromDict(data map[string]interface{}) *AgentSession {
	s := &AgentSession{Session: sessionFromDict(data)}
	s.AgentID = dictString(data, "agent_id")
	s.AgentData = dictMap(data, "agent_data")
	if id := dictString(data, "team_session_id"); id != "" {
		s.TeamSessionID = &id
	}
	return s
}

// TeamSessionFromDict is AgentSessionFromDict for team rows.
func TeamSessionFromDict(data map[string]interface{}) *TeamSession {
	s := &TeamSession{Session: sessionFromDict(data)}
	s.TeamID = dictString(data, "team_id")
	s.TeamData = dictMap(data, "team_data")
	if id := dictString(data, "team_session_id"); id != "" {
		s.TeamSessionID = &id
	}
	return s
}

func sessionFromDict(data map[string]interface{}) Session {
	return Session{
		SessionID:   dictString(data, "session_id"),
		UserID:      dictString(data, "user_id"),
		Memory:      dictMap(data, "memory"),
		SessionData: dictMap(data, "session_data"),
		ExtraData:   dictMap(data, "extra_data"),
		CreatedAt:   dictInt64(data, "created_at"),
		UpdatedAt:   dictInt64(data, "updated_at"),
	}
}

func dictString(data map[string]interface{}, key string) string {
	s, _ := data[key].(string)
	return s
}

func dictInt64(data map[string]interface{}, key string) int64 {
	switch v := data[key].(type) {
	case int64:
		return v
	case int:
		return int64(v)
	case float64:
		return int64(v)
	}
	return 0
}

// dictMap returns the map stored under key. A typed nil map (the decoding of
// the text "null") is returned as nil; anything else that is not a map becomes
// a fresh empty map, as upstream does.
func dictMap(data map[string]interface{}, key string) map[string]interface{} {
	if m, ok := data[key].(map[string]interface{}); ok {
		return m
	}
	return make(map[string]interface{})
}
