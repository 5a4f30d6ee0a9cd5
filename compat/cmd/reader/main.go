// Command reader prints, as JSON, what agno-golang v0.1.6's SQLite storage
// reads from a session table, through each of its read methods.
//
//	reader -db FILE -mode agent|team|workflow|workflow_v2 -table NAME [-session ID ...] [-knowledge] [-by-path]
//
// Output, one JSON object:
//
//	"read":         {ID: Read(ID, nil) or null}
//	"recent":       GetRecentSessions(nil, nil, nil)
//	"all":          {USER: GetAllSessions(ctx, USER)} for every user_id in the table
//	"session_ids":  {USER: GetAllSessionIDs(ctx, USER)}
//	"read_session": {ID: {"session": ReadSession(ctx, ID)} or {"error": text}} (agent mode)
//	"runs":         {ID: {"runs": GetRunsForSession(ctx, ID)} or {"error": text}} (agent mode)
//	"knowledge":    number of rows GetKnowledgeContents finds (with -knowledge)
//
// The IDs are the -session flags, or every session id in the table. Agent and
// team sessions print as agno-golang's structs marshal; workflow sessions as
// the row maps Read returns. ReadSession and GetRunsForSession are the
// storage.DB methods an agent.Agent calls; their errors are printed, not
// fatal, because they are part of what a Go agent sees.
//
// The storage gets its own *sql.DB (fixture.Open). With -by-path it is given
// SqliteStorageConfig.DBFile instead, as a Go program would by default, and
// agno-golang opens the file itself.
package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/devalexandre/agno-golang/agno/storage"
	"github.com/devalexandre/agno-golang/agno/storage/sqlite"

	"agnostorage/compat/internal/fixture"
)

type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }

func main() {
	dbPath := flag.String("db", "", "SQLite file")
	mode := flag.String("mode", "agent", "agent, team, workflow or workflow_v2")
	table := flag.String("table", "", "table name")
	knowledge := flag.Bool("knowledge", false, "also list knowledge contents (creates agno_knowledge, as upstream does)")
	byPath := flag.Bool("by-path", false, "let agno-golang open the file (SqliteStorageConfig.DBFile)")
	var ids multi
	flag.Var(&ids, "session", "session id to read (repeatable; default: every id in the table)")
	flag.Parse()
	if *dbPath == "" || *table == "" {
		fail(fmt.Errorf("-db and -table are required"))
	}
	if _, err := os.Stat(*dbPath); err != nil {
		fail(err)
	}
	db, err := fixture.Open(*dbPath)
	if err != nil {
		fail(err)
	}
	defer db.Close()
	cfg := sqlite.SqliteStorageConfig{TableName: *table, DB: db, Mode: storage.StorageMode(*mode)}
	if *byPath {
		cfg.DB, cfg.DBFile = nil, dbPath
	}
	st, err := sqlite.NewSqliteStorage(cfg)
	if err != nil {
		fail(err)
	}
	quoted := `"` + strings.ReplaceAll(*table, `"`, `""`) + `"`
	if len(ids) == 0 {
		ids = column(db, "SELECT session_id FROM "+quoted+" ORDER BY session_id")
	}
	users := column(db, "SELECT DISTINCT user_id FROM "+quoted+" ORDER BY user_id")
	ctx := context.Background()
	out := map[string]interface{}{}

	read := map[string]interface{}{}
	for _, id := range ids {
		s, err := st.Read(id, nil)
		if err != nil {
			fail(fmt.Errorf("Read(%q): %w", id, err))
		}
		read[id] = s
	}
	out["read"] = read
	if out["recent"], err = st.GetRecentSessions(nil, nil, nil); err != nil {
		fail(fmt.Errorf("GetRecentSessions: %w", err))
	}
	all, sessionIDs := map[string]interface{}{}, map[string]interface{}{}
	for _, u := range users {
		if all[u], err = st.GetAllSessions(ctx, u); err != nil {
			fail(fmt.Errorf("GetAllSessions(%q): %w", u, err))
		}
		if sessionIDs[u], err = st.GetAllSessionIDs(ctx, u); err != nil {
			fail(fmt.Errorf("GetAllSessionIDs(%q): %w", u, err))
		}
	}
	out["all"], out["session_ids"] = all, sessionIDs
	if storage.StorageMode(*mode) == storage.AgentMode {
		readSession, runs := map[string]interface{}{}, map[string]interface{}{}
		for _, id := range ids {
			if s, err := st.ReadSession(ctx, id); err != nil {
				readSession[id] = map[string]string{"error": err.Error()}
			} else {
				readSession[id] = map[string]interface{}{"session": s}
			}
			if r, err := st.GetRunsForSession(ctx, id); err != nil {
				runs[id] = map[string]string{"error": err.Error()}
			} else {
				runs[id] = map[string]interface{}{"runs": r}
			}
		}
		out["read_session"], out["runs"] = readSession, runs
	}
	if *knowledge {
		rows, total, err := st.GetKnowledgeContents(nil, nil, nil, nil)
		if err != nil {
			fail(fmt.Errorf("GetKnowledgeContents: %w", err))
		}
		out["knowledge"] = map[string]int{"rows": len(rows), "total": total}
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		fail(err)
	}
}

// column returns the first column of every row q selects.
func column(db *sql.DB, q string) []string {
	rows, err := db.Query(q)
	if err != nil {
		fail(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			fail(err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		fail(err)
	}
	return out
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "reader:", err)
	os.Exit(1)
}
