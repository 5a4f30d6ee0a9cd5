// Command bench times agno-golang v0.1.6's SQLite storage (Upsert and Read of
// agno/storage/sqlite) for the Python benchmark suite in bench/. The suite
// writes the sessions to a JSON file ({"small": [...], "large": [...]}, agno
// 1.x field names) so both languages store the same data.
//
// Serve mode (the default) reads one JSON request per line on stdin and
// answers one JSON line on stdout, so the suite can interleave Go rounds with
// its Python contenders. Times are measured here, around the storage calls
// only:
//
//	{"op": "open", "db": PATH}                       open (and Create) the table
//	{"op": "upsert", "set": "small", "start": 0, "count": 100}
//	{"op": "read", "set": "small", "start": 0, "count": 100}
//	{"op": "info"}                                   SQLite and Go versions
//	{"op": "close"}
//
// Upsert and read answer {"seconds", "count", "errors", "error_samples"}.
//
// Writer mode (-write N) upserts N small sessions with ids "PREFIX-%06d" into
// -db, starting at -start-at (Unix seconds), to share a file with other
// writers; it prints {"count", "errors", "error_samples", "start", "end"}
// (Unix seconds). Errors, SQLITE_BUSY included, are counted, never retried.
//
// Every database is opened with the modernc.org/sqlite driver,
// busy_timeout(10000), journal_mode(WAL) and synchronous(-synchronous).
package main

import (
	"bufio"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"net/url"
	"os"
	"runtime"
	"time"

	_ "modernc.org/sqlite" // registers driver "sqlite"

	"agnostorage/compat/internal/fixture"
	"github.com/devalexandre/agno-golang/agno/storage"
	"github.com/devalexandre/agno-golang/agno/storage/sqlite"
)

type request struct {
	Op    string `json:"op"`
	DB    string `json:"db"`
	Set   string `json:"set"`
	Start int    `json:"start"`
	Count int    `json:"count"`
}

type result struct {
	Seconds      float64  `json:"seconds"`
	Count        int      `json:"count"`
	Errors       int      `json:"errors"`
	ErrorSamples []string `json:"error_samples"`
}

type bench struct {
	sets        map[string][]*storage.AgentSession
	synchronous string
	table       string
	db          *sql.DB
	st          *sqlite.SqliteStorage
}

func open(path, synchronous string) (*sql.DB, error) {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous("+synchronous+")")
	return sql.Open("sqlite", "file:"+path+"?"+q.Encode())
}

func loadSets(path string) (map[string][]*storage.AgentSession, error) {
	// fixture.LoadCorpus keeps integers exact (json.Number), as the writer does.
	c, err := fixture.LoadCorpus(path)
	if err != nil {
		return nil, err
	}
	out := map[string][]*storage.AgentSession{}
	for name, sessions := range c {
		for _, s := range sessions {
			out[name] = append(out[name], s.Agent())
		}
	}
	return out, nil
}

func (b *bench) openTable(path string) error {
	b.closeTable()
	db, err := open(path, b.synchronous)
	if err != nil {
		return err
	}
	st, err := sqlite.NewSqliteStorage(sqlite.SqliteStorageConfig{TableName: b.table, DB: db, Mode: storage.AgentMode})
	if err == nil {
		err = st.Create()
	}
	if err != nil {
		db.Close()
		return err
	}
	b.db, b.st = db, st
	return nil
}

func (b *bench) closeTable() {
	if b.db != nil {
		b.db.Close()
		b.db, b.st = nil, nil
	}
}

func (b *bench) slice(r request) ([]*storage.AgentSession, error) {
	set, ok := b.sets[r.Set]
	if !ok {
		return nil, fmt.Errorf("no session set %q", r.Set)
	}
	if r.Start < 0 || r.Count < 0 || r.Start+r.Count > len(set) {
		return nil, fmt.Errorf("range %d+%d outside set %q of %d", r.Start, r.Count, r.Set, len(set))
	}
	if b.st == nil {
		return nil, fmt.Errorf("no table open")
	}
	return set[r.Start : r.Start+r.Count], nil
}

