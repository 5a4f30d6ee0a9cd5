// Command team holds a conversation with agno-golang v0.1.6's team.Team in a
// session of a shared SQLite file, with a canned model (no network).
//
//	team -db FILE [-table team_sessions] -session ID [-user U] [-name NAME]
//	     -prompt TEXT ... [-log CALLS.json]
//
// The Team's Storage is agno-golang's SqliteStorage (team mode) over FILE,
// opened as fixture.Open does; it runs in coordinate mode with one member
// agent. The Team is made once (that is when it reloads team_data.messages)
// and then runs each prompt in order. -log writes every call the model
// received (leader and member) as a JSON list. Prints
// {"session_id", "turns": [{"prompt", "answer"}]}.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"

	"agnostorage/compat/internal/canned"
	"agnostorage/compat/internal/conversation"
	"agnostorage/compat/internal/fixture"
)

type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }

func main() {
	dbPath := flag.String("db", "", "shared SQLite file")
	table := flag.String("table", "team_sessions", "sessions table of the Team's storage")
	session := flag.String("session", "", "session id")
	user := flag.String("user", "", "user id")
	name := flag.String("name", "go-team", "team name (agno-golang stores it as team_id)")
	var prompts multi
	flag.Var(&prompts, "prompt", "a prompt (repeatable, run in order)")
	logPath := flag.String("log", "", "write the calls the model received here (JSON)")
	flag.Parse()
	if *dbPath == "" || *session == "" {
		fail(fmt.Errorf("-db and -session are required"))
	}
	db, err := fixture.Open(*dbPath)
	if err != nil {
		fail(err)
	}
	defer db.Close()
	model := canned.New()
	done, err := conversation.Team(db, *table, *session, *user, *name, model, prompts)
	if *logPath != "" {
		if lerr := model.WriteLog(*logPath); lerr != nil && err == nil {
			err = lerr
		}
	}
	if err != nil {
		fail(err)
	}
	if err := json.NewEncoder(os.Stdout).Encode(map[string]interface{}{"session_id": *session, "turns": done}); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "team:", err)
	os.Exit(1)
}
