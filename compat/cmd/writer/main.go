// Command writer writes the session corpus into one SQLite file per mode
// through agno-golang v0.1.6's storage: go_agent.db (with the big session),
// go_team.db, go_workflow.db and go_workflow_v2.db; and two files written by
// agno-golang's own Agent and Team with a canned model:
// go_agent_conversation.db and go_team_conversation.db.
//
//	writer -corpus fixtures/corpus.json -out fixtures
//
// Agent and team rows go through SqliteStorage.Upsert; workflow rows, which
// agno-golang's Upsert does not implement, are written the same way by
// fixture.UpsertWorkflow. Tables are created with SqliteStorage.Create.
// created_at comes from the corpus (Upsert keeps it on insert). Upsert
// always sets updated_at to time.Now(); unless -keep-clock is given, the
// writer then sets updated_at back to the corpus value with a plain UPDATE so
// the files are deterministic. The conversation files get the same treatment
// for every clock or random value (see conversations.go), always.
package main

import (
	"database/sql"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"agnostorage/compat/internal/fixture"
	"github.com/devalexandre/agno-golang/agno/storage"
	"github.com/devalexandre/agno-golang/agno/storage/sqlite"
)

type target struct {
	mode  storage.StorageMode
	file  string
	table string
	parts []string // corpus sections written into the file
}

var targets = []target{
	{storage.AgentMode, "go_agent.db", "agent_sessions", []string{"agent", "big"}},
	{storage.TeamMode, "go_team.db", "team_sessions", []string{"team"}},
	{storage.WorkflowMode, "go_workflow.db", "workflow_sessions", []string{"workflow"}},
	{storage.WorkflowV2Mode, "go_workflow_v2.db", "workflow_v2_sessions", []string{"workflow_v2"}},
}

func main() {
	corpusPath := flag.String("corpus", "fixtures/corpus.json", "corpus written by fixtures/make_corpus.py")
	outDir := flag.String("out", "fixtures", "directory for the .db files")
	keepClock := flag.Bool("keep-clock", false, "leave updated_at as Upsert wrote it (the clock)")
	flag.Parse()
	c, err := fixture.LoadCorpus(*corpusPath)
	if err != nil {
		fail(err)
	}
	for _, t := range targets {
		err := build(filepath.Join(*outDir, t.file), func(db *sql.DB) error { return write(db, c, t, *keepClock) })
		if err != nil {
			fail(fmt.Errorf("%s: %w", t.file, err))
		}
	}
	for file, f := range map[string]func(*sql.DB) error{
		"go_agent_conversation.db": writeAgentConversation,
		"go_team_conversation.db":  writeTeamConversation,
	} {
		if err := build(filepath.Join(*outDir, file), f); err != nil {
			fail(fmt.Errorf("%s: %w", file, err))
		}
	}
}

// build writes a fresh file at path with fill, then leaves it self-contained:
// rollback journal mode (no -wal beside it) and VACUUMed.
func build(path string, fill func(*sql.DB) error) error {
	for _, suffix := range []string{"", "-wal", "-shm", "-journal"} {
		if err := os.Remove(path + suffix); err != nil && !os.IsNotExist(err) {
			return err
		}
	}
	db, err := fixture.Open(path)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := fill(db); err != nil {
		return err
	}
	if _, err := db.Exec("PRAGMA journal_mode=DELETE"); err != nil {
		return err
	}
	_, err = db.Exec("VACUUM")
	return err
}

func write(db *sql.DB, c fixture.Corpus, t target, keepClock bool) error {
	st, err := sqlite.NewSqliteStorage(sqlite.SqliteStorageConfig{TableName: t.table, DB: db, Mode: t.mode})
	if err != nil {
		return err
	}
	if err := st.Create(); err != nil {
		return err
	}
	for _, part := range t.parts {
		for _, s := range c[part] {
			switch t.mode {
			case storage.AgentMode:
				_, err = st.Upsert(s.Agent())
			case storage.TeamMode:
				_, err = st.Upsert(s.Team())
			default:
				err = fixture.UpsertWorkflow(db, t.table, t.mode, s)
			}
			if err != nil {
				return fmt.Errorf("session %q: %w", s.String("session_id"), err)
			}
			if !keepClock {
				q := fmt.Sprintf("UPDATE %s SET updated_at = ? WHERE session_id = ?", t.table)
				if _, err := db.Exec(q, s.Int64("updated_at"), s.String("session_id")); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "writer:", err)
	os.Exit(1)
}