func (b *bench) run(r request, each func(*storage.AgentSession) error) (result, error) {
	sessions, err := b.slice(r)
	if err != nil {
		return result{}, err
	}
	res := result{ErrorSamples: []string{}}
	start := time.Now()
	for _, s := range sessions {
		if err := each(s); err != nil {
			res.Errors++
			if len(res.ErrorSamples) < 5 {
				res.ErrorSamples = append(res.ErrorSamples, err.Error())
			}
			continue
		}
		res.Count++
	}
	res.Seconds = time.Since(start).Seconds()
	return res, nil
}

func (b *bench) handle(r request) (interface{}, error) {
	switch r.Op {
	case "open":
		return map[string]bool{"ok": true}, b.openTable(r.DB)
	case "close":
		b.closeTable()
		return map[string]bool{"ok": true}, nil
	case "info":
		db, err := sql.Open("sqlite", ":memory:")
		if err != nil {
			return nil, err
		}
		defer db.Close()
		var v string
		if err := db.QueryRow("SELECT sqlite_version()").Scan(&v); err != nil {
			return nil, err
		}
		return map[string]string{"sqlite_version": v, "go_version": runtime.Version(), "driver": "modernc.org/sqlite"}, nil
	case "upsert":
		return b.run(r, func(s *storage.AgentSession) error {
			_, err := b.st.Upsert(s)
			return err
		})
	case "read":
		return b.run(r, func(s *storage.AgentSession) error {
			got, err := b.st.Read(s.SessionID, nil)
			if err == nil && got == nil {
				err = fmt.Errorf("session %s not found", s.SessionID)
			}
			return err
		})
	}
	return nil, fmt.Errorf("unknown op %q", r.Op)
}

func serve(b *bench) error {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<20)
	out := json.NewEncoder(os.Stdout)
	for in.Scan() {
		var r request
		var answer interface{}
		err := json.Unmarshal(in.Bytes(), &r)
		if err == nil {
			answer, err = b.handle(r)
		}
		if err != nil {
			answer = map[string]string{"error": err.Error()}
		}
		if err := out.Encode(answer); err != nil {
			return err
		}
	}
	b.closeTable()
	return in.Err()
}

func write(b *bench, path string, n int, prefix string, startAt float64) error {
	if err := b.openTable(path); err != nil {
		return err
	}
	defer b.closeTable()
	small := b.sets["small"]
	if len(small) == 0 {
		return fmt.Errorf("no small sessions")
	}
	if wait := time.Until(time.Unix(0, int64(startAt*1e9))); startAt > 0 && wait > 0 {
		time.Sleep(wait)
	}
	res := map[string]interface{}{}
	errs, count, samples := 0, 0, []string{}
	start := time.Now()
	for i := 0; i < n; i++ {
		s := *small[i%len(small)]
		s.SessionID = fmt.Sprintf("%s-%06d", prefix, i)
		if _, err := b.st.Upsert(&s); err != nil {
			errs++
			if len(samples) < 5 {
				samples = append(samples, err.Error())
			}
			continue
		}
		count++
	}
	end := time.Now()
	res["count"], res["errors"], res["error_samples"] = count, errs, samples
	res["start"] = float64(start.UnixNano()) / 1e9
	res["end"] = float64(end.UnixNano()) / 1e9
	return json.NewEncoder(os.Stdout).Encode(res)
}

func main() {
	sessions := flag.String("sessions", "", "JSON file of session sets written by the Python suite")
	synchronous := flag.String("synchronous", "FULL", "PRAGMA synchronous for every connection")
	table := flag.String("table", "agent_sessions", "table name")
	n := flag.Int("write", 0, "writer mode: upsert this many small sessions into -db and exit")
	dbPath := flag.String("db", "", "writer mode: database file")
	prefix := flag.String("prefix", "go", "writer mode: session id prefix")
	startAt := flag.Float64("start-at", 0, "writer mode: Unix time to wait for before the first upsert")
	flag.Parse()
	if *sessions == "" {
		fmt.Fprintln(os.Stderr, "bench: -sessions is required")
		os.Exit(2)
	}
	sets, err := loadSets(*sessions)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	b := &bench{sets: sets, synchronous: *synchronous, table: *table}
	if *n > 0 {
		err = write(b, *dbPath, *n, *prefix, *startAt)
	} else {
		err = serve(b)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}
