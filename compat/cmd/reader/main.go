// Command reader prints, as JSON, what agno-golang's storage reads from a
// session table.
//
//	reader -db FILE -mode agent|team|workflow|workflow_v2 -table NAME [-session ID ...]
//
// Output: {"read": {ID: session or null}, "all": [...], "recent": [...]}.
// "read" holds Read(ID, nil) for each -session flag (every session id in the
// table when none is given); "all" is GetAllSessions(nil, nil) and "recent"
// GetRecentSessions(nil, nil, nil). Agent and team sessions are printed as
// agno-golang's structs marshal; workflow sessions as the row maps Read returns.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"

	"agnostorage/compat/internal/agnogolang/sqlite"
	"agnostorage/compat/internal/agnogolang/storage"
	"agnostorage/compat/internal/fixture"
)

type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }

func main() {
	dbPath := flag.String("db", "", "SQLite file")
	mode := flag.String("mode", "agent", "agent, team, workflow or workflow_v2")
	table := flag.String("table", "", "table name")
	var ids multi
	flag.Var(&ids, "session", "session id to Read (repeatable; default: every id in the table)")
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
	st, err := sqlite.NewSqliteStorage(sqlite.SqliteStorageConfig{TableName: *table, DB: db, Mode: storage.StorageMode(*mode)})
	if err != nil {
		fail(err)
	}
	if len(ids) == 0 {
		rows, err := db.Query(fmt.Sprintf(`SELECT session_id FROM "%s" ORDER BY session_id`, strings.ReplaceAll(*table, `"`, `""`)))
		if err != nil {
			fail(err)
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				fail(err)
			}
			ids = append(ids, id)
		}
		if err := rows.Close(); err != nil {
			fail(err)
		}
	}
	read := map[string]interface{}{}
	for _, id := range ids {
		s, err := st.Read(id, nil)
		if err != nil {
			fail(fmt.Errorf("Read(%q): %w", id, err))
		}
		read[id] = s
	}
	all, err := st.GetAllSessions(nil, nil)
	if err != nil {
		fail(err)
	}
	recent, err := st.GetRecentSessions(nil, nil, nil)
	if err != nil {
		fail(err)
	}
	enc := json.NewEncoder(os.Stdout)
	if err := enc.Encode(map[string]interface{}{"read": read, "all": all, "recent": recent}); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "reader:", err)
	os.Exit(1)
}
