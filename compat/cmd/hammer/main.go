// Command hammer upserts agent sessions into a shared SQLite file as fast as
// it can through agno-golang v0.1.6's SqliteStorage.Upsert, to test sharing a live
// file with other processes.
//
//	hammer -db FILE -mode agent -table NAME -n N -prefix P -overlap K [-start-at UNIX]
//
// Session i (0 <= i < N) has id "shared-%05d" when i < K, else "P-%05d", so
// the first K ids are written by every writer that uses the same K. All
// writers use user_id "hammer" (a store may refuse to move a session to
// another user); agent_id is "hammer-P". Every JSON column of a row carries
// {"writer": P, "seq": i} and memory carries a
// payload with its SHA-256, so a reader can tell that a row holds one
// writer's complete value. Errors (SQLITE_BUSY included) are counted, never
// retried. Prints {"count", "errors", "error_samples", "seconds", "prefix"}.
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"agnostorage/compat/internal/fixture"
	"github.com/devalexandre/agno-golang/agno/storage"
	"github.com/devalexandre/agno-golang/agno/storage/sqlite"
)

// Payload returns the deterministic payload text of writer prefix, seq i.
// tests/test_compat_go.py builds the same text.
func payload(prefix string, i int) string {
	return strings.Repeat(fmt.Sprintf("%s:%d;", prefix, i), 40)
}

func session(prefix string, i, overlap int) *storage.AgentSession {
	id := fmt.Sprintf("%s-%05d", prefix, i)
	if i < overlap {
		id = fmt.Sprintf("shared-%05d", i)
	}
	p := payload(prefix, i)
	sum := sha256.Sum256([]byte(p))
	tag := func() map[string]interface{} { return map[string]interface{}{"writer": prefix, "seq": i} }
	mem := tag()
	mem["payload"] = p
	mem["sha256"] = hex.EncodeToString(sum[:])
	return &storage.AgentSession{
		Session: storage.Session{SessionID: id, UserID: "hammer", Memory: mem, SessionData: tag(), ExtraData: tag(),
			CreatedAt: 1700000000 + int64(i)},
		AgentID: "hammer-" + prefix, AgentData: tag(),
	}
}

func main() {
	dbPath := flag.String("db", "", "shared SQLite file")
	mode := flag.String("mode", "agent", "storage mode (only agent is supported)")
	table := flag.String("table", "agent_sessions", "table name")
	n := flag.Int("n", 1000, "sessions to upsert")
	prefix := flag.String("prefix", "go", "writer tag and id prefix")
	overlap := flag.Int("overlap", 100, "how many of the first ids are shared-NNNNN")
	startAt := flag.Float64("start-at", 0, "Unix time (seconds) to wait for before the first upsert, to line up with other writers")
	flag.Parse()
	if *mode != string(storage.AgentMode) || *dbPath == "" {
		fmt.Fprintln(os.Stderr, "hammer: -db is required and -mode must be agent")
		os.Exit(2)
	}
	db, err := fixture.Open(*dbPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, "hammer:", err)
		os.Exit(1)
	}
	defer db.Close()
	st, err := sqlite.NewSqliteStorage(sqlite.SqliteStorageConfig{TableName: *table, DB: db, Mode: storage.AgentMode})
	if err == nil {
		err = st.Create()
	}
	errs, samples := 0, []string{}
	if err != nil {
		errs++
		samples = append(samples, "create: "+err.Error())
	}
	if wait := time.Until(time.Unix(0, int64(*startAt*1e9))); *startAt > 0 && wait > 0 {
		time.Sleep(wait)
	}
	count := 0
	start := time.Now()
	for i := 0; i < *n; i++ {
		if _, err := st.Upsert(session(*prefix, i, *overlap)); err != nil {
			errs++
			if len(samples) < 10 {
				samples = append(samples, err.Error())
			}
			continue
		}
		count++
	}
	out := map[string]interface{}{"prefix": *prefix, "count": count, "errors": errs, "error_samples": samples,
		"seconds": time.Since(start).Seconds()}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		os.Exit(1)
	}
}
