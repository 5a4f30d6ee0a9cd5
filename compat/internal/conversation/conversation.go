// Package conversation runs agno-golang v0.1.6's own agent.Agent and
// team.Team, with a canned model, on a shared SQLite file.
//
// Nothing here stores sessions itself: the Agent is given agno-golang's
// SqliteStorage as its DB (the storage.DB interface: ReadSession,
// CreateSession, CreateRun, GetRunsForSession) and the Team as its Storage
// (the storage.Storage interface: Read and Upsert). What they leave in the
// file is what a Go service using agno-golang would leave.
package conversation

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/devalexandre/agno-golang/agno/agent"
	"github.com/devalexandre/agno-golang/agno/models"
	"github.com/devalexandre/agno-golang/agno/storage"
	"github.com/devalexandre/agno-golang/agno/storage/sqlite"
	"github.com/devalexandre/agno-golang/agno/team"
)

// Turn is one prompt and the answer the Agent or Team returned.
type Turn struct {
	Prompt string `json:"prompt"`
	Answer string `json:"answer"`
}

// Agent runs prompts in order through one agent.Agent with AddHistoryToMessages,
// whose DB is agno-golang's SqliteStorage over db in agent mode on table
// (agent_runs is a fixed name upstream). The Agent loads its session (and
// history) once, when it is made, as upstream's NewAgent does.
func Agent(db *sql.DB, table, sessionID, userID string, model models.AgnoModelInterface, prompts []string) ([]Turn, error) {
	st, err := sqlite.NewSqliteStorage(sqlite.SqliteStorageConfig{TableName: table, DB: db, Mode: storage.AgentMode})
	if err != nil {
		return nil, err
	}
	ag, err := agent.NewAgent(agent.AgentConfig{
		Context:              context.Background(),
		Model:                model,
		DB:                   st,
		SessionID:            sessionID,
		UserID:               userID,
		AddHistoryToMessages: true,
	})
	if err != nil {
		return nil, err
	}
	var turns []Turn
	for _, p := range prompts {
		resp, err := ag.Run(p)
		if err != nil {
			return turns, fmt.Errorf("agent run %q: %w", p, err)
		}
		turns = append(turns, Turn{Prompt: p, Answer: resp.TextContent})
	}
	return turns, nil
}

// Team runs prompts in order through one team.Team named name (its team_id) in
// coordinate mode, with one member agent (no storage of its own), whose
// Storage is agno-golang's SqliteStorage over db in team mode on table. The
// Team reloads team_data.messages of its session once, when it is made.
func Team(db *sql.DB, table, sessionID, userID, name string, model models.AgnoModelInterface, prompts []string) ([]Turn, error) {
	st, err := sqlite.NewSqliteStorage(sqlite.SqliteStorageConfig{TableName: table, DB: db, Mode: storage.TeamMode})
	if err != nil {
		return nil, err
	}
	member, err := agent.NewAgent(agent.AgentConfig{Context: context.Background(), Model: model, Name: "member"})
	if err != nil {
		return nil, err
	}
	tm := team.NewTeam(team.TeamConfig{
		Context:   context.Background(),
		Name:      name,
		Role:      "answers questions",
		Model:     model,
		Members:   []*agent.Agent{member},
		Mode:      team.CoordinateMode,
		SessionID: sessionID,
		UserID:    userID,
		Storage:   st,
	})
	var turns []Turn
	for _, p := range prompts {
		resp, err := tm.Run(p)
		if err != nil {
			return turns, fmt.Errorf("team run %q: %w", p, err)
		}
		turns = append(turns, Turn{Prompt: p, Answer: resp.TextContent})
	}
	return turns, nil
}
