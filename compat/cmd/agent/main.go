// Command agent holds a conversation with agno-golang v0.1.6's agent.Agent in
// a session of a shared SQLite file, with a canned model (no network).
//
//	agent -db FILE [-table agent_sessions] -session ID [-user U]
//	      (-prompt TEXT ... | -turns N [-prefix P]) [-log CALLS.json] [-start-at UNIX]
//
// The Agent's DB is agno-golang's SqliteStorage (agent mode) over FILE,
// opened as fixture.Open does. The Agent is made once (that is when it loads
// its session and history) and then runs each prompt in order; -turns N runs
// the prompts "P question 0" ... "P question N-1". -log writes every call the
// model received (messages and reply) as a JSON list. Prints
// {"session_id", "turns": [{"prompt", "answer"}], "seconds"}.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"agnostorage/compat/internal/canned"
	"agnostorage/compat/internal/conversation"
	"agnostorage/compat/internal/fixture"
)

type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }

func main() {
	dbPath := flag.String("db", "", "shared SQLite file")
	table := flag.String("table", "agent_sessions", "sessions table of the Agent's storage")
	session := flag.String("session", "", "session id")
	user := flag.String("user", "", "user id")
	var prompts multi
	flag.Var(&prompts, "prompt", "a prompt (repeatable, run in order)")
	turns := flag.Int("turns", 0, "run this many generated prompts instead of -prompt")
	prefix := flag.String("prefix", "go", "prefix of the generated prompts")
	logPath := flag.String("log", "", "write the calls the model received here (JSON)")
	startAt := flag.Float64("start-at", 0, "Unix time (seconds) to wait for before the first turn")
	flag.Parse()
	if *dbPath == "" || *session == "" {
		fail(fmt.Errorf("-db and -session are required"))
	}
	for i := 0; i < *turns; i++ {
		prompts = append(prompts, fmt.Sprintf("%s question %d", *prefix, i))
	}
	db, err := fixture.Open(*dbPath)
	if err != nil {
		fail(err)
	}
	defer db.Close()
	if wait := time.Until(time.Unix(0, int64(*startAt*1e9))); *startAt > 0 && wait > 0 {
		time.Sleep(wait)
	}
	model := canned.New()
	start := time.Now()
	done, err := conversation.Agent(db, *table, *session, *user, model, prompts)
	seconds := time.Since(start).Seconds()
	if *logPath != "" {
		if lerr := model.WriteLog(*logPath); lerr != nil && err == nil {
			err = lerr
		}
	}
	if err != nil {
		fail(err)
	}
	out := map[string]interface{}{"session_id": *session, "turns": done, "seconds": seconds}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "agent:", err)
	os.Exit(1)
}
